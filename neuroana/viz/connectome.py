"""Figures for dynamic functional connectomes (input: ``DynamicConnectome.result_``).

* :func:`plot_factors`: each component's window factor against time, stimulus epochs shaded, with
  its animal factor beside it;
* :func:`plot_sorted_affinity`: each component's pair factor as an ROI x ROI affinity matrix, ROIs
  sorted by community, community boundaries drawn;
* :func:`plot_community_graph`: one component's strongest affinities as a graph, ROIs on a circle
  grouped and coloured by community;
* :func:`plot_episodes`: per episode of an epochs table, its component group's affinity sorted by
  the episode's communities, and each animal's loading.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from neuroana.errors import ConnectomeInputError


def _check_result(result: xr.Dataset, needed: Sequence[str]) -> None:
    if not isinstance(result, xr.Dataset):
        raise ConnectomeInputError(
            f"expected the Dataset DynamicConnectome.result_, got {type(result).__name__}"
        )
    missing = [v for v in needed if v not in result]
    if missing:
        raise ConnectomeInputError(
            f"result lacks {missing}; expected DynamicConnectome.result_ (with {list(needed)})"
        )


def _epochs_list(epochs) -> list[tuple[float, float, str]]:
    """``(start, stop, label)`` from a Dataset with ``start``/``stop`` or a list of tuples."""
    if epochs is None:
        return []
    if isinstance(epochs, xr.Dataset):
        if "start" not in epochs or "stop" not in epochs:
            raise ConnectomeInputError("epochs Dataset needs 'start' and 'stop' variables")
        starts = np.atleast_1d(epochs["start"].values).astype(float)
        stops = np.atleast_1d(epochs["stop"].values).astype(float)
        dim = epochs["start"].dims[0] if epochs["start"].ndim else None
        labels = (
            [str(v) for v in epochs[dim].values]
            if dim is not None and dim in epochs.coords
            else [str(k) for k in range(starts.size)]
        )
        return list(zip(starts, stops, labels, strict=True))
    out = []
    for k, ep in enumerate(epochs):
        if len(ep) not in (2, 3):
            raise ConnectomeInputError(
                f"epoch {ep!r}; expected (start, stop) or (start, stop, label)"
            )
        out.append((float(ep[0]), float(ep[1]), str(ep[2]) if len(ep) == 3 else str(k)))
    for start, stop, label in out:
        if not stop > start:
            raise ConnectomeInputError(f"epoch {label!r} has stop {stop} <= start {start}")
    return out


def plot_factors(result: xr.Dataset, epochs=None, *, axes=None):
    """Window factor of every component against time (epochs shaded) and its animal factor.

    Parameters
    ----------
    result : xarray.Dataset
        ``DynamicConnectome.result_`` (needs ``window_factor`` with a ``time`` coordinate and
        ``animal_factor``).
    epochs : xarray.Dataset or sequence of (start, stop[, label]), optional
        Stimulus or experimental epochs (same time unit as the window centres), shaded on every row.
    axes : array of Axes, optional
        ``(n_components, 2)`` axes to draw into.

    Returns
    -------
    fig, axes : Figure and ``(n_components, 2)`` array of Axes (time course, animal weights).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np, xarray as xr
    >>> from neuroana.viz.connectome import plot_factors
    >>> res = xr.Dataset({
    ...     "window_factor": (("window", "component"), np.random.default_rng(0).random((10, 2))),
    ...     "animal_factor": (("animal", "component"), np.ones((3, 2)))},
    ...     coords={"time": ("window", np.arange(10.0) * 5)})
    >>> fig, axes = plot_factors(res, epochs=[(0, 20, "odour"), (30, 45, "salt")])
    >>> axes.shape
    (2, 2)
    """
    import matplotlib.pyplot as plt

    _check_result(result, ["window_factor", "animal_factor"])
    wf = result["window_factor"].transpose("window", "component")
    af = result["animal_factor"].transpose("animal", "component")
    n_comp = wf.sizes["component"]
    t = wf["time"].values if "time" in wf.coords else np.arange(wf.sizes["window"], dtype=float)
    eps = _epochs_list(epochs)
    if axes is None:
        fig, axes = plt.subplots(
            n_comp,
            2,
            figsize=(8, 1.6 * n_comp + 0.6),
            squeeze=False,
            gridspec_kw={"width_ratios": [4, 1]},
        )
    else:
        axes = np.asarray(axes).reshape(n_comp, 2)
        fig = axes[0, 0].figure
    colors = plt.get_cmap("tab10")
    animals = af["animal"].values if "animal" in af.coords else np.arange(af.sizes["animal"])
    for r in range(n_comp):
        ax_t, ax_a = axes[r]
        for k, (start, stop, label) in enumerate(eps):
            ax_t.axvspan(start, stop, color=colors(k % 10), alpha=0.15, lw=0, label=label)
        ax_t.plot(t, wf.values[:, r], "k-", lw=1.2)
        ax_t.set_ylabel(f"comp {r}")
        ax_a.bar(np.arange(animals.size), af.values[:, r], color="0.4")
        ax_a.set_xticks(np.arange(animals.size), [str(a) for a in animals], fontsize=7)
    axes[-1, 0].set_xlabel("time (window centre)")
    axes[-1, 1].set_xlabel("animal")
    axes[0, 0].set_title("window factor")
    axes[0, 1].set_title("animal factor")
    if eps:
        axes[0, 0].legend(loc="upper right", fontsize=7, ncol=min(len(eps), 4))
    return fig, axes


def _pair_matrix(result: xr.Dataset, component: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n_roi, n_roi)`` pair-factor matrix of one component and the ROI labels in its order."""
    pf = result["pair_factor"].transpose("pair", "component")
    rois = result["roi"].values if "roi" in result.coords else None
    if rois is None:
        rois = np.unique(np.concatenate([pf["roi_i"].values, pf["roi_j"].values]))
    index = {r: k for k, r in enumerate(rois.tolist())}
    ii = np.array([index[r] for r in pf["roi_i"].values.tolist()])
    jj = np.array([index[r] for r in pf["roi_j"].values.tolist()])
    m = np.zeros((rois.size, rois.size))
    m[ii, jj] = pf.values[:, component]
    m[jj, ii] = pf.values[:, component]
    return m, rois


def community_order(labels) -> tuple[np.ndarray, np.ndarray]:
    """ROI order grouped by community (unplaced ``-1`` last) and the boundary positions.

    Boundaries are the cumulative community sizes between groups (in the sorted order), i.e. where
    a line separates two communities.

    Examples
    --------
    >>> from neuroana.viz.connectome import community_order
    >>> order, bounds = community_order([1, 0, 1, -1, 0])
    >>> order.tolist(), bounds.tolist()
    ([1, 4, 0, 2, 3], [2, 4])
    """
    lab = np.asarray(labels, dtype=int)
    key = np.where(lab < 0, lab.max() + 1, lab)
    order = np.argsort(key, kind="stable")
    sizes = np.bincount(key)[np.unique(key)]
    return order, np.cumsum(sizes)[:-1]


def plot_sorted_affinity(result: xr.Dataset, components: Sequence[int] | None = None, *, axes=None):
    """Pair factor of each component as an ROI x ROI matrix sorted by its communities.

    White lines mark the community boundaries (between ``k - 0.5`` and ``k + 0.5`` for each
    boundary ``k`` from :func:`community_order`).

    Parameters
    ----------
    result : xarray.Dataset
        ``DynamicConnectome.result_`` (``pair_factor`` with ``roi_i``/``roi_j``, ``communities``).
    components : sequence of int, optional
        Components to draw (default all).
    axes : sequence of Axes, optional

    Returns
    -------
    fig, axes : Figure and 1-d array of Axes (one per component).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np, xarray as xr
    >>> from neuroana.viz.connectome import plot_sorted_affinity
    >>> ii, jj = np.triu_indices(4, 1)
    >>> lab = np.array([[0, 1, 0, 1]])
    >>> pf = (lab[0, ii] == lab[0, jj]).astype(float)[:, None]
    >>> res = xr.Dataset({"pair_factor": (("pair", "component"), pf),
    ...                   "communities": (("component", "roi"), lab)},
    ...                  coords={"roi_i": ("pair", ii), "roi_j": ("pair", jj), "roi": np.arange(4)})
    >>> fig, axes = plot_sorted_affinity(res)
    >>> len(axes)
    1
    """
    import matplotlib.pyplot as plt

    _check_result(result, ["pair_factor", "communities"])
    n_comp = result.sizes["component"]
    comps = list(range(n_comp)) if components is None else [int(c) for c in components]
    for c in comps:
        if not 0 <= c < n_comp:
            raise ConnectomeInputError(f"component {c}; expected 0..{n_comp - 1}")
    if axes is None:
        fig, axes = plt.subplots(1, len(comps), figsize=(3.2 * len(comps), 3.2), squeeze=False)
        axes = axes[0]
    else:
        axes = np.atleast_1d(np.asarray(axes, dtype=object)).ravel()
        fig = axes[0].figure
    for ax, c in zip(axes, comps, strict=True):
        m, _ = _pair_matrix(result, c)
        order, bounds = community_order(result["communities"].values[c])
        ax.imshow(m[np.ix_(order, order)], cmap="viridis", interpolation="nearest")
        for b in bounds:
            ax.axhline(b - 0.5, color="w", lw=1)
            ax.axvline(b - 0.5, color="w", lw=1)
        ax.set(title=f"component {c}", xlabel="ROI (sorted)", ylabel="ROI (sorted)")
    return fig, axes


def plot_community_graph(
    result: xr.Dataset, component: int = 0, *, top_fraction: float = 0.1, ax=None
):
    """One component's strongest affinities as a graph, ROIs on a circle grouped by community.

    Parameters
    ----------
    result : xarray.Dataset
        ``DynamicConnectome.result_``.
    component : int
        Component to draw.
    top_fraction : float
        Fraction of ROI pairs drawn as edges (the strongest pair-factor values); line width and
        opacity grow with the value.
    ax : Axes, optional

    Returns
    -------
    fig, ax

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np, xarray as xr
    >>> from neuroana.viz.connectome import plot_community_graph
    >>> ii, jj = np.triu_indices(6, 1)
    >>> lab = np.array([[0, 0, 0, 1, 1, 1]])
    >>> pf = (lab[0, ii] == lab[0, jj]).astype(float)[:, None]
    >>> res = xr.Dataset({"pair_factor": (("pair", "component"), pf),
    ...                   "communities": (("component", "roi"), lab)},
    ...                  coords={"roi_i": ("pair", ii), "roi_j": ("pair", jj), "roi": np.arange(6)})
    >>> fig, ax = plot_community_graph(res, 0, top_fraction=0.4)
    >>> len(ax.collections[0].get_segments())  # the 6 within-community pairs
    6
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    _check_result(result, ["pair_factor", "communities"])
    n_comp = result.sizes["component"]
    if not 0 <= int(component) < n_comp:
        raise ConnectomeInputError(f"component {component}; expected 0..{n_comp - 1}")
    if not 0 < top_fraction <= 1:
        raise ConnectomeInputError(f"top_fraction={top_fraction}; expected in (0, 1]")
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 4.2))
    else:
        fig = ax.figure
    m, rois = _pair_matrix(result, int(component))
    labels = np.asarray(result["communities"].values[int(component)], dtype=int)
    order, _ = community_order(labels)
    n = rois.size
    angle = np.empty(n)
    angle[order] = 2 * np.pi * np.arange(n) / n
    xy = np.column_stack([np.cos(angle), np.sin(angle)])
    ii, jj = np.triu_indices(n, 1)
    vals = m[ii, jj]
    n_edges = max(1, int(round(top_fraction * vals.size)))
    top = np.argsort(vals, kind="stable")[::-1][:n_edges]
    top = top[vals[top] > 0]
    vmax = vals[top].max() if top.size else 1.0
    segs = np.stack([xy[ii[top]], xy[jj[top]]], axis=1)
    strength = vals[top] / vmax
    colours = np.zeros((top.size, 4))
    colours[:, 3] = 0.15 + 0.7 * strength
    ax.add_collection(LineCollection(segs, colors=colours, linewidths=0.5 + 2.0 * strength))
    cmap = plt.get_cmap("tab10")
    node_col = [cmap(lab % 10) if lab >= 0 else (0.7, 0.7, 0.7, 1.0) for lab in labels]
    ax.scatter(xy[:, 0], xy[:, 1], c=node_col, s=40, zorder=3, edgecolors="k", linewidths=0.5)
    ax.set_xlim(-1.2, 1.2)
    ax.set_ylim(-1.2, 1.2)
    ax.set_aspect("equal")
    ax.axis("off")
    n_blocks = len(set(labels[labels >= 0].tolist()))
    ax.set_title(f"component {component}: {n_blocks} communities")
    return fig, ax


def plot_episodes(result: xr.Dataset, *, axes=None):
    """Per episode: the group affinity sorted by its communities, and the animals' loadings.

    Parameters
    ----------
    result : xarray.Dataset
        ``DynamicConnectome.result_`` of a fit with ``epochs`` (``episode_affinity``,
        ``episode_communities``, ``episode_animal_loading``).
    axes : array of matplotlib Axes, optional
        ``(2, n_episodes)``; created when omitted.

    Returns
    -------
    (matplotlib.figure.Figure, ndarray of Axes)

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from neuroana.connectome import DynamicConnectome
    >>> from neuroana.datasets.connectome_sim import make_calcium_recordings
    >>> from neuroana.viz.connectome import plot_episodes
    >>> sim = make_calcium_recordings(n_neurons=10, n_animals=2, episode_durations=(90.0, 90.0),
    ...                               n_communities=(2, 2), non_participating=None)
    >>> dc = DynamicConnectome(n_components=2, device="cpu", random_state=0)
    >>> dc = dc.fit(sim.traces, epochs=sim.epochs)
    >>> fig, axes = plot_episodes(dc.result_)
    >>> axes.shape
    (2, 2)
    """
    import matplotlib.pyplot as plt

    _check_result(result, ["episode_affinity", "episode_communities", "episode_animal_loading"])
    names = [str(n) for n in result["episode"].values]
    n_ep = len(names)
    if axes is None:
        fig, axes = plt.subplots(
            2, n_ep, figsize=(3.2 * n_ep, 5.4), squeeze=False, height_ratios=[3, 1]
        )
    else:
        axes = np.asarray(axes).reshape(2, n_ep)
        fig = axes[0, 0].figure
    rois = result["roi"].values
    pf = result["pair_factor"]
    index = {r: k for k, r in enumerate(rois.tolist())}
    ii = np.array([index[r] for r in pf["roi_i"].values.tolist()])
    jj = np.array([index[r] for r in pf["roi_j"].values.tolist()])
    animals = (
        [str(a) for a in result["animal"].values]
        if "animal" in result.coords
        else [str(k) for k in range(result.sizes["animal"])]
    )
    for e, name in enumerate(names):
        m = np.zeros((rois.size, rois.size))
        m[ii, jj] = m[jj, ii] = result["episode_affinity"].values[e]
        labels = result["episode_communities"].values[e]
        order, bounds = community_order(labels)
        ax = axes[0, e]
        ax.imshow(m[np.ix_(order, order)], cmap="magma", interpolation="nearest")
        for b in bounds:
            ax.axhline(b - 0.5, color="w", lw=0.8)
            ax.axvline(b - 0.5, color="w", lw=0.8)
        k = int(result["episode_n_communities"].values[e])
        ax.set_title(f"{name}: {k} communities", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax = axes[1, e]
        ax.bar(animals, np.nan_to_num(result["episode_animal_loading"].values[e]), color="C0")
        ax.set_ylim(0, 1.05)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        if e == 0:
            ax.set_ylabel("loading")
    fig.tight_layout()
    return fig, axes
