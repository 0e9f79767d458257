"""Figures for FISBe volumes: maximum-intensity projections of raw, ground truth and prediction."""

from __future__ import annotations

import numpy as np


def _colour_instances(inst: np.ndarray) -> np.ndarray:
    """(N, Z, Y, X) instance channels -> (Y, X, 3) projection, one tab10 colour per instance."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    out = np.zeros(inst.shape[2:] + (3,))
    for i in range(inst.shape[0]):
        proj = (inst[i] > 0).any(axis=0)
        out[proj] = cmap(i % 10)[:3]
    return out


def plot_fisbe_projection(raw: np.ndarray, gt: np.ndarray, pred: np.ndarray | None = None):
    """Maximum projections along z: the 3-colour raw image, the GT instances, the prediction.

    Parameters
    ----------
    raw : array
        ``(3, Z, Y, X)`` raw channels.
    gt, pred : array
        ``(N, Z, Y, X)`` instance channels (FISBe layout); one colour per instance.

    Returns
    -------
    (matplotlib.figure.Figure, numpy.ndarray of Axes)

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.viz.segmentation import plot_fisbe_projection
    >>> raw = np.random.rand(3, 4, 16, 16); gt = np.zeros((2, 4, 16, 16), np.uint8); gt[0, :, 2:5] = 1
    >>> fig, axes = plot_fisbe_projection(raw, gt, gt)
    >>> len(axes)
    3
    """
    from matplotlib.figure import Figure

    n = 2 + (pred is not None)
    fig = Figure(figsize=(3.6 * n, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n))
    mip = np.asarray(raw, dtype=float).max(axis=1)
    lo, hi = np.percentile(mip, [1, 99.5], axis=(1, 2), keepdims=True)
    rgb = np.clip((mip - lo) / np.maximum(hi - lo, 1e-12), 0, 1).transpose(1, 2, 0)
    axes[0].imshow(rgb)
    axes[0].set_title("raw (max projection)")
    axes[1].imshow(_colour_instances(np.asarray(gt)))
    axes[1].set_title(f"ground truth ({gt.shape[0]} neurons)")
    if pred is not None:
        axes[2].imshow(_colour_instances(np.asarray(pred)))
        axes[2].set_title(f"prediction ({pred.shape[0]} instances)")
    for a in axes:
        a.set(xticks=[], yticks=[])
    return fig, axes
