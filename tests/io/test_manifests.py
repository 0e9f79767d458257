"""Data manifests and the fetcher, against a local HTTP server on 127.0.0.1 (no network)."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml

from neuroana.io import download as fetch_module
from neuroana.io import manifests as mf
from neuroana.io.download import cache_dir, fetch
from neuroana.io.manifests import (
    ChecksumError,
    DownloadError,
    ManifestError,
    ManualDownloadError,
    UnverifiedDownloadWarning,
    list_manifests,
    load_manifest,
)

REPO = Path(__file__).resolve().parents[2]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _payload(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


# --------------------------------------------------------------------------- a local file server


class _State:
    def __init__(self, root: Path):
        self.root = root
        self.honour_range = True
        self.cut_after: int | None = None  # the next GET sends this many body bytes, then closes
        self.requests: list[tuple[str, str | None]] = []


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        state: _State = self.server.state  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        state.requests.append((self.path, rng))
        path = state.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        if rng and state.honour_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.cut_after is not None:
            n, state.cut_after = state.cut_after, None
            self.wfile.write(body[:n])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "served"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = _State(root)  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.state, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _write_manifest(folder: Path, name: str, files: list[dict], **extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "name": name,
        "description": "test data",
        "licence": "CC0-1.0",
        "citation": "none",
        "used_by": ["io"],
        "files": files,
        **extra,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(record, sort_keys=False))
    return path


def _one_file_manifest(tmp_path, url: str, data: bytes, name: str = "rec.bin") -> Path:
    entry = {"name": name, "url": url, "size": len(data), "sha256": _sha(data)}
    return _write_manifest(tmp_path / "manifests", "ds", [entry])


# --------------------------------------------------------------------------- downloads


def test_good_download_verifies_and_is_not_downloaded_again(tmp_path, server):
    state, base = server
    data = _payload(1_500_000)
    (state.root / "rec.bin").write_bytes(data)
    manifest = _one_file_manifest(tmp_path, f"{base}/rec.bin", data)
    cache = tmp_path / "cache"

    (path,) = fetch(manifest, dest=cache, progress=False)
    assert path == cache / "ds" / "rec.bin"
    assert _sha(path.read_bytes()) == _sha(data)
    assert not path.with_name("rec.bin.part").exists()
    assert len(state.requests) == 1

    stat_before = path.stat()
    (again,) = fetch(manifest, dest=cache, progress=False)
    assert again == path
    assert len(state.requests) == 1  # verified in place, no second request
    assert path.stat().st_mtime_ns == stat_before.st_mtime_ns


def test_corrupted_download_is_refused_and_nothing_is_written(tmp_path, server):
    state, base = server
    data = _payload(200_000, seed=1)
    bad = bytearray(data)
    bad[12_345] ^= 0xFF
    (state.root / "rec.bin").write_bytes(bytes(bad))
    manifest = _one_file_manifest(tmp_path, f"{base}/rec.bin", data)
    target = tmp_path / "cache" / "ds" / "rec.bin"

    with pytest.raises(ChecksumError) as err:
        fetch(manifest, dest=tmp_path / "cache", progress=False)
    msg = str(err.value)
    assert "checksum mismatch" in msg and _sha(bytes(bad)) in msg and _sha(data) in msg
    assert not target.exists()
    assert not target.with_name("rec.bin.part").exists()


def test_interrupted_transfer_resumes_with_range(tmp_path, server):
    state, base = server
    data = _payload(1_200_000, seed=2)
    (state.root / "rec.bin").write_bytes(data)
    manifest = _one_file_manifest(tmp_path, f"{base}/rec.bin", data)
    target = tmp_path / "cache" / "ds" / "rec.bin"
    part = target.with_name("rec.bin.part")

    state.cut_after = 300_001
    with pytest.raises(DownloadError, match="rerun fetch to resume"):
        fetch(manifest, dest=tmp_path / "cache", progress=False)
    assert not target.exists()
    assert part.read_bytes() == data[:300_001]

    (path,) = fetch(manifest, dest=tmp_path / "cache", progress=False)
    assert state.requests[-1] == ("/rec.bin", "bytes=300001-")
    assert _sha(path.read_bytes()) == _sha(data)
    assert not part.exists()


def test_server_ignoring_range_gets_a_full_redownload(tmp_path, server):
    state, base = server
    data = _payload(900_000, seed=3)
    (state.root / "rec.bin").write_bytes(data)
    manifest = _one_file_manifest(tmp_path, f"{base}/rec.bin", data)
    state.honour_range = False
    state.cut_after = 123_457
    with pytest.raises(DownloadError):
        fetch(manifest, dest=tmp_path / "cache", progress=False)

    (path,) = fetch(manifest, dest=tmp_path / "cache", progress=False)
    assert state.requests[-1][1] == "bytes=123457-"  # asked to resume, got 200 + whole body
    assert path.read_bytes() == data  # not the prefix twice


def test_bad_partial_file_is_dropped_after_a_failed_resume(tmp_path, server):
    state, base = server
    data = _payload(400_000, seed=4)
    (state.root / "rec.bin").write_bytes(data)
    manifest = _one_file_manifest(tmp_path, f"{base}/rec.bin", data)
    part = tmp_path / "cache" / "ds" / "rec.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 1000)  # a stale .part with wrong bytes

    with pytest.raises(ChecksumError):
        fetch(manifest, dest=tmp_path / "cache", progress=False)
    assert state.requests[-1][1] == "bytes=1000-"
    assert not part.exists()
    (path,) = fetch(manifest, dest=tmp_path / "cache", progress=False)
    assert path.read_bytes() == data


def test_oversized_partial_file_restarts(tmp_path, server):
    state, base = server
    data = _payload(50_000, seed=5)
    (state.root / "rec.bin").write_bytes(data)
    manifest = _one_file_manifest(tmp_path, f"{base}/rec.bin", data)
    part = tmp_path / "cache" / "ds" / "rec.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(_payload(60_000, seed=6))
    (path,) = fetch(manifest, dest=tmp_path / "cache", progress=False)
    assert path.read_bytes() == data
    assert state.requests[-1][1] is None


@pytest.mark.parametrize("bad", ["same_size", "other_size"])
def test_existing_bad_file_is_not_deleted(tmp_path, server, bad):
    state, base = server
    data = _payload(100_000, seed=7)
    (state.root / "rec.bin").write_bytes(data)
    manifest = _one_file_manifest(tmp_path, f"{base}/rec.bin", data)
    target = tmp_path / "cache" / "ds" / "rec.bin"
    target.parent.mkdir(parents=True)
    mine = _payload(100_000 if bad == "same_size" else 99, seed=8)
    target.write_bytes(mine)

    with pytest.raises(ChecksumError, match="left untouched") as err:
        fetch(manifest, dest=tmp_path / "cache", progress=False)
    assert str(target) in str(err.value)
    assert target.read_bytes() == mine
    assert state.requests == []


def test_http_error_is_a_download_error(tmp_path, server):
    _, base = server
    data = b"abc"
    manifest = _one_file_manifest(tmp_path, f"{base}/missing.bin", data)
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(manifest, dest=tmp_path / "cache", progress=False)


def test_file_url_and_unverified_download_warns_with_its_checksum(tmp_path):
    data = _payload(70_000, seed=9)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    entry = {
        "name": "sub/dir/src.bin",
        "url": src.as_uri(),
        "size": None,
        "sha256": None,
        "note": "unknown in this test",
    }
    manifest = _write_manifest(tmp_path / "m", "nosum", [entry])
    with pytest.warns(UnverifiedDownloadWarning, match=_sha(data)):
        (path,) = fetch(manifest, dest=tmp_path / "cache", progress=False)
    assert path == tmp_path / "cache" / "nosum" / "sub" / "dir" / "src.bin"
    assert path.read_bytes() == data


def test_file_url_with_stale_partial_redownloads(tmp_path):
    data = _payload(30_000, seed=10)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    manifest = _one_file_manifest(tmp_path, src.as_uri(), data)
    part = tmp_path / "cache" / "ds" / "rec.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:1000])
    (path,) = fetch(manifest, dest=tmp_path / "cache", progress=False)
    assert path.read_bytes() == data


def test_cache_folder_from_environment_read_at_call_time(tmp_path, monkeypatch):
    data = b"0123456789"
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    manifest = _one_file_manifest(tmp_path, src.as_uri(), data)
    monkeypatch.setenv("NEUROANA_CACHE", str(tmp_path / "envcache"))
    assert cache_dir("ds") == tmp_path / "envcache" / "ds"
    (path,) = fetch(manifest, progress=False)
    assert path == tmp_path / "envcache" / "ds" / "rec.bin"
    monkeypatch.delenv("NEUROANA_CACHE")
    assert cache_dir("ds") == Path.home() / ".cache" / "neuroana" / "ds"


def test_selecting_files_and_unknown_file_name(tmp_path):
    a, b = b"aaaa", b"bbbbbb"
    (tmp_path / "a").write_bytes(a)
    (tmp_path / "b").write_bytes(b)
    entries = [
        {"name": "a.bin", "url": (tmp_path / "a").as_uri(), "size": 4, "sha256": _sha(a)},
        {"name": "b.bin", "url": (tmp_path / "b").as_uri(), "size": 6, "sha256": _sha(b)},
    ]
    manifest = _write_manifest(tmp_path / "m", "two", entries)
    paths = fetch(manifest, dest=tmp_path / "c", files=["b.bin"], progress=False)
    assert [p.name for p in paths] == ["b.bin"]
    assert not (tmp_path / "c" / "two" / "a.bin").exists()
    with pytest.raises(ManifestError, match=r"no file 'c.bin'.*a\.bin, b\.bin"):
        fetch(manifest, dest=tmp_path / "c", files=["c.bin"], progress=False)


def test_manual_source_explains_and_then_verifies_a_placed_file(tmp_path):
    data = b"tuning curves"
    entry = {
        "name": "Tuning.mat",
        "source": "contact",
        "size": len(data),
        "sha256": _sha(data),
        "instructions": "Ask the authors for Tuning.mat.",
    }
    manifest = _write_manifest(tmp_path / "m", "byhand", [entry])
    target = tmp_path / "c" / "byhand" / "Tuning.mat"
    with pytest.raises(ManualDownloadError) as err:
        fetch(manifest, dest=tmp_path / "c", progress=False)
    assert "Ask the authors for Tuning.mat." in str(err.value) and str(target) in str(err.value)
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    assert fetch(manifest, dest=tmp_path / "c", progress=False) == [target]


# --------------------------------------------------------------------------- registry (PyPI sdist)


def _fake_sdist(path: Path, members: dict[str, bytes]) -> bytes:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path.read_bytes()


def test_registry_source_extracts_members_from_one_sdist(tmp_path, monkeypatch):
    one, two = _payload(5000, seed=11), _payload(7000, seed=12)
    sdist = tmp_path / "fakepkg-1.2.3.tar.gz"
    blob = _fake_sdist(
        sdist, {"fakepkg-1.2.3/data/one.nwb": one, "fakepkg-1.2.3/data/two.nwb": two}
    )
    calls = []

    def fake_pip(package, version, folder):
        calls.append((package, version))
        out = Path(folder) / sdist.name
        out.write_bytes(blob)
        return out

    monkeypatch.setattr(fetch_module, "_pip_download_sdist", fake_pip)
    reg = {
        "kind": "pypi-sdist",
        "package": "fakepkg",
        "version": "1.2.3",
        "archive_size": len(blob),
        "archive_sha256": _sha(blob),
    }
    entries = [
        {
            "name": f"pkg_{n}.nwb",
            "registry": {**reg, "member": f"fakepkg-1.2.3/data/{n}.nwb"},
            "size": len(d),
            "sha256": _sha(d),
        }
        for n, d in (("one", one), ("two", two))
    ]
    manifest = _write_manifest(tmp_path / "m", "reg", entries)
    paths = fetch(manifest, dest=tmp_path / "c", progress=False)
    assert [p.read_bytes() for p in paths] == [one, two]
    assert calls == [("fakepkg", "1.2.3")]  # one sdist download for both members
    assert fetch(manifest, dest=tmp_path / "c", progress=False) == paths
    assert len(calls) == 1  # already verified: no download

    # a tampered archive is refused before anything is extracted
    entries[0]["registry"]["archive_sha256"] = "0" * 64
    entries[0]["name"] = "other.nwb"
    bad = _write_manifest(tmp_path / "m2", "reg", entries[:1])
    with pytest.raises(ChecksumError, match="nothing was extracted"):
        fetch(bad, dest=tmp_path / "c2", progress=False)
    assert not (tmp_path / "c2" / "reg" / "other.nwb").exists()


def test_pip_download_command(tmp_path, monkeypatch):
    seen = {}

    class Done:
        returncode, stdout, stderr = 0, "", ""

    def fake_run(cmd, **kwargs):
        seen["cmd"] = cmd
        folder = Path(cmd[cmd.index("-d") + 1])
        (folder / "pynapple-0.11.4.tar.gz").write_bytes(b"x")
        return Done()

    monkeypatch.setattr(fetch_module.subprocess, "run", fake_run)
    out = fetch_module._pip_download_sdist("pynapple", "0.11.4", tmp_path)
    assert out == tmp_path / "pynapple-0.11.4.tar.gz"
    cmd = seen["cmd"]
    assert cmd[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in cmd and cmd[cmd.index("--no-binary") + 1] == ":all:"
    assert "pynapple==0.11.4" in cmd


# --------------------------------------------------------------------------- the real manifests


def test_every_yaml_in_data_manifests_loads_and_validates():
    names = sorted(p.stem for p in (REPO / "data_manifests").glob("*.yaml"))
    assert names, "no manifests found"
    assert set(names) <= set(list_manifests())
    required = {"fisbe", "pynapple_nwb", "crcns_pfc6", "neuroformer_v1al", "benucci2013_adaptation"}
    assert required <= set(names)
    for name in names:
        m = load_manifest(name)
        assert m.name == name and m.path == REPO / "data_manifests" / f"{name}.yaml"
        for f in m.files:
            if f.sha256 is None or f.size is None:
                assert f.note, f"{name}:{f.name} lacks a note on the unknown checksum"


def test_fisbe_record():
    m = load_manifest("fisbe")
    assert m.doi == "10.5281/zenodo.10875063" and m.licence == "CC-BY-4.0"
    assert m.used_by == ("segmentation",)
    assert all("10875063" in f.url for f in m.files)


def test_pynapple_manifest_matches_the_shared_copies(shared_dir):
    """The sizes and sha256 in the manifest are those of the real files kept in ../shared."""
    m = load_manifest("pynapple_nwb")
    assert {f.registry.package for f in m.files} == {"pynapple"}
    for f in m.files:
        copy = shared_dir / "data" / "nwb" / f.name
        assert copy.stat().st_size == f.size
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == f.sha256


def test_pynapple_manifest_fetch_from_a_local_sdist(shared_dir, tmp_path, monkeypatch):
    """End to end with the real manifest: an sdist built locally from the shared copies."""
    m = load_manifest("pynapple_nwb")
    sdist = tmp_path / "pynapple-0.11.4.tar"
    with tarfile.open(sdist, "w") as tf:
        for f in m.files:
            tf.add(shared_dir / "data" / "nwb" / f.name, arcname=f.registry.member)

    def fake_pip(package, version, folder):
        assert (package, version) == ("pynapple", "0.11.4")
        out = Path(folder) / sdist.name
        out.symlink_to(sdist)
        return out

    monkeypatch.setattr(fetch_module, "_pip_download_sdist", fake_pip)
    with pytest.raises(ChecksumError, match="nothing was extracted"):  # not the real archive
        fetch("pynapple_nwb", dest=tmp_path / "c", progress=False)
    # without the archive checksum the real members' checksums still decide
    monkeypatch.setattr(
        fetch_module,
        "load_manifest",
        lambda name: _strip_archive_checks(m),
    )
    paths = fetch(
        "pynapple_nwb", dest=tmp_path / "c", files=["pynapple_phy_A8604-211122.nwb"], progress=False
    )
    assert _sha(paths[0].read_bytes()) == m.file("pynapple_phy_A8604-211122.nwb").sha256


def _strip_archive_checks(m: mf.Manifest) -> mf.Manifest:
    from dataclasses import replace

    files = tuple(
        replace(f, registry=replace(f.registry, archive_size=None, archive_sha256=None))
        for f in m.files
    )
    return replace(m, files=files)


def test_unknown_manifest_lists_the_known_ones():
    with pytest.raises(ManifestError) as err:
        load_manifest("no_such_dataset")
    msg = str(err.value)
    assert "no_such_dataset" in msg
    for name in list_manifests():
        assert name in msg


def test_manifest_folder_from_environment(tmp_path, monkeypatch):
    _write_manifest(
        tmp_path / "extra",
        "mine",
        [{"name": "x", "url": "https://example.org/x", "size": 1, "sha256": "a" * 64}],
    )
    monkeypatch.setenv("NEUROANA_MANIFESTS", str(tmp_path / "extra"))
    assert "mine" in list_manifests() and "fisbe" in list_manifests()
    assert load_manifest("mine").files[0].url == "https://example.org/x"


# --------------------------------------------------------------------------- malformed YAML

_GOOD_FILE = {"name": "a.bin", "url": "https://example.org/a", "size": 3, "sha256": "b" * 64}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r.pop("licence"), "licence"),
        (lambda r: r.update(lisence="MIT"), "lisence"),
        (lambda r: r.update(name="other"), "name"),
        (lambda r: r.update(used_by=["spikesorting"]), "used_by"),
        (lambda r: r.update(files=[]), "files"),
        (lambda r: r["files"][0].update(sha256="xyz"), "files[0].sha256"),
        (lambda r: r["files"][0].update(size=-4), "files[0].size"),
        (lambda r: r["files"][0].update(size="3 MB"), "files[0].size"),
        (lambda r: r["files"][0].pop("sha256"), "files[0].sha256"),
        (lambda r: r["files"][0].update(sha256=None), "files[0].note"),
        (lambda r: r["files"][0].update(url="ftp://example.org/a"), "files[0].url"),
        (lambda r: r["files"][0].update(source="manual"), "files[0].url"),
        (lambda r: r["files"][0].update(name="../escape"), "files[0].name"),
        (lambda r: r["files"].append(dict(_GOOD_FILE)), "files"),
        (
            lambda r: r["files"][0].update(url=None, registry={"kind": "conda", "package": "x"}),
            "files[0].registry.kind",
        ),
    ],
)
def test_malformed_manifest_names_file_and_field(tmp_path, change, field):
    record = {
        "name": "bad",
        "description": "d",
        "licence": "MIT",
        "citation": "c",
        "used_by": ["io"],
        "files": [dict(_GOOD_FILE)],
    }
    change(record)
    record["files"] = [
        {k: v for k, v in f.items() if v is not None or k in ("size", "sha256")}
        for f in record["files"]
    ]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(record))
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert str(path) in str(err.value)
    assert field in str(err.value)


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nfiles: [unclosed\n")
    with pytest.raises(ManifestError, match=re.escape(str(path)) + ".*not valid YAML"):
        load_manifest(path)
