"""FISBe baselines on synthetic volumes, scored with the official metrics (neuroana.segmentation).

Runs the colour-clustering baseline and the U-Net + mutex-watershed baseline on held-out synthetic
FISBe-like volumes and prints S, avF1, C, clDice_TP, tp, FS, FM next to the paper's baseline
numbers (project-page leaderboard, combined test set, quoted from shared/research/fisbe.md §3.4).
The paper's numbers are on real FISBe data: they are a reference point, not a like-for-like
comparison.

    python benchmarks/fisbe_baselines.py            # CPU smoke (a few minutes on 2 cores)
    python benchmarks/fisbe_baselines.py --gpu      # GPU configuration (needs CUDA, bf16)
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from neuroana.datasets.fisbe_synth import make_fisbe_volume
from neuroana.segmentation import UNetBaseline, aggregate, evaluate_instances
from neuroana.segmentation.agglomerate import agglomerate
from neuroana.segmentation.baselines import CPU_SMOKE, GPU
from neuroana.segmentation.clustering import colour_clustering
from neuroana.segmentation.unet import DEFAULT_OFFSETS, make_targets

PAPER = {  # combined test set, project-page leaderboard (Mais et al., CVPR 2024)
    "PatchPerPix (paper)": dict(S=0.35, avF1=0.34, C=0.35, clDice_TP=0.80, tp=0.36, FS=19, FM=52),
    "Duan et al. (paper)": dict(S=0.30, avF1=0.27, C=0.33, clDice_TP=0.77, tp=0.37, FS=45, FM=29),
    "FFN+partly (paper)": dict(S=0.27, avF1=0.24, C=0.31, clDice_TP=0.80, tp=0.36, FS=18, FM=36),
    "FFN (paper)": dict(S=0.25, avF1=0.22, C=0.29, clDice_TP=0.80, tp=0.32, FS=17, FM=39),
}
KEYS = ("S", "avF1", "C", "clDice_TP", "tp", "FS", "FM")


def volumes(shape, n, seed0):
    # radius 3.5 in 64-voxel cubes: ~70 % of the neurons have more than 800 voxels. Thinner
    # neurons or flatter volumes (walks leave through z) give mostly neurons under the
    # evaluation's size filter, which no prediction can match (see the "GT" rows)
    return [
        make_fisbe_volume(shape, n_neurons=4, n_fasciculating=1, radius=3.5, random_state=seed0 + i)
        for i in range(n)
    ]


def score(test, preds):
    # a prediction without any instance is scored as one empty channel (evaluate_instances
    # rejects a 0-channel array)
    preds = [p if p.shape[0] else np.zeros((1,) + p.shape[1:], np.uint8) for p in preds]
    res = [evaluate_instances(ds.gt.values, p) for ds, p in zip(test, preds, strict=True)]
    return aggregate(res)["summary"]["combined"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true", help="GPU configuration (needs CUDA)")
    args = ap.parse_args()
    if args.gpu and not torch.cuda.is_available():
        raise SystemExit("--gpu asked for, but no CUDA device is available")
    if args.gpu:
        shape, n_train, n_test, cfg, device = (96, 192, 192), 8, 4, GPU, "cuda"
    else:
        shape, n_train, n_test, cfg, device = (64, 64, 64), 3, 4, CPU_SMOKE, "cpu"
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    print(
        f"config: {'GPU' if args.gpu else 'CPU smoke'}, volumes {shape}, "
        f"{n_train} train / {n_test} test, unet {cfg}"
    )
    train, test = volumes(shape, n_train, 1000), volumes(shape, n_test, 0)
    rows = {}

    # ceilings: GT scored against itself (only the size filter loses anything) and the
    # agglomeration of affinities computed from GT (what a perfect network would give)
    t0 = time.perf_counter()
    rows["GT itself (ceiling)"] = (score(test, [ds.gt.values for ds in test]), 0.0)
    preds = []
    for ds in test:
        t = make_targets(ds.gt.values, DEFAULT_OFFSETS)
        preds.append(agglomerate(t.fg, t.numinst, t.affinities, DEFAULT_OFFSETS))
    rows["GT affinities + MWS"] = (score(test, preds), time.perf_counter() - t0)

    t0 = time.perf_counter()
    preds = [colour_clustering(ds.raw.values) for ds in test]
    rows["colour clustering (ours)"] = (score(test, preds), time.perf_counter() - t0)

    t0 = time.perf_counter()
    est = UNetBaseline(**cfg, device=device, random_state=0, verbose=False).fit(train, val=test[:1])
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    preds = [est.predict(ds.raw).values for ds in test]
    rows["U-Net + MWS (ours)"] = (score(test, preds), t_fit + time.perf_counter() - t0)
    print(
        f"U-Net: {est.n_iter_} iterations ({est.stop_reason_}), best {est.best_iteration_}, "
        f"train loss {float(est.history_.loss[0]):.3f} -> {float(est.history_.loss[-1]):.3f}, "
        f"val {float(est.history_.val_loss.min()):.3f}, fit {t_fit:.0f} s"
    )

    head = f"{'method':<26}" + "".join(f"{k:>10}" for k in KEYS) + f"{'seconds':>10}"
    print(head)
    print("-" * len(head))
    for name, (s, sec) in rows.items():
        vals = "".join(
            f"{s[k]:>10.3f}" if k not in ("FS", "FM") else f"{int(s[k]):>10d}" for k in KEYS
        )
        print(f"{name:<26}{vals}{sec:>10.1f}")
    for name, s in PAPER.items():
        vals = "".join(f"{s[k]:>10.2f}" if k not in ("FS", "FM") else f"{s[k]:>10d}" for k in KEYS)
        print(f"{name:<26}{vals}{'':>10}")
    print(
        "ours: synthetic volumes (completely labelled); paper: real FISBe combined test set "
        "(7 completely + 16 partly), FS/FM are totals over its 134 GT neurons."
    )
    print(
        f"nGT ours: {int(rows['colour clustering (ours)'][0]['nGT'])}; "
        f"numbers: n={np.int64(n_test)} test volumes"
    )


# ----------------------------------------------------------------------------- run_all.py
def parse_rows(out: str) -> list:
    """This script's rows of the ``run_all.py`` summary table, read from its printed output."""
    import re

    from _table import NUM, Row, fmt  # benchmarks/ is on sys.path

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
                    fmt(vals[k], "", 3),
                    fmt(paper[k], "", 2),
                    f"{vals[k] / paper[k]:.2f}x",
                    "reference only",
                    "-",
                )
            )
    return rows


if __name__ == "__main__":
    main()
