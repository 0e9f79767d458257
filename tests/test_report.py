"""The demo's HTML report renders in headless Chromium with every figure decoded."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

import matplotlib

matplotlib.use("Agg")
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from neuroana.viz.report import write_report  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _render_body(index) -> dict:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
             "--dump-dom", index.as_uri()],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout  # fmt: skip
    body = re.search(r"<body([^>]*)>", out)
    assert body, "chromium returned no <body>"
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))


def _figure(path):
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def test_report_figures_load_in_chromium(tmp_path):
    _figure(tmp_path / "figures" / "a.png")
    _figure(tmp_path / "figures" / "b.png")
    sections = {"x": {"r": {"value": 0.9, "expected": 1.0, "ok": True}}}
    index = write_report(
        tmp_path, "t", sections, {"x": [("figures/a.png", "A"), ("figures/b.png", "B")]}
    )
    attrs = _render_body(index)
    assert attrs["data-images-total"] == "2"
    assert attrs["data-images-loaded"] == "2"


def test_broken_figure_is_detected_by_the_browser_check(tmp_path):
    # the check must be able to fail: a PNG that does not decode is counted as not loaded
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "bad.png").write_bytes(b"not a png")
    index = write_report(tmp_path, "t", {}, {"x": [("figures/bad.png", "bad")]})
    attrs = _render_body(index)
    assert attrs["data-images-total"] == "1" and attrs["data-images-loaded"] == "0"


def test_missing_figure_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        write_report(tmp_path, "t", {}, {"x": [("figures/nope.png", "missing")]})


def test_demo_report_renders(tmp_path):
    from neuroana.demo import run_demo

    res = run_demo(tmp_path / "report", quick=True, only=["round_trip", "segmentation"])
    index = tmp_path / "report" / "index.html"
    assert res["report"] == str(index)
    attrs = _render_body(index)
    assert int(attrs["data-images-total"]) >= 1
    assert attrs["data-images-loaded"] == attrs["data-images-total"]
