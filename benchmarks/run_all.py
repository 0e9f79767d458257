"""Every analysis's benchmark in its CPU configuration, summarised in ONE table against its anchor.

The benchmarks are those the analysis registry lists (``Analysis.benchmarks`` in
:mod:`neuroana.analysis`); this script names no analysis. Each benchmark script runs in its own
subprocess with its existing flags (so its own thread settings and peak-memory measurements are
not disturbed by the others); its printed numbers are read back by the script's own
``parse_rows`` and tabulated as: analysis, measure, anchor, ours, anchor value, ratio, target, met?

    python benchmarks/run_all.py            # full CPU configurations, ~15 min on 2 cores
    python benchmarks/run_all.py --quick    # ~5 min: small connectome tensor, one HMM-GLM dataset,
                                            # 64 adaptation conditions, no FISBe U-Net training
    python benchmarks/run_all.py --only hmmglm connectome --log-dir bench-logs

Anchors and targets (issue 15; see benchmarks/RESULTS.md for measured numbers and GPU results).
Every timing is the script's median WALL time over interleaved repeats at the thread count in the
``threads`` column; the anchor column says "same run" when the anchor was measured in the same
script run, "recorded" when it is a stored number:

- connectome: tensorly ``non_negative_parafac_hals`` to the same relative error, same tensor,
  rank and threads, same run (target >= 5x less wall time);
- hmmglm: the one-hot HMM-GLM paper code on its own simulated datasets, recorded CPU seconds
  (``../shared/hmmglm_reference``; target >= 15x at 1 thread);
- fisbe metrics: the official evaluation code on a 400 x 700 x 700 sample, recorded ~85 s and
  ~16 GB (target <= 2 s wall and <= 2 GB peak);
- adaptation: a per-condition loop of the Newton gain solver vs the batched torch solve, same run
  (target: faster, with the same gains);
- pretrain: held-out log-likelihood per window vs a per-neuron-rate Poisson baseline and hub /
  excitatory edge AUROCs (see pretrain.py);
- fisbe baselines: S and avF1 next to the paper's baselines (reference only);
- startup (package-wide, :data:`GENERAL`): ``import neuroana.io`` <= 0.3 s and ``neuroana info
  FILE`` <= 1 s, next to ``python -c pass`` measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))  # the repository's neuroana when run from a checkout

from _table import Row  # noqa: E402


@dataclass(frozen=True)
class Bench:
    analysis: str
    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...] | None


#: benchmarks of the package as a whole, not of one analysis (run after the registry's)
GENERAL: tuple[Bench, ...] = (Bench("general", "startup", "startup.py", (), ("--repeats", "3")),)


def benches() -> list[Bench]:
    """Every benchmark of every registered analysis (:mod:`neuroana.analysis`), in registry order,
    then the package-wide ones (:data:`GENERAL`)."""
    from neuroana.analysis import analyses

    return [
        Bench(a.name, b.name, b.script, tuple(b.full), None if b.quick is None else tuple(b.quick))
        for a in analyses()
        for b in a.benchmarks
    ] + list(GENERAL)


def parser(b: Bench):
    """The script's ``parse_rows`` (imported from the script file; its ``main`` does not run)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{b.name}", HERE / b.script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parse_rows


def run_bench(b: Bench, quick: bool, log_dir: Path | None) -> tuple[list[Row], float]:
    args = b.quick if quick else b.full
    cmd = [sys.executable, str(HERE / b.script), *args]
    print(f"[run_all] {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    wall = time.perf_counter() - t0
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / f"{b.name}.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    fail = None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        fail = f"FAILED (exit {proc.returncode}: {last[:80]})"
    else:
        try:
            rows = parser(b)(proc.stdout)
        except LookupError as err:
            fail = f"FAILED ({err})"
    if fail is not None:
        rows = [Row(b.name, " ".join(args) or "(defaults)", "-", fail, "-", "-", "-", "NO")]
    print(f"[run_all] {b.name}: {wall:.0f} s wall", flush=True)
    return rows, wall


def print_table(rows: list[Row]) -> None:
    head = (
        "analysis",
        "measure",
        "threads",
        "anchor",
        "ours",
        "anchor value",
        "ratio",
        "target",
        "met?",
    )
    cells = [head] + [
        (
            r.analysis,
            r.measure,
            r.threads,
            r.anchor,
            r.ours,
            r.anchor_value,
            r.ratio,
            r.target,
            r.met,
        )
        for r in rows
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for c in cells[1:]:
        print("| " + " | ".join(c) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller configurations, ~5 min")
    ap.add_argument("--only", nargs="+", choices=[b.name for b in benches()], default=None)
    ap.add_argument("--log-dir", type=Path, default=None, help="keep each script's full output")
    args = ap.parse_args()
    rows, walls = [], {}
    t0 = time.perf_counter()
    for b in benches():
        if args.only and b.name not in args.only:
            continue
        if args.quick and b.quick is None:
            print(f"[run_all] {b.name}: skipped with --quick (full run only)", flush=True)
            rows.append(Row(b.name, "-", "-", "skipped with --quick", "-", "-", "-", "-"))
            continue
        r, walls[b.name] = run_bench(b, args.quick, args.log_dir)
        rows += r
    print(
        f"\n## neuroana benchmarks ({'quick' if args.quick else 'full'} CPU configurations, "
        f"{time.perf_counter() - t0:.0f} s; per script: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in walls.items())
        + ")\n"
    )
    print_table(rows)
    return 0 if all(r.met != "NO" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
