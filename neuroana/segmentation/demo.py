"""Demo section for ``neuroana demo``: segment a small synthetic FISBe-like volume and score it."""

from __future__ import annotations

import time

import numpy as np


def demo_section(rng_seed: int = 0, quick: bool = False) -> dict:
    """Run the colour-clustering baseline on a synthetic volume and evaluate it with the official
    FISBe metrics (a few seconds).

    Returns
    -------
    dict
        ``section``, ``shape``, ``n_gt``, ``n_pred``, ``scores`` (S, avF1, C, clDice_TP, tp, FS,
        FM), ``seconds``, ``ok`` (metrics finite and S > 0), ``identity`` (the key metrics of the
        ground-truth neurons above the size filter scored against themselves: all 1) and ``volumes``
        (raw, gt, pred arrays, for figures).

    Examples
    --------
    >>> from neuroana.segmentation.demo import demo_section
    >>> out = demo_section(quick=True)
    >>> out["ok"]
    True
    """
    from neuroana.datasets.fisbe_synth import make_fisbe_volume
    from neuroana.segmentation import evaluate_instances, key_metrics
    from neuroana.segmentation.clustering import colour_clustering
    from neuroana.segmentation.metrics import MIN_SIZE

    shape = (32, 64, 64) if quick else (48, 96, 96)
    ds = make_fisbe_volume(shape, n_neurons=4, n_fasciculating=1, radius=2.5, random_state=rng_seed)
    t0 = time.perf_counter()
    inst = colour_clustering(ds.raw.values)
    k = key_metrics(evaluate_instances(ds.gt.values, inst))
    scores = {n: float(k[n]) for n in ("S", "avF1", "C", "clDice_TP", "tp", "FS", "FM")}
    # the official size filter drops predicted instances of <= MIN_SIZE voxels, so the identity
    # check uses the ground-truth neurons above it: their metrics against themselves are exactly 1
    big = ds.gt.values[(ds.gt.values > 0).sum(axis=(1, 2, 3)) > MIN_SIZE]
    identity = key_metrics(evaluate_instances(big, big))
    return {
        "section": "segmentation",
        "shape": list(shape),
        "n_gt": int(ds.gt.shape[0]),
        "n_pred": int(inst.shape[0]),
        "scores": scores,
        "seconds": time.perf_counter() - t0,
        "ok": bool(all(np.isfinite(v) for v in scores.values()) and scores["S"] > 0),
        "identity": {n: float(identity[n]) for n in ("S", "avF1", "C", "clDice_TP")},
        "volumes": {"raw": ds.raw.values, "gt": ds.gt.values, "pred": inst},
    }
