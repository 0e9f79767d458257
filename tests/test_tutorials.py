"""Every tutorial runs as a notebook (jupytext percent-script -> ipynb -> executed by a kernel)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NEUROANA_SHARED", REPO.parent / "shared"))

TUTORIALS = sorted((REPO / "tutorials").glob("*.py"))


@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_executes_as_notebook(script: Path, tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    text = script.read_text()
    if "NEUROANA_SHARED" in text and not SHARED.is_dir():
        pytest.skip(f"{script.name} needs the real data in {SHARED}")
    nb = jupytext.reads(text, fmt="py:percent")
    assert len(nb.cells) >= 3, f"{script.name} should be a percent-script with cells"
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("NEUROANA_SHARED", str(SHARED))
    monkeypatch.setenv("NEUROANA_TUTORIAL_SMALL", "1")  # tutorials shrink their sizes for CI
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
