"""Overview figure of a recording: spike raster, calcium traces, ROI masks, behaviour."""

from __future__ import annotations

import numpy as np
import xarray as xr


def plot_session_overview(
    spike_times: dict,
    traces: xr.DataArray,
    masks: xr.DataArray,
    behavior: xr.DataArray | None = None,
    states: xr.DataArray | None = None,
    *,
    max_time: float | None = None,
):
    """A four-panel overview of one session.

    Parameters
    ----------
    spike_times : dict
        Unit id -> spike times (s).
    traces : xarray.DataArray
        ``("time", "roi")`` fluorescence or dF/F.
    masks : xarray.DataArray
        ``("roi", "y", "x")`` ROI masks.
    behavior : xarray.DataArray, optional
        ``("time", "feature")``; the first feature is drawn.
    states : xarray.DataArray, optional
        ``("time",)`` integer state labels, shaded behind the raster.
    max_time : float, optional
        Only draw ``t <= max_time`` (s).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neuroana.viz.session import plot_session_overview
    >>> tr = xr.DataArray(np.random.rand(50, 3), dims=("time", "roi"), coords={"time": np.arange(50) / 10})
    >>> m = xr.DataArray(np.random.rand(3, 8, 8), dims=("roi", "y", "x"))
    >>> fig = plot_session_overview({0: np.array([0.5, 1.0])}, tr, m)
    >>> len(fig.axes) >= 3
    True
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 7), layout="constrained")
    gs = fig.add_gridspec(3, 3)
    ax_r = fig.add_subplot(gs[0, :2])
    units = list(spike_times)
    tmax = max_time if max_time is not None else float(traces["time"].values[-1])
    if states is not None:
        t = states["time"].values
        sel = t <= tmax
        ax_r.pcolormesh(
            np.append(t[sel], t[sel][-1] + np.median(np.diff(t))),
            [-0.5, len(units) - 0.5],
            states.values[sel][None, :],
            cmap="Pastel1",
            shading="flat",
            rasterized=True,
        )
    ax_r.eventplot(
        [np.asarray(spike_times[u])[np.asarray(spike_times[u]) <= tmax] for u in units],
        colors="k",
        linewidths=0.4,
    )
    ax_r.set(
        ylabel="unit", title="spikes" + (" (true states shaded)" if states is not None else "")
    )
    ax_r.set_xlim(0, tmax)

    ax_t = fig.add_subplot(gs[1, :2], sharex=ax_r)
    tr = traces.transpose("time", "roi").sel(time=slice(None, tmax))
    z = (tr - tr.mean("time")) / (tr.std("time") + 1e-12)
    ax_t.imshow(
        z.values.T,
        aspect="auto",
        origin="lower",
        cmap="magma",
        extent=(float(tr.time[0]), float(tr.time[-1]), -0.5, tr.sizes["roi"] - 0.5),
        interpolation="nearest",
    )
    ax_t.set(ylabel="ROI", title="calcium traces (z-scored)")

    ax_b = fig.add_subplot(gs[2, :2], sharex=ax_r)
    if behavior is not None:
        b = behavior.sel(time=slice(None, tmax))
        ax_b.plot(b["time"].values, b.isel(feature=0).values, lw=0.8)
        ax_b.set(ylabel=str(b["feature"].values[0]) if "feature" in b.coords else "behaviour")
    ax_b.set(xlabel="time (s)", title="behaviour")

    ax_m = fig.add_subplot(gs[:, 2])
    m = masks.transpose("roi", "y", "x").values
    lab = np.where((m > 0).any(0), np.argmax(m, 0) + 1, 0)
    ax_m.imshow(np.ma.masked_equal(lab, 0), cmap="tab20", interpolation="nearest")
    ax_m.set(title=f"{m.shape[0]} ROI masks", xticks=[], yticks=[])
    return fig
