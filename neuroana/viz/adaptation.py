"""Figures for gain-control adaptation (input: the Dataset from ``simulate_adaptation``)."""

from __future__ import annotations

import numpy as np
import xarray as xr


def _axes(ax, ncols=1):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(1, ncols, figsize=(4 * ncols, 3.2))
    return fig, ax


def plot_tuning_before_after(ds: xr.Dataset, *, every: int = 3, ax=None):
    """Tuning curves before (dashed) and after (solid) adaptation, adapter marked.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from neuroana.adaptation import RecurrentGainNetwork
    >>> from neuroana.adaptation.simulate import simulate_adaptation
    >>> from neuroana.viz.adaptation import plot_tuning_before_after
    >>> fig, ax = plot_tuning_before_after(simulate_adaptation(RecurrentGainNetwork(12, 24)))
    """
    fig, ax = _axes(ax)
    colors = __import__("matplotlib").colormaps["twilight"](np.linspace(0, 1, ds.sizes["neuron"]))
    for i in range(0, ds.sizes["neuron"], every):
        ax.plot(
            ds.stimulus, ds.tuning.isel(neuron=i).sel(condition="before"), "--", color=colors[i]
        )
        ax.plot(ds.stimulus, ds.tuning.isel(neuron=i).sel(condition="after"), "-", color=colors[i])
    ax.axvline(ds.attrs.get("adapter", 0.0), color="k", lw=1)
    ax.set(xlabel="stimulus", ylabel="response", title="tuning: before (--) / after (-)")
    return fig, ax


def plot_shift_vs_distance(ds: xr.Dataset, ax=None):
    """Preferred-stimulus shift (after - before) against distance from the adapter."""
    fig, ax = _axes(ax)
    order = np.argsort(ds.distance_from_adapter.values)
    ax.plot(ds.distance_from_adapter.values[order], ds.pref_shift.values[order], "o-")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(
        xlabel="preferred - adapter",
        ylabel="shift of preference",
        title="repulsion when shift has the sign of distance",
    )
    return fig, ax


def plot_correlation_matrices(ds: xr.Dataset, ax=None):
    """Response correlation under the biased ensemble before and after adaptation."""
    fig, axes = _axes(ax, ncols=2)
    for a, cond in zip(np.atleast_1d(axes), ("before", "after"), strict=False):
        im = a.imshow(ds.correlation.sel(condition=cond), vmin=-1, vmax=1, cmap="RdBu_r")
        a.set(title=f"correlation {cond}", xlabel="neuron", ylabel="neuron")
    fig.colorbar(im, ax=axes)
    return fig, axes


def plot_gains(ds: xr.Dataset, ax=None):
    """Gains against preferred stimulus, before and after, adapter marked."""
    fig, ax = _axes(ax)
    for cond in ("before", "after"):
        ax.plot(ds.neuron, ds.gain.sel(condition=cond), "o-", label=cond)
    ax.axvline(ds.attrs.get("adapter", 0.0), color="k", lw=1)
    ax.set(xlabel="preferred stimulus", ylabel="gain", title="optimal gains")
    ax.legend()
    return fig, ax
