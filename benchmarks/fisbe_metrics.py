"""FISBe metrics: wall time and peak memory of ``evaluate_instances`` on a FISBe-sized volume.

Anchor: the official evaluation code (evalinstseg cc34f4d, ``--app flylight`` settings) on
synthetic 400 x 700 x 700 volumes with 5-9 instances took 82-87 s and 16-17 GB peak RSS on 2 CPU
cores (/work/shared/fisbe_reference/README.md, research note section 5). The evaluation runs in a
fresh subprocess so ``ru_maxrss`` is its own peak (input arrays included).

    python benchmarks/fisbe_metrics.py            # 400 x 700 x 700
    python benchmarks/fisbe_metrics.py --small    # 100 x 200 x 200, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

OFFICIAL = {"wall_s": 85.0, "peak_gb": 16.0, "shape": (400, 700, 700)}
OFFICIAL_SMALL = {"wall_s": 6.5, "peak_gb": 0.5, "shape": (100, 200, 200)}

_CHILD = r"""
import json, resource, sys, time, numpy as np
gt, pred = np.load(sys.argv[1] + "/gt.npy"), np.load(sys.argv[1] + "/pred.npy")
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
from neuroana.segmentation import evaluate_instances, key_metrics
t = time.perf_counter(); c = time.process_time()
r = evaluate_instances(gt, pred)
wall = time.perf_counter() - t; cpu = time.process_time() - c
km = key_metrics(r)
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    "inputs_gb": rss0, "S": km["S"], "nGT": km["nGT"], "nPred": km["nPred"], "FS": km["FS"], "FM": km["FM"]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="100 x 200 x 200 quick run")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from neuroana.datasets.fisbe_synth import make_fisbe_volume, perturb_prediction

    anchor = OFFICIAL_SMALL if args.small else OFFICIAL
    shape = anchor["shape"]
    t = time.perf_counter()
    ds = make_fisbe_volume(
        shape,
        n_neurons=6,
        n_fasciculating=2,
        radius=3.0,
        levels=3,
        raw=False,
        random_state=args.seed,
    )
    gt = ds.gt.values
    pred = perturb_prediction(gt, random_state=args.seed)
    gen_s = time.perf_counter() - t
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        path = tmp
        np.save(os.path.join(tmp, "gt.npy"), gt)
        np.save(os.path.join(tmp, "pred.npy"), pred)
        del ds, gt, pred
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, path], capture_output=True, text=True, check=True
        )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"volume {shape}, generated in {gen_s:.1f} s; nGT={res['nGT']} nPred={res['nPred']} "
        f"S={res['S']:.4f} FS={res['FS']} FM={res['FM']}"
    )
    print(f"{'':22s}{'neuroana':>12s}{'official':>12s}{'ratio':>10s}")
    print(
        f"{'wall time [s]':22s}{res['wall_s']:12.2f}{anchor['wall_s']:12.1f}"
        f"{anchor['wall_s'] / res['wall_s']:9.1f}x"
    )
    print(
        f"{'peak RSS [GB]':22s}{res['peak_gb']:12.2f}{anchor['peak_gb']:12.1f}"
        f"{anchor['peak_gb'] / res['peak_gb']:9.1f}x"
    )
    print(f"{'CPU time [s]':22s}{res['cpu_s']:12.2f}")
    print(
        f"(RSS after loading the inputs, before evaluating: {res['inputs_gb']:.2f} GB; "
        "official figures: 2 cores, evalinstseg cc34f4d, measured on other synthetic volumes)"
    )


if __name__ == "__main__":
    main()
