"""benchmarks/_harness.py: OpenBLAS variables removed before numpy, interleaving, busy flags."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import _harness

REPO = Path(__file__).resolve().parents[1]


def test_prepare_reexecs_without_openblas_variables(tmp_path):
    script = tmp_path / "s.py"
    script.write_text(
        f"import sys; sys.path.insert(0, {str(REPO / 'benchmarks')!r})\n"
        "import _harness\n_harness.prepare()\nimport os, numpy\n"
        "print(os.environ.get('OPENBLAS_CORETYPE'), _harness.recorded_openblas_env())\n"
    )
    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "512"}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "OPENBLAS_CORETYPE=Haswell;OPENBLAS_L2_SIZE=512"]


def test_prepare_refuses_after_numpy():
    import numpy  # noqa: F401  (already imported by the test session anyway)

    with pytest.raises(RuntimeError, match="before numpy"):
        _harness.prepare()


def test_interleaved_order_and_busy_flags(monkeypatch):
    calls = []
    t = _harness.time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3
    )
    assert calls == ["a", "b"] * 3
    assert len(t["a"].times) == 3
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    quiet = _harness.Timing("x", [1.0, 1.05, 1.1])
    noisy = _harness.Timing("y", [1.0, 2.0, 1.2])
    assert _harness.busy_flags({"x": quiet}, 0.25) == []
    assert "spread" in _harness.busy_flags({"y": noisy}, 0.25)[0]
    monkeypatch.setattr(os, "getloadavg", lambda: (99.0, 1.0, 1.0))
    assert "load" in _harness.busy_flags({"x": quiet}, 0.25)[0]
    args = argparse.Namespace(max_spread=0.25, strict=True)
    with pytest.raises(SystemExit):
        _harness.report_busy({"y": noisy}, args)
    assert quiet.fmt() == "1.05 s (1.00-1.10)"
