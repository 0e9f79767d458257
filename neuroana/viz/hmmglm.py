"""Figures for HMM-GLMs: hidden states along time, per-state and shared connectivity."""

from __future__ import annotations

import numpy as np
import xarray as xr


def plot_states(
    spikes: xr.DataArray,
    inferred: xr.DataArray,
    true: np.ndarray | None = None,
    posterior: xr.DataArray | None = None,
):
    """Spike raster of one trial with the inferred (and true) state sequence under it.

    Parameters
    ----------
    spikes : xarray.DataArray
        ``("time", "unit")`` counts of one trial.
    inferred : xarray.DataArray
        ``("time",)`` Viterbi states of that trial.
    true : array, optional
        ``(time,)`` true states (already matched to the inferred labels).
    posterior : xarray.DataArray, optional
        ``("time", "state")`` posterior probabilities, drawn as stacked areas.

    Returns
    -------
    (matplotlib.figure.Figure, numpy.ndarray of Axes)

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neuroana.viz.hmmglm import plot_states
    >>> sp = xr.DataArray(np.random.poisson(0.3, (100, 5)), dims=("time", "unit"))
    >>> st = xr.DataArray(np.repeat([0, 1], 50), dims="time")
    >>> fig, axes = plot_states(sp, st, true=np.repeat([0, 1], 50))
    >>> len(axes)
    3
    """
    from matplotlib.figure import Figure

    n_rows = 2 + (true is not None) + (posterior is not None)
    fig = Figure(figsize=(9, 1.2 + 1.1 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, 1, sharex=True, height_ratios=[3] + [1] * (n_rows - 1))
    sp = spikes.transpose("time", "unit").values
    axes[0].imshow(sp.T, aspect="auto", cmap="Greys", interpolation="nearest", origin="lower")
    axes[0].set(ylabel="unit", title="spike counts")
    rows = [("inferred", np.asarray(inferred))] + (
        [("true", np.asarray(true))] if true is not None else []
    )
    i = 1
    for name, st in rows:
        axes[i].imshow(
            st[None, :], aspect="auto", cmap="Set2", interpolation="nearest", vmin=0, vmax=7
        )
        axes[i].set(yticks=[], ylabel=name)
        i += 1
    if posterior is not None:
        p = posterior.transpose("time", "state").values
        axes[i].stackplot(np.arange(p.shape[0]), p.T, colors=[f"C{k}" for k in range(p.shape[1])])
        axes[i].set(ylabel="posterior", ylim=(0, 1))
        i += 1
    axes[-1].set_xlabel("time bin")
    return fig, np.asarray(axes)


def plot_connectivity(weights: xr.DataArray, prior_adjacency: xr.DataArray | None = None):
    """Per-state weight matrices (target x source) and, when given, the shared (anatomical) connectome.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neuroana.viz.hmmglm import plot_connectivity
    >>> w = xr.DataArray(np.random.randn(2, 4, 4), dims=("state", "target", "source"))
    >>> fig, axes = plot_connectivity(w)
    >>> len(axes)
    2
    """
    from matplotlib.figure import Figure

    w = weights.transpose("state", "target", "source").values
    n = w.shape[0] + (prior_adjacency is not None)
    fig = Figure(figsize=(2.8 * n + 0.8, 3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n))
    lim = float(np.abs(w).max()) or 1.0
    for k in range(w.shape[0]):
        im = axes[k].imshow(w[k], cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[k].set(title=f"state {k}", xlabel="source", ylabel="target" if k == 0 else None)
    fig.colorbar(im, ax=axes[: w.shape[0]], shrink=0.8, label="weight")
    if prior_adjacency is not None:
        axes[-1].imshow(
            prior_adjacency.transpose("target", "source").values, cmap="RdBu_r", vmin=-1, vmax=1
        )
        axes[-1].set(title="shared (prior argmax)", xlabel="source")
    return fig, axes
