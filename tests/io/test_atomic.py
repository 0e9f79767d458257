"""The atomic-write primitive: all or nothing, ordinary permissions."""

import os

import pytest

from neuroana.io.atomic import atomic_path
from neuroana.io.results import write_json_atomic


def test_failure_keeps_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "r.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.txt"]


def test_new_files_get_umask_permissions_not_mkstemp_0600(tmp_path):
    mask = os.umask(0o022)
    try:
        out = write_json_atomic({"a": 1}, tmp_path / "s.json")
    finally:
        os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o644


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"), atomic_path(tmp_path / "nope" / "x"):
        pass
