"""benchmarks/run_all.py: each script's ``parse_rows`` reads its real output truthfully.

The stored outputs in ``tests/bench_outputs/`` are verbatim runs of the scripts (their quick
configurations, taken under load); the live tests run two cheap scripts through ``run_all`` and a
slow one runs every benchmark's ``--quick`` configuration.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ROOT / "tests" / "bench_outputs"
OWNED = ("connectome", "hmmglm", "adaptation", "pretrain", "fisbe_metrics", "startup")


@pytest.fixture(scope="module")
def run_all():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import run_all
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return run_all


def _bench(run_all, name):
    return {b.name: b for b in run_all.benches()}[name]


def _num(cell: str) -> float:
    return float(re.match(r"[+-]?[\d.]+", cell).group(0))


def _check(rows, name):
    assert rows, name
    for r in rows:
        assert r.threads != "-" and re.match(r"\d", r.threads), (name, r)
        assert r.anchor.endswith(("(same run)", "(recorded)")), (name, r)
        assert r.met in ("yes", "NO") or (r.met == "-" and "(not this size)" in r.target)
        assert "CPU s" not in r.measure.split(",")[0], (name, r)  # timings are wall time


def test_startup_is_listed_beside_the_registry(run_all):
    b = _bench(run_all, "startup")
    assert b.analysis == "general" and b.script == "startup.py"


@pytest.mark.parametrize("name", OWNED)
def test_parse_rows_on_recorded_output(run_all, name):
    out = (OUTPUTS / f"{name}.txt").read_text()
    rows = run_all.parser(_bench(run_all, name))(out)
    _check(rows, name)
    if name == "connectome":  # the wall-time column, not the CPU one, against tensorly's wall
        tl = re.search(r"^\| tensorly[^|]*\| ([\d.]+) \| ([\d.]+) \|", out, re.M)
        f64 = re.search(r"^\| neuroana ntf \(torch CPU, float64[^|]*\| ([\d.]+) \|", out, re.M)
        assert _num(rows[0].ours) == float(f64.group(1))
        assert _num(rows[0].anchor_value) == float(tl.group(1)) != float(tl.group(2))
        assert rows[0].target == ">= 5x less wall time"
    if name == "fisbe_metrics":
        assert [r.target.split(" at ")[0] for r in rows] == ["<= 2 s", "<= 2 GB"]
        assert [r.met for r in rows] == ["-", "-"]  # the stored run is 100 x 200 x 200
        assert "skeleton" in rows[0].threads
    if name == "hmmglm":
        assert all(r.target == ">= 15x less at 1 thread" for r in rows)
    if name == "pretrain":  # quality rows: the met column follows the numbers and the target
        for r in rows:
            if r.target.startswith((">=", ">")) and r.ratio != "-":
                need = (
                    _num(r.target.lstrip(">= ")) if r.target[-1].isdigit() else _num(r.anchor_value)
                )
                ok = _num(r.ours) >= need if r.target.startswith(">=") else _num(r.ours) > need
                assert r.met == ("yes" if ok else "NO"), r
    for r in rows:
        if r.ratio.endswith("x less"):
            a, o = _num(r.anchor_value), _num(r.ours)
            assert abs(_num(r.ratio) - a / o) <= 0.051 * max(1.0, a / o), r


def test_a_broken_output_is_reported_not_guessed(run_all):
    for name in OWNED:
        with pytest.raises(LookupError):
            run_all.parser(_bench(run_all, name))("nothing useful here\n")


@pytest.mark.parametrize(
    "name,args",
    [
        ("adaptation", ("--device", "cpu", "--n-conditions", "4", "--repeats", "1")),
        ("startup", ("--repeats", "1")),
    ],
)
def test_live_run_parses(run_all, name, args):
    b = _bench(run_all, name)
    b = run_all.Bench(b.analysis, b.name, b.script, b.full, tuple(args))
    rows, _ = run_all.run_bench(b, quick=True, log_dir=None)
    _check(rows, name)


@pytest.mark.slow
def test_every_quick_benchmark_parses(run_all):
    for b in run_all.benches():
        if b.quick is None or b.name == "pretrain":
            continue
        rows, _ = run_all.run_bench(b, quick=True, log_dir=None)
        _check(rows, b.name)
