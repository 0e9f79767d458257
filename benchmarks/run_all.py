"""Every analysis's benchmark in its CPU configuration, summarised in ONE table against its anchor.

Each benchmark script runs in its own subprocess with its existing flags (so its own thread
settings and peak-memory measurements are not disturbed by the others); its printed numbers are
read back and tabulated as: analysis, measure, anchor, ours, anchor value, ratio, target, met?

    python benchmarks/run_all.py            # full CPU configurations, ~15 min on 2 cores
    python benchmarks/run_all.py --quick    # ~5 min: small connectome tensor, one HMM-GLM dataset,
                                            # 64 adaptation conditions, no FISBe U-Net training
    python benchmarks/run_all.py --only hmmglm connectome --log-dir bench-logs

Anchors (from the issues; see benchmarks/RESULTS.md for measured numbers and GPU results):

- connectome: CPU time of tensorly ``non_negative_parafac_hals`` to the same relative error, same
  tensor and rank (target >= 3x less CPU time);
- hmmglm: the one-hot HMM-GLM paper code's CPU seconds on its own simulated datasets
  (``../shared/hmmglm_reference``; target >= 4x less for no prior / Gaussian, >= 2x for one-hot);
- fisbe metrics: the official evaluation code on a 400 x 700 x 700 sample, ~85 s and ~16 GB
  (target < 8 s wall and < 3 GB peak);
- adaptation: a per-condition loop of the Newton gain solver vs the batched torch solve (target:
  faster, with the same gains);
- pretrain: on the outside case, held-out bits/spike vs the reference coupled GLM (target: >=),
  held-out hub / excitatory edge AUROCs (targets >= 0.95 / >= 0.9) and speed R² vs the ridge;
- fisbe baselines: S and avF1 next to the paper's baselines (reference only: synthetic volumes here,
  real FISBe data there).

Timings are CPU seconds where the scripts report them (robust to other load on a shared machine)
and wall seconds otherwise; the table says which.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
NUM = r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)"


@dataclass
class Row:
    analysis: str
    measure: str
    anchor: str
    ours: str
    anchor_value: str
    ratio: str
    target: str
    met: str


@dataclass
class Bench:
    name: str
    script: str
    full: list[str]
    quick: list[str]
    parse: Callable[[str], list[Row]]


def _f(x: float, unit: str = "", digits: int = 2) -> str:
    return f"{x:.{digits}f}{unit}"


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


def _search(pattern: str, text: str, what: str) -> re.Match:
    m = re.search(pattern, text, flags=re.M)
    if m is None:
        raise LookupError(f"{what}: not found in the script's output")
    return m


# ----------------------------------------------------------------------------- parsers
def parse_connectome(out: str) -> list[Row]:
    row = r"^\| {name}[^|]*\| {num} \| {num} \| (\d+) \| {num} \| {num} \|"
    tl = _search(row.format(name=r"tensorly", num=NUM), out, "tensorly row")
    tl_cpu = float(tl.group(1))
    shape = _search(r"^tensor \(([\d, ]+)\)", out, "tensor").group(1).replace(", ", "x")
    rows = []
    for dt in ("float64", "float32"):
        m = _search(row.format(name=rf"neuroana ntf \(torch CPU, {dt}", num=NUM), out, dt)
        cpu, it, rel = float(m.group(1)), int(m.group(3)), float(m.group(4))
        rows.append(
            Row(
                "connectome",
                f"NTF CPU s, {shape} rank 8, to rel.err {rel:.4f} ({dt}, {it} it)",
                "tensorly non_negative_parafac_hals",
                _f(cpu, " s", 1),
                _f(tl_cpu, " s", 1),
                f"{tl_cpu / cpu:.1f}x less",
                ">= 3x less",
                _met(tl_cpu / cpu >= 3),
            )
        )
    return rows


def parse_hmmglm(out: str) -> list[Row]:
    rows = []
    blocks = re.split(r"^seed(\d+):", out, flags=re.M)
    for seed, text in zip(blocks[1::2], blocks[2::2], strict=True):
        for m in re.finditer(rf"^(none|gaussian|onehot)\s+{NUM}\s+{NUM}\s+{NUM}x", text, re.M):
            model, ours, paper = m.group(1), float(m.group(2)), float(m.group(3))
            need = 2.0 if model == "onehot" else 4.0
            rows.append(
                Row(
                    "hmmglm",
                    f"fit CPU s, seed{seed}, prior={model}",
                    "paper code (onehot-hmmglm), CPU s",
                    _f(ours, " s", 1),
                    _f(paper, " s", 1),
                    f"{paper / ours:.1f}x less",
                    f">= {need:g}x less",
                    _met(paper / ours >= need),
                )
            )
    if not rows:
        raise LookupError("hmmglm: no model rows in the script's output")
    return rows


def parse_fisbe_metrics(out: str) -> list[Row]:
    m = _search(rf"^evaluate_files \(zarr, lazy\)\s+{NUM}\s+{NUM}\s+{NUM}", out, "lazy row")
    wall, cpu, peak = (float(m.group(i)) for i in (1, 2, 3))
    o = _search(rf"^official evalinstseg \(2 cores\)\s+{NUM}\s+{NUM}", out, "official row")
    o_wall, o_peak = float(o.group(1)), float(o.group(2))
    shape = _search(r"^volume \(([\d, ]+)\)", out, "volume").group(1).replace(", ", "x")
    return [
        Row(
            "fisbe metrics",
            f"evaluate_files wall s, {shape} (CPU {cpu:.1f} s)",
            "official evalinstseg, 2 cores",
            _f(wall, " s", 1),
            _f(o_wall, " s", 1),
            f"{o_wall / wall:.1f}x less",
            "< 8 s",
            _met(wall < 8.0),
        ),
        Row(
            "fisbe metrics",
            f"evaluate_files peak RSS, {shape}",
            "official evalinstseg, 2 cores",
            _f(peak, " GB"),
            _f(o_peak, " GB", 1),
            f"{o_peak / peak:.1f}x less",
            "< 3 GB",
            _met(peak < 3.0),
        ),
    ]


def parse_adaptation(out: str) -> list[Row]:
    m = _search(rf"anchor\): {NUM}s\s+batched: {NUM}s", out, "timing line")
    loop, batched = float(m.group(1)), float(m.group(2))
    err = float(_search(rf"max relative gain difference: {NUM}", out, "gain difference").group(1))
    n = _search(r"conditions=(\d+) N=(\d+)", out, "sizes")
    return [
        Row(
            "adaptation",
            f"optimal gains wall s, {n.group(1)} conditions x {n.group(2)} neurons "
            f"(max rel. diff {err:.0e})",
            "per-condition Newton loop",
            _f(batched, " s"),
            _f(loop, " s"),
            f"{loop / batched:.1f}x less",
            "faster, same gains (< 1e-6)",
            _met(batched < loop and err < 1e-6),
        )
    ]


def parse_pretrain(out: str) -> list[Row]:
    rows = []
    for block in re.split(r"^== case ", out, flags=re.M)[1:]:
        name = block.split(":")[0]
        model = float(_search(rf"^\s+model \(default\)\s+{NUM}", block, "model bits").group(1))
        ref = float(_search(rf"^\s+reference GLM \(truth.json\)\s+{NUM}", block, "ref").group(1))
        rows.append(
            Row(
                "pretrain",
                f"{name}: held-out bits/spike",
                "reference coupled GLM",
                _f(model, "", 4),
                _f(ref, "", 4),
                f"{model / ref:.2f}x",
                ">= reference",
                _met(model >= ref),
            )
        )
        m = re.search(rf"^\s+model\s+{NUM}\s+{NUM}\s+{NUM}", block, re.M)
        c = re.search(rf"^\s+truth.json CCG\s+{NUM}\s+{NUM}", block, re.M)
        if m and c and m.group(1) != "nan":
            for i, (edge, need) in enumerate((("hub", 0.95), ("excitatory", 0.9))):
                v, a = float(m.group(1 + i)), float(c.group(1 + i))
                rows.append(
                    Row(
                        "pretrain",
                        f"{name}: AUROC {edge} edges (held-out)",
                        "cross-correlogram",
                        _f(v, "", 3),
                        _f(a, "", 3),
                        f"{v / a:.2f}x",
                        f">= {need}",
                        _met(v >= need),
                    )
                )
        d = re.search(rf"^\s+model latent \+ counts\s+{NUM}", block, re.M)
        r = re.search(rf"^\s+truth.json ridge t-4..t\+4\s+{NUM}", block, re.M)
        if d and r:
            v, a = float(d.group(1)), float(r.group(1))
            rows.append(
                Row(
                    "pretrain",
                    f"{name}: speed R² (held-out)",
                    "ridge t-4..t+4",
                    _f(v, "", 3),
                    _f(a, "", 3),
                    f"{v / a:.2f}x",
                    ">= ridge",
                    _met(v >= a),
                )
            )
    return rows


def parse_fisbe_baselines(out: str) -> list[Row]:
    keys = ("S", "avF1", "C", "clDice_TP", "tp", "FS", "FM")
    table = {}
    for m in re.finditer(
        rf"^(.+?)\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+(\d+)\s+(\d+)", out, re.M
    ):
        table[m.group(1).strip()] = dict(zip(keys, map(float, m.groups()[1:]), strict=True))
    paper = table.get("PatchPerPix (paper)")
    if paper is None:
        raise LookupError("fisbe baselines: no PatchPerPix (paper) row in the script's output")
    rows = []
    for name, vals in table.items():
        if "(ours)" not in name:
            continue
        for k in ("S", "avF1"):
            rows.append(
                Row(
                    "fisbe baselines",
                    f"{k}, {name.replace(' (ours)', '')} (synthetic volumes)",
                    "PatchPerPix (paper, real data)",
                    _f(vals[k], "", 3),
                    _f(paper[k], "", 2),
                    f"{vals[k] / paper[k]:.2f}x",
                    "reference only",
                    "-",
                )
            )
    return rows


BENCHES = [
    Bench("connectome", "connectome.py", [], ["--quick"], parse_connectome),
    Bench("hmmglm", "hmmglm.py", [], ["--seeds", "0"], parse_hmmglm),
    Bench("fisbe_metrics", "fisbe_metrics.py", ["--no-dense"], ["--no-dense"], parse_fisbe_metrics),
    Bench(
        "adaptation",
        "adaptation.py",
        ["--device", "cpu"],
        ["--device", "cpu", "--n-conditions", "64"],
        parse_adaptation,
    ),
    Bench(
        "pretrain",
        "pretrain.py",
        ["--config", "cpu", "--sections", "case"],
        ["--config", "cpu", "--sections", "case"],
        parse_pretrain,
    ),
    Bench("fisbe_baselines", "fisbe_baselines.py", [], None, parse_fisbe_baselines),
]


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
            rows = b.parse(proc.stdout)
        except LookupError as err:
            fail = f"FAILED ({err})"
    if fail is not None:
        rows = [Row(b.name, " ".join(args) or "(defaults)", "-", fail, "-", "-", "-", "NO")]
    print(f"[run_all] {b.name}: {wall:.0f} s wall", flush=True)
    return rows, wall


def print_table(rows: list[Row]) -> None:
    head = ("analysis", "measure", "anchor", "ours", "anchor value", "ratio", "target", "met?")
    cells = [head] + [
        (r.analysis, r.measure, r.anchor, r.ours, r.anchor_value, r.ratio, r.target, r.met)
        for r in rows
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for c in cells[1:]:
        print("| " + " | ".join(c) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller configurations, ~5 min")
    ap.add_argument("--only", nargs="+", choices=[b.name for b in BENCHES], default=None)
    ap.add_argument("--log-dir", type=Path, default=None, help="keep each script's full output")
    args = ap.parse_args()
    rows, walls = [], {}
    t0 = time.perf_counter()
    for b in BENCHES:
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
