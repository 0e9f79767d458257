"""``neuroana demo`` section: a synthetic FISBe-like volume written as a FISBe zarr sample, read
back and segmented through :mod:`neuroana.segmentation.pipeline`, scored with the official
metrics against the planted neurons."""

from __future__ import annotations


def demo_section(ctx) -> dict:
    """Segment the synthetic sample by colour clustering and score it against the truth.

    Parameters
    ----------
    ctx : neuroana.demo.DemoContext
        ``ctx.out_dir`` (the sample ``fisbe_synthetic.zarr`` is written there), ``ctx.quick``.

    Returns
    -------
    dict
        Rows ``check -> neuroana.demo.score(...)``: the ground truth scored against itself (every
        key metric exactly 1, over the neurons above the official size filter); colour
        clustering's S (> 0.5), avF1, coverage C and false splits + merges (reported).
    """
    from neuroana.datasets.fisbe_synth import make_fisbe_volume
    from neuroana.demo import score
    from neuroana.io import write_fisbe
    from neuroana.segmentation import ColourClustering, evaluate_instances, key_metrics
    from neuroana.segmentation.metrics import MIN_SIZE
    from neuroana.segmentation.pipeline import read_inputs, results

    shape = (32, 64, 64) if ctx.quick else (48, 96, 96)
    truth = make_fisbe_volume(shape, n_neurons=4, n_fasciculating=1, radius=2.5, random_state=0)
    path = ctx.out_dir / "fisbe_synthetic.zarr"
    write_fisbe(path, raw=truth.raw.values, gt=truth.gt.values)
    inputs = read_inputs([path], {})
    est = ColourClustering().fit(inputs["raw"].values)
    pred = results(est, inputs)[0]["instances"].values
    gt = truth.gt.values
    k = key_metrics(evaluate_instances(gt, pred))
    # the official size filter drops predicted instances of <= MIN_SIZE voxels, so the identity
    # check uses the ground-truth neurons above it: their metrics against themselves are exactly 1
    big = gt[(gt > 0).sum(axis=(1, 2, 3)) > MIN_SIZE]
    identity = key_metrics(evaluate_instances(big, big))
    out = {
        f"GT vs itself: {n}": score(identity[n], 1.0, tol=0.0)
        for n in ("S", "avF1", "C", "clDice_TP")
    }
    out["colour clustering: S"] = score(k["S"], 1.0, ok=k["S"] > 0.5)
    out["colour clustering: avF1"] = score(k["avF1"], 1.0)
    out["colour clustering: coverage C"] = score(k["C"], 1.0)
    out["colour clustering: false splits / merges"] = score(k["FS"] + k["FM"], 0.0)
    _figure(ctx, truth.raw.values, gt, pred)
    return out


def _figure(ctx, raw, gt, pred) -> None:
    import matplotlib.pyplot as plt

    from neuroana.viz.segmentation import plot_fisbe_projection

    fig, _ = plot_fisbe_projection(raw, gt, pred)
    ctx.save_figure(
        "segmentation", fig, "fisbe", "synthetic FISBe volume: raw, ground truth, colour clustering"
    )
    plt.close(fig)
