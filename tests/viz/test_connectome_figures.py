"""Connectome figures draw what they claim: epoch spans, community boundaries, graph edges."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.patches import Polygon, Rectangle  # noqa: E402

from neuroana.connectome import ConnectomeInputError  # noqa: E402
from neuroana.viz.connectome import (  # noqa: E402
    community_order,
    plot_community_graph,
    plot_factors,
    plot_sorted_affinity,
)


def _result(labels, rois=None):
    """A hand-made result_: pair factor 1 within a community, 0.1 across."""
    labels = np.asarray(labels)
    n = labels.shape[1]
    rois = np.arange(n) if rois is None else np.asarray(rois)
    ii, jj = np.triu_indices(n, 1)
    pf = np.stack([np.where(lab[ii] == lab[jj], 1.0, 0.1) for lab in labels], axis=1)
    t = np.arange(12) * 10.0
    wf = np.stack([np.exp(-0.5 * ((t - 30 - 50 * r) / 15) ** 2) for r in range(len(labels))], 1)
    return xr.Dataset(
        {
            "pair_factor": (("pair", "component"), pf),
            "window_factor": (("window", "component"), wf),
            "animal_factor": (("animal", "component"), np.ones((3, len(labels)))),
            "communities": (("component", "roi"), labels),
        },
        coords={
            "roi_i": ("pair", rois[ii]),
            "roi_j": ("pair", rois[jj]),
            "roi": rois,
            "time": ("window", t),
        },
    )


def _span_x(patch) -> tuple[float, float]:
    """Data x-extent of an axvspan patch (a Rectangle on new matplotlib, a Polygon on old)."""
    if isinstance(patch, Rectangle):
        return (round(patch.get_x(), 6), round(patch.get_x() + patch.get_width(), 6))
    x = np.asarray(patch.get_xy())[:, 0]
    return (round(float(x.min()), 6), round(float(x.max()), 6))


def test_factor_plot_shades_one_span_per_epoch_on_every_row():
    res = _result([[0, 0, 1, 1, 2], [0, 1, 0, 1, 1]])
    epochs = xr.Dataset(
        {"start": ("episode", [0.0, 40.0, 80.0]), "stop": ("episode", [30.0, 70.0, 110.0])}
    )
    fig, axes = plot_factors(res, epochs)
    assert axes.shape == (2, 2)
    for ax in axes[:, 0]:
        spans = [p for p in ax.patches if isinstance(p, Polygon | Rectangle)]
        assert len(spans) == 3
        xs = sorted(_span_x(p) for p in spans)
        assert xs == [(0.0, 30.0), (40.0, 70.0), (80.0, 110.0)]
        np.testing.assert_allclose(ax.lines[0].get_xdata(), res["time"].values)
    # animal bars: one per animal, heights = the factor
    assert [b.get_height() for b in axes[0, 1].patches] == [1.0, 1.0, 1.0]
    with pytest.raises(ConnectomeInputError, match="stop"):
        plot_factors(res, [(10.0, 5.0)])


def test_sorted_affinity_boundaries_at_community_sizes():
    labels = [[2, 0, 2, 1, 0, 2, -1]]
    res = _result(labels)
    fig, axes = plot_sorted_affinity(res)
    ax = axes[0]
    order, bounds = community_order(labels[0])
    assert bounds.tolist() == [2, 3, 6]  # sizes 2 (comm 0), 1 (comm 1), 3 (comm 2), then unplaced
    h = sorted(line.get_ydata()[0] for line in ax.lines if line.get_xdata()[0] == 0)
    v = sorted(line.get_xdata()[0] for line in ax.lines if line.get_ydata()[0] == 0)
    assert h == [1.5, 2.5, 5.5]
    assert v == [1.5, 2.5, 5.5]
    img = ax.images[0].get_array()
    # sorted: the within-community blocks sit on the diagonal
    assert img[0, 1] == 1.0 and img[3, 5] == 1.0 and img[1, 2] == pytest.approx(0.1)


def test_community_graph_draws_the_strongest_pairs():
    labels = [[0, 0, 0, 1, 1, 1, 1]]
    res = _result(labels, rois=["a", "b", "c", "d", "e", "f", "g"])
    n_within = 3 + 6
    fig, ax = plot_community_graph(res, 0, top_fraction=n_within / 21)
    segs = ax.collections[0].get_segments()
    assert len(segs) == n_within
    pts = ax.collections[1].get_offsets()
    assert len(pts) == 7
    # every drawn edge joins two ROIs of the same community
    lab = np.array(labels[0])
    for s in segs:
        k = [int(np.argmin(np.linalg.norm(pts - p, axis=1))) for p in s]
        assert lab[k[0]] == lab[k[1]]


def test_plot_episodes_shows_each_group_sorted_by_its_communities():
    from neuroana.connectome import DynamicConnectome
    from neuroana.datasets.connectome_sim import make_calcium_recordings
    from neuroana.viz.connectome import community_order, plot_episodes

    sim = make_calcium_recordings(
        n_neurons=10,
        n_animals=2,
        episode_durations=(90.0, 90.0),
        n_communities=(2, 2),
        non_participating=None,
    )
    res = (
        DynamicConnectome(n_components=2, device="cpu", random_state=0)
        .fit(sim.traces, epochs=sim.epochs)
        .result_
    )
    fig, axes = plot_episodes(res)
    for e in range(2):
        shown = axes[0, e].images[0].get_array()
        m = np.zeros((10, 10))
        ii, jj = np.triu_indices(10, 1)
        m[ii, jj] = m[jj, ii] = res["episode_affinity"].values[e]
        order, _ = community_order(res["episode_communities"].values[e])
        np.testing.assert_allclose(shown, m[np.ix_(order, order)])
        heights = [p.get_height() for p in axes[1, e].patches]
        np.testing.assert_allclose(heights, res["episode_animal_loading"].values[e])
