"""FISBe metrics: wall time, CPU time and peak memory of ``evaluate_files`` on a FISBe-sized sample.

Anchor: the official evaluation code (evalinstseg cc34f4d, ``--app flylight`` settings) on
synthetic 400 x 700 x 700 volumes with 5-9 instances took 82-87 s and 16-17 GB peak RSS on 2 CPU
cores (../shared/fisbe_reference/README.md, ``official_timing.json``). Target (issue 15): <= 2 s, <= 2 GB.
Instances are skeletonised on as many threads as the process may use cores (printed).

The synthetic GT (8 neurons, 2 of them fasciculating) and a prediction with planted errors
(a split, a merge, a dilated and a missing neuron, a false-positive tube; 8 channels) are generated
sparsely (flat voxel indices per instance) and written to FISBe-layout zarr directories one
channel at a time in a temporary directory, so generating never holds a dense volume. Each
measurement runs in a fresh subprocess; its ``ru_maxrss`` is the peak of that process alone:

- ``evaluate_files`` (lazy, what ``neuroana fisbe evaluate`` runs): reads one channel at a time;
- ``evaluate_instances`` on both volumes loaded into memory (the in-memory path, for reference).

Timing rules in ``benchmarks/_harness.py``: wall clock, ``--threads`` (default 2, the official
figures' core count) for BLAS/OpenMP in the child processes, the median (min-max) of ``--repeats``
lazy runs, busy runs flagged, OpenBLAS variables removed. CPU time is reported beside wall time.

    python benchmarks/fisbe_metrics.py            # 400 x 700 x 700
    python benchmarks/fisbe_metrics.py --small    # 100 x 200 x 200, seconds
"""

from __future__ import annotations

if __name__ == "__main__":  # before numpy: drop OPENBLAS_CORETYPE / L2_SIZE and re-exec
    import _harness

    _harness.prepare()
else:
    from benchmarks import _harness

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import zarr  # noqa: E402  (a benchmark script, not the package: writes its inputs per channel)
from scipy import ndimage  # noqa: E402

from neuroana.datasets.fisbe_synth import _stamp, _tree, _walk  # noqa: E402

OFFICIAL = {"wall_s": 85.0, "peak_gb": 16.0, "shape": (400, 700, 700)}
OFFICIAL_SMALL = {"wall_s": 6.5, "peak_gb": 0.5, "shape": (100, 200, 200)}

_CHILD = r"""
import json, resource, sys, time
import numpy as np
mode, gt_path, pred_path = sys.argv[1:4]
from neuroana.segmentation import evaluate_files, evaluate_instances, key_metrics
from neuroana.backend.cores import usable_cores
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
t = time.perf_counter(); c = time.process_time()
if mode == "lazy":
    km = evaluate_files(gt_path, pred_path)["summary"]
else:
    from neuroana.io.fisbe import GT_KEY, PRED_KEY, open_fisbe_labels
    g, p = open_fisbe_labels(gt_path, GT_KEY), open_fisbe_labels(pred_path, PRED_KEY)
    gt = np.stack([g[c] for c in range(g.shape[0])])
    pred = np.stack([p[c] for c in range(p.shape[0])])
    km = key_metrics(evaluate_instances(gt, pred))
wall = time.perf_counter() - t; cpu = time.process_time() - c
print(json.dumps({"wall_s": wall, "cpu_s": cpu,
    "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, "import_gb": rss0,
    "skeleton_threads": usable_cores(), "S": km["S"], "nGT": km["nGT"], "nPred": km["nPred"], "FS": km["FS"], "FM": km["FM"]}))
"""


def _gt_flats(shape, seed: int, n_neurons: int = 6, n_fasc: int = 2, radius: float = 3.0):
    """Flat voxel indices of each GT neuron (same construction as ``make_fisbe_volume``)."""
    rng = np.random.default_rng(seed)
    length = 0.9 * max(shape)
    trees = [_tree(rng, shape, length, 3) for _ in range(n_neurons)]
    flats = [_stamp(t, shape, radius) for t in trees]
    for k in range(n_fasc):
        host = trees[k % n_neurons][0][0]
        a = rng.integers(0, max(1, len(host) // 3))
        b = min(len(host), a + max(10, len(host) // 2))
        shift = rng.choice([-1, 1], 3) * rng.integers(1, 3, 3) * (rng.random(3) < 0.5)
        path = host[a:b] + shift
        tail = _walk(rng, path[-1], rng.normal(size=3), length / 2, shape)
        flats.append(_stamp([(np.clip(path, 0, np.asarray(shape) - 1), 0), (tail, 1)], shape, 2.4))
    return flats, rng


def _dilate(flat, shape):
    """Flat indices of the 6-connected dilation of a sparse mask (on its bounding box)."""
    z, y, x = np.unravel_index(flat, shape)
    lo = np.maximum([z.min() - 1, y.min() - 1, x.min() - 1], 0)
    hi = np.minimum([z.max() + 2, y.max() + 2, x.max() + 2], shape)
    crop = np.zeros(tuple(hi - lo), bool)
    crop[z - lo[0], y - lo[1], x - lo[2]] = True
    cz, cy, cx = np.nonzero(ndimage.binary_dilation(crop))
    return np.ravel_multi_index((cz + lo[0], cy + lo[1], cx + lo[2]), shape)


def _pred_flats(gt, shape, rng):
    """Split neuron 0 at its median z, merge 1 and 2, dilate 3, drop the last, add a false tube."""
    z0 = np.unravel_index(gt[0], shape)[0]
    cut = int(np.median(z0))
    out = [gt[0][z0 < cut], gt[0][z0 >= cut], np.union1d(gt[1], gt[2]), _dilate(gt[3], shape)]
    out += gt[4:-1]
    start = np.asarray(shape) / 2
    out.append(_stamp([(_walk(rng, start, rng.normal(size=3), max(shape), shape), 0)], shape, 2.0))
    return out


def _write(path: Path, key: str, flats, shape) -> None:
    """FISBe-layout zarr v2 (as ``write_fisbe``), channel ``i`` = value ``i + 1``, one at a time."""
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    chunks = (1,) + tuple(min(s, 64) for s in shape)
    arr = root.create_array(key, shape=(len(flats),) + shape, dtype=np.uint8, chunks=chunks)
    for i, f in enumerate(flats):
        chan = np.zeros(shape, np.uint8)
        chan.reshape(-1)[f] = i + 1
        arr[i] = chan
        del chan


_ALL_RUNS: list[dict] = []


def _measure(mode: str, gt_path: Path, pred_path: Path) -> dict:
    cmd = [sys.executable, "-c", _CHILD, mode, str(gt_path), str(pred_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if mode == "lazy":
        _ALL_RUNS.append(res)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="100 x 200 x 200 quick run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-dense", action="store_true", help="skip the in-memory reference run")
    _harness.add_arguments(ap, repeats=3, threads=(2,))
    args = ap.parse_args()
    print(_harness.header("FISBe metrics: evaluate_files vs the official evaluator"))
    print(_harness.set_threads(args.threads[0]))
    anchor = OFFICIAL_SMALL if args.small else OFFICIAL
    shape = tuple(anchor["shape"])
    t = time.perf_counter()
    gt, rng = _gt_flats(shape, args.seed)
    pred = _pred_flats(gt, shape, rng)
    with tempfile.TemporaryDirectory() as tmp:
        gt_path, pred_path = Path(tmp) / "synth.zarr", Path(tmp) / "synth_pred.zarr"
        _write(gt_path, "volumes/gt_instances", gt, shape)
        _write(pred_path, "volumes/pred_instances", pred, shape)
        gen_s = time.perf_counter() - t
        fg = sum(len(f) for f in gt) + sum(len(f) for f in pred)
        del gt, pred
        timing = _harness.time_interleaved(
            {"lazy": lambda: _measure("lazy", gt_path, pred_path)}, args.repeats
        )
        runs = [timing["lazy"].result]
        rows = {"lazy": dict(runs[0])}
        walls = [r["wall_s"] for r in _ALL_RUNS]
        rows["lazy"]["wall_s"] = statistics.median(walls)
        rows["lazy"]["peak_gb"] = max(r["peak_gb"] for r in _ALL_RUNS)
        lazy_spread = f"{min(walls):.2f}-{max(walls):.2f}"
        _harness.report_busy(timing, args)
        if not args.no_dense:
            rows["dense"] = _measure("dense", gt_path, pred_path)
    r = rows["lazy"]
    print(f"skeleton threads: {r['skeleton_threads']} (the cores this process may use)")
    print(
        f"volume {shape}, generated and written in {gen_s:.1f} s ({fg / 1e6:.1f} M foreground "
        f"voxels); nGT={r['nGT']} nPred={r['nPred']} S={r['S']:.4f} FS={r['FS']} FM={r['FM']}"
    )
    names = {"lazy": "evaluate_files (zarr, lazy)", "dense": "in memory (both loaded)"}
    print(f"{'':30s}{'wall [s]':>10s}{'CPU [s]':>10s}{'peak RSS [GB]':>15s}{'vs official':>18s}")
    for k, res in rows.items():
        ratio = (
            f"{anchor['wall_s'] / res['wall_s']:.1f}x / {anchor['peak_gb'] / res['peak_gb']:.1f}x"
        )
        print(
            f"{names[k]:30s}{res['wall_s']:10.2f}{res['cpu_s']:10.2f}{res['peak_gb']:15.2f}"
            f"{ratio:>18s}"
        )
        if res["S"] != r["S"] or res["FS"] != r["FS"] or res["FM"] != r["FM"]:
            raise SystemExit(f"{k} run disagrees with the lazy run: {res} vs {r}")
    print(
        f"{'official evalinstseg (2 cores)':30s}{anchor['wall_s']:10.1f}{'':>10s}{anchor['peak_gb']:15.1f}"
    )
    print(f"{'target':30s}{2.0:10.1f}{'':>10s}{2.0:15.1f}")
    print(
        f"(lazy: wall = median of {args.repeats} runs, min-max {lazy_spread} s; peak = the "
        "largest of them; in-memory: one run)"
    )
    print(
        f"(peak RSS after imports, before evaluating: {r['import_gb']:.2f} GB; official figures: "
        "2 cores, evalinstseg cc34f4d, measured on other synthetic volumes of this size)"
    )


# ----------------------------------------------------------------------------- run_all.py
def parse_rows(out: str) -> list:
    """This script's rows of the ``run_all.py`` summary table, read from its printed output."""
    from _table import NUM, Row, fmt, met, search, threads_of  # benchmarks/ is on sys.path

    m = search(rf"^evaluate_files \(zarr, lazy\)\s+{NUM}\s+{NUM}\s+{NUM}", out, "lazy row")
    wall, cpu, peak = (float(m.group(i)) for i in (1, 2, 3))
    o = search(rf"^official evalinstseg \(2 cores\)\s+{NUM}\s+{NUM}", out, "official row")
    o_wall, o_peak = float(o.group(1)), float(o.group(2))
    shape = search(r"^volume \(([\d, ]+)\)", out, "volume").group(1).replace(", ", "x")
    sk = search(r"^skeleton threads: (\d+)", out, "skeleton threads").group(1)
    threads = f"{threads_of(out)} BLAS, {sk} skeleton"
    full = shape == "400x700x700"  # the targets are for this size only
    anchor = "official evalinstseg, 2 cores (recorded)"
    return [
        Row(
            "fisbe metrics",
            f"evaluate_files wall s, {shape} (CPU {cpu:.1f} s)",
            anchor,
            fmt(wall, " s"),
            fmt(o_wall, " s", 1),
            f"{o_wall / wall:.1f}x less",
            "<= 2 s" if full else "<= 2 s at 400x700x700 (not this size)",
            met(wall <= 2.0) if full else "-",
            threads,
        ),
        Row(
            "fisbe metrics",
            f"evaluate_files peak RSS, {shape}",
            anchor,
            fmt(peak, " GB"),
            fmt(o_peak, " GB", 1),
            f"{o_peak / peak:.1f}x less",
            "<= 2 GB" if full else "<= 2 GB at 400x700x700 (not this size)",
            met(peak <= 2.0) if full else "-",
            threads,
        ),
    ]


if __name__ == "__main__":
    main()
