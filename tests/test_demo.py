import json
import subprocess
import sys

import numpy as np
import pytest

from neuroana import cli, demo


def _check_results(res, out):
    assert res["quick"] is True
    rt = res["sections"]["round_trip"]
    for name, sc in rt.items():
        assert sc["ok"] is True, name
    # values, not just flags: exact round trip means zero error and zero differing bins
    assert rt["spike times max |error| (s)"]["value"] == 0.0
    assert rt["binned counts: bins differing"]["value"] == 0
    assert rt["ROI traces max |error|"]["value"] == 0.0
    assert rt["true states from intervals: bins differing"]["value"] == 0
    assert res["sections"]["preprocess"]["dF/F vs true calcium: mean Pearson r"]["value"] > 0.9
    assert res["failed"] == []
    # independent check against the ground truth, read straight from the file the demo wrote
    from neuroana.datasets import make_session
    from neuroana.io import read_spike_counts

    truth = make_session(**demo.session_settings(quick=True))
    counts = read_spike_counts(
        out / "session.nwb", truth.params["bin_size"], start=0.0, stop=truth.duration
    )
    np.testing.assert_array_equal(counts.values, truth.spike_counts.values)


def test_demo_through_cli_main(tmp_path, capsys):
    out = tmp_path / "rep"
    assert cli.main(["demo", "--quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "round-trip and recovery checks: OK" in text and "FAIL" not in text
    res = json.loads((out / "results.json").read_text())
    _check_results(res, out)


def test_demo_through_subprocess(tmp_path):
    out = tmp_path / "rep2"
    proc = subprocess.run(
        [sys.executable, "-m", "neuroana.cli", "demo", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "units" in proc.stdout and "epochs" in proc.stdout
    _check_results(json.loads((out / "results.json").read_text()), out)


def test_failing_section_fails_the_demo(tmp_path, monkeypatch):
    def bad(ctx):
        return {"impossible": demo.score(0.1, 1.0, tol=0.01)}

    monkeypatch.setattr(demo, "SECTIONS", [*demo.SECTIONS, ("bad", bad)])
    with pytest.raises(demo.DemoCheckError, match="bad: impossible"):
        demo.run_demo(tmp_path, quick=True)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["failed"] == ["bad: impossible"]

    def raising(ctx):
        raise ZeroDivisionError("section crashed")

    monkeypatch.setattr(demo, "SECTIONS", [("crash", raising)])
    with pytest.raises(ZeroDivisionError):
        demo.run_demo(tmp_path / "b", quick=True)
