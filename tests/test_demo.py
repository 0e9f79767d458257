import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from neuroana import cli, demo
from neuroana.analysis import get

#: the analyses whose demo section reads its input from the demo's NWB session
NWB_BASED = ("connectome", "hmmglm", "adaptation", "pretrain")


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """One quick demo through the command line; its output folder and results."""
    out = tmp_path_factory.mktemp("demo") / "rep"
    assert cli.main(["demo", "--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_demo_through_cli_main(quick_demo):
    out, res = quick_demo
    assert res["quick"] is True
    assert res["failed"] == []
    rt = res["sections"]["round_trip"]
    for name, sc in rt.items():
        assert sc["ok"] is True, name
    # values, not just flags: exact round trip means zero error and zero differing bins
    assert rt["spike times max |error| (s)"]["value"] == 0.0
    assert rt["binned counts: bins differing"]["value"] == 0
    assert rt["ROI traces max |error|"]["value"] == 0.0
    assert rt["true states from intervals: bins differing"]["value"] == 0
    assert res["sections"]["preprocess"]["dF/F vs true calcium: mean Pearson r"]["value"] > 0.9
    # every registered analysis ran its section, and none failed
    assert list(res["sections"])[2:] == [
        "connectome",
        "hmmglm",
        "adaptation",
        "pretrain",
        "segmentation",
    ]
    assert res["sections"]["pretrain"]["read-out 0->1 minus 1->0 (planted 0->1)"]["ok"]
    # independent check against the ground truth, read straight from the file the demo wrote
    from neuroana.datasets import make_session
    from neuroana.io import read_spike_counts

    truth = make_session(**demo.session_settings(quick=True))
    counts = read_spike_counts(
        out / "session.nwb", truth.params["bin_size"], start=0.0, stop=truth.duration
    )
    np.testing.assert_array_equal(counts.values, truth.spike_counts.values)


def _ctx(out, nwb_path):
    from neuroana.datasets import make_session

    truth = make_session(**demo.session_settings(quick=True))
    return demo.DemoContext(out, True, truth, nwb_path, None)


def test_sections_read_the_session_file(quick_demo, tmp_path):
    """Deleting the session file breaks every NWB-based section; altering it changes them."""
    out, res = quick_demo
    gone = _ctx(tmp_path, tmp_path / "deleted.nwb")
    for name in NWB_BASED:
        with pytest.raises((OSError, ValueError)):
            get(name).demo_section()(gone)

    altered = tmp_path / "altered.nwb"
    shutil.copy(out / "session.nwb", altered)
    with h5py.File(altered, "r+") as f:
        ids = f["units/id"]
        ids[0], ids[1] = ids[1], ids[0]  # unit 0 <-> unit 1: the planted edge now runs 1 -> 0
        times = f["units/spike_times"]
        times[...] = times[...] + 7.3  # spikes no longer line up with the hidden states
        traces = f["processing/ophys/Fluorescence/RoiResponseSeries/data"]
        traces[...] = traces[...][:, ::-1]  # ROI traces in reverse order: communities scrambled
        response = f["processing/stimulus/tuning/response"]
        response[...] = np.random.default_rng(0).permutation(response[...])
    ctx = _ctx(tmp_path, altered)
    for name in NWB_BASED:
        rows = get(name).demo_section()(ctx)
        before = res["sections"][name]
        assert rows.keys() == before.keys()
        changed = [k for k in rows if not np.isclose(rows[k]["value"], before[k]["value"])]
        assert changed, name
        assert any(r["ok"] is False for r in rows.values()), name


def test_demo_through_subprocess(tmp_path):
    out = tmp_path / "rep2"
    proc = subprocess.run(
        [sys.executable, "-m", "neuroana.cli", "demo", "--quick", "--out", str(out)]
        + ["--only", "round_trip", "preprocess"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "units" in proc.stdout and "epochs" in proc.stdout
    res = json.loads((out / "results.json").read_text())
    assert list(res["sections"]) == ["round_trip", "preprocess"] and res["failed"] == []


def test_failing_section_fails_the_demo(tmp_path, monkeypatch):
    def bad(ctx):
        return {"impossible": demo.score(0.1, 1.0, tol=0.01)}

    monkeypatch.setattr(demo, "SECTIONS", [*demo.SECTIONS, ("bad", bad)])
    with pytest.raises(demo.DemoCheckError, match="bad: impossible"):
        demo.run_demo(tmp_path, quick=True, only=["round_trip", "bad"])
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["failed"] == ["bad: impossible"]

    def raising(ctx):
        raise ZeroDivisionError("section crashed")

    monkeypatch.setattr(demo, "SECTIONS", [("crash", raising)])
    with pytest.raises(ZeroDivisionError):
        demo.run_demo(tmp_path / "b", quick=True, only=["crash"])
