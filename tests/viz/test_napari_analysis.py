"""napari analysis widgets: community painting, parameter plumbing, threaded fits vs the public API.

Pure tests run anywhere (napari installed); ``@pytest.mark.napari`` tests need a display (CI runs
them under Xvfb) and are skipped by conftest without one.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("napari")
pytest.importorskip("magicgui")

from neuroana.viz.napari._analysis_widgets import (  # noqa: E402
    AnalysisWidgetError,
    communities_to_labels,
    community_layers,
    connectome_estimator,
    hmmglm_estimator,
    parse_n_components,
    run_adaptation,
)


def _brute_paint(lab, roi_ids, comm: dict) -> np.ndarray:
    out = np.zeros(lab.shape, dtype=int)
    for y in range(lab.shape[0]):
        for x in range(lab.shape[1]):
            v = int(lab[y, x])
            if v == 0:
                continue
            c = comm.get(roi_ids[v - 1], -1)
            out[y, x] = c + 1 if c >= 0 else 0
    return out


def _planted(seed=0, n_roi=9):
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, n_roi + 1, size=(13, 17))
    roi_ids = [int(v) for v in rng.permutation(np.arange(100, 100 + n_roi))]
    comm_ids = roi_ids[:-1]  # the last ROI was dropped before the fit (absent -> background)
    order = rng.permutation(len(comm_ids))  # the result lists ROIs in its own order
    values = rng.integers(-1, 4, size=len(comm_ids))  # -1: not estimable -> background
    da = xr.DataArray(values, dims="roi", coords={"roi": np.array(comm_ids)[order]})
    return lab, roi_ids, da


def test_communities_to_labels_matches_brute_force():
    for seed in range(5):
        lab, roi_ids, da = _planted(seed)
        comm = dict(zip(da["roi"].values.tolist(), da.values.tolist(), strict=True))
        expected = _brute_paint(lab, roi_ids, comm)
        np.testing.assert_array_equal(communities_to_labels(lab, roi_ids, da), expected)
        np.testing.assert_array_equal(communities_to_labels(lab, roi_ids, comm), expected)
        assert (expected > 0).any() and (expected == 0).any()  # the planted case is not trivial


def test_communities_to_labels_rejects_bad_input():
    lab, roi_ids, da = _planted()
    with pytest.raises(AnalysisWidgetError, match=r"ROI label 9 but only 8 roi_ids"):
        communities_to_labels(lab, roi_ids[:8], da)
    with pytest.raises(AnalysisWidgetError, match="dtype float64"):
        communities_to_labels(lab.astype(float), roi_ids, da)
    with pytest.raises(AnalysisWidgetError, match="contain -1"):
        communities_to_labels(lab - 1, roi_ids, da)
    with pytest.raises(AnalysisWidgetError, match="type list"):
        communities_to_labels(lab, roi_ids, [0, 1, 2])
    with pytest.raises(AnalysisWidgetError, match=r"dims \('component', 'roi'\)"):
        communities_to_labels(lab, roi_ids, da.expand_dims("component"))


def test_community_layers_one_per_component():
    lab, roi_ids, da = _planted(3)
    rng = np.random.default_rng(1)
    second = da.copy(data=rng.integers(0, 3, size=da.size))
    res = xr.Dataset(
        {
            "communities": xr.concat([da, second], "component"),
            "n_communities": ("component", [4, 3]),
        }
    )
    layers = community_layers(lab, roi_ids, res, {"scale": (2.0, 2.0)})
    assert [(kw["name"], kind) for _, kw, kind in layers] == [
        ("communities c0", "labels"),
        ("communities c1", "labels"),
    ]
    for r, (data, kw, _) in enumerate(layers):
        comp = res["communities"].isel(component=r)
        comm = dict(zip(comp["roi"].values.tolist(), comp.values.tolist(), strict=True))
        np.testing.assert_array_equal(data, _brute_paint(lab, roi_ids, comm))
        assert kw["scale"] == (2.0, 2.0)
        assert kw["metadata"] == {"component": r, "n_communities": [4, 3][r]}


def test_connectome_parameter_plumbing():
    est = connectome_estimator(
        window=7.5, step=0.0, n_components=" AUTO ", random_state=3, max_rank=3, n_restarts=2
    )
    p = est.get_params()
    assert (p["window"], p["step"], p["n_components"], p["random_state"]) == (7.5, None, "auto", 3)
    assert tuple(p["ranks"]) == (1, 2, 3) and p["n_restarts"] == 2
    assert connectome_estimator(window=5, step=2.5, n_components="4").get_params()["step"] == 2.5
    assert parse_n_components("4") == 4
    for bad in ("x", "0", "-2", "2.5"):
        with pytest.raises(AnalysisWidgetError, match=repr(bad)):
            parse_n_components(bad)


def test_hmmglm_parameter_plumbing():
    p = hmmglm_estimator(
        n_states=4, prior="gaussian", random_state=7, max_iter=9, n_restarts=3
    ).get_params()
    got = (p["n_states"], p["prior"], p["random_state"], p["max_iter"], p["n_restarts"])
    assert got == (4, "gaussian", 7, 9, 3)


def test_run_adaptation_equals_public_api():
    from neuroana.adaptation import RecurrentGainNetwork
    from neuroana.adaptation.simulate import simulate_adaptation

    kw = dict(tuning_width=15.0, recurrence=0.4, kernel_width=25.0, inhibition=0.5)
    ds = run_adaptation(n_neurons=12, n_stimuli=36, adapter=30.0, adaptor_probability=0.4, **kw)
    ref = simulate_adaptation(RecurrentGainNetwork(12, 36, **kw), 30.0, 0.4)
    xr.testing.assert_identical(ds, ref)


# ---------------------------------------------------------------------------- napari (display)
@pytest.fixture(scope="module")
def session_layer():
    from neuroana.viz.napari._sample_data import sample_session

    ((data, kw, kind),) = sample_session()
    return data, kw


def _wait(qtbot, w, worker, timeout=120_000):
    """Wait for the worker; count main-loop timer ticks while it runs (the viewer is responsive)."""
    from qtpy.QtCore import QTimer

    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(worker.is_running))
    timer.start(10)
    qtbot.waitUntil(lambda: w.button.enabled, timeout=timeout)  # re-enabled when shown or failed
    timer.stop()
    assert w.result is not None, w.status.value
    return sum(ticks)


@pytest.mark.napari
def test_connectome_widget_paints_fitted_communities(make_napari_viewer, qtbot, session_layer):
    from neuroana.connectome import DynamicConnectome
    from neuroana.io import read_roi_traces
    from neuroana.viz.napari._analysis_widgets import connectome_widget

    data, kw = session_layer
    viewer = make_napari_viewer()
    viewer.add_labels(data, **kw)
    w = connectome_widget(viewer)
    assert w.layer_box.value == "ROIs"
    w.window.value, w.step.value, w.n_components.value = 5.0, 2.5, "2"
    w.n_restarts.value, w.max_iter.value, w.random_state.value = 2, 100, 1
    worker = w.run()
    assert worker.pbar is not None  # indeterminate progress bar in the activity dock
    busy_ticks = _wait(qtbot, w, worker)
    assert busy_ticks > 0  # the event loop ran while the fit was in its thread
    qtbot.waitUntil(lambda: "communities c1" in viewer.layers, timeout=10_000)

    path = kw["metadata"]["nwb_path"]
    ref = DynamicConnectome(
        window=5.0,
        step=2.5,
        n_components=2,
        ranks=(1, 2, 3, 4),
        n_restarts=2,
        max_iter=100,
        n_runs=3,
        random_state=1,
    ).fit(read_roi_traces(path))
    com = ref.result_["communities"]
    xr.testing.assert_equal(w.result.result_["communities"], com)
    roi_ids = kw["metadata"]["roi_ids"]
    for r in range(2):
        comm = dict(zip(com["roi"].values.tolist(), com.values[r].tolist(), strict=True))
        painted = viewer.layers[f"communities c{r}"].data
        np.testing.assert_array_equal(painted, _brute_paint(data, roi_ids, comm))
        assert len(np.unique(painted[painted > 0])) == ref.result_["n_communities"].values[r]
    # the panel draws each component's window factor against time
    wf = ref.result_["window_factor"].transpose("window", "component")
    for r in range(2):
        np.testing.assert_allclose(w.figure.axes[2 * r].lines[0].get_ydata(), wf.values[:, r])
    assert "rank 2" in w.status.value

    # a second run replaces the layers instead of stacking copies
    w.n_components.value = "1"
    _wait(qtbot, w, w.run())
    qtbot.waitUntil(lambda: viewer.layers["communities c0"].metadata["n_communities"] is not None)
    assert sum(ly.name == "communities c0" for ly in viewer.layers) == 1


@pytest.mark.napari
def test_connectome_widget_reports_bad_input(make_napari_viewer, qtbot, session_layer):
    from neuroana.viz.napari._analysis_widgets import connectome_widget

    data, kw = session_layer
    viewer = make_napari_viewer()
    viewer.add_labels(data, **kw)
    w = connectome_widget(viewer)
    w.n_components.value = "three"
    assert w.run() is None
    assert "'three'" in w.status.value and w.button.enabled
    # an error inside the fit (in the worker thread) comes back to the status line
    w.n_components.value, w.window.value = "1", 1e4
    w.run()
    qtbot.waitUntil(lambda: w.button.enabled, timeout=60_000)
    assert "connectome fit failed" in w.status.value and "longer than the recording" in (
        w.status.value
    )
    assert w.result is None and [ly.name for ly in viewer.layers] == ["ROIs"]


@pytest.mark.napari
def test_hmmglm_widget_states_equal_public_api(make_napari_viewer, qtbot, session_layer):
    from neuroana.hmmglm import HMMGLM
    from neuroana.io import read_spike_counts
    from neuroana.viz.napari._analysis_widgets import adaptation_widget, hmmglm_widget

    data, kw = session_layer
    viewer = make_napari_viewer()
    viewer.add_labels(data, **kw)
    w = hmmglm_widget(viewer)
    w.bin_size.value, w.n_states.value, w.prior.value = 0.05, 2, "none"
    w.max_iter.value, w.n_restarts.value, w.random_state.value = 5, 1, 2
    worker = w.run()
    seen = _record_progress(worker.pbar)
    # one fit at a time: a second analysis is refused (with a message) while this one runs
    other = adaptation_widget(viewer)
    assert other.run() is None and "another analysis is running" in other.status.value
    assert _wait(qtbot, w, worker) > 0
    # determinate progress: EM iterations of max_iter, the EM objective in the label
    assert {total for _, total, _ in seen} == {5} and max(v for v, _, _ in seen) >= 1
    assert all(" objective " in label for v, _, label in seen if v > 0)

    spikes = read_spike_counts(kw["metadata"]["nwb_path"], 0.05).expand_dims("trial")
    ref = HMMGLM(n_states=2, prior="none", random_state=2, max_iter=5, n_restarts=1).fit(spikes)
    states = ref.predict_states(spikes).isel(trial=0)
    np.testing.assert_array_equal(w.result.states.values, states.values)
    np.testing.assert_allclose(
        w.result.posterior.values,
        ref.posterior(spikes).isel(trial=0).transpose("time", "state").values,
        atol=1e-6,
    )
    np.testing.assert_array_equal(w.result.spikes.values, spikes.values[0])
    # the panel: counts raster, the Viterbi row, the posterior stack
    axes = w.figure.axes
    np.testing.assert_array_equal(np.asarray(axes[1].images[0].get_array())[0], states.values)
    assert axes[2].get_ylabel() == "posterior"
    occ = np.bincount(states.values, minlength=2) / states.size
    assert f"0: {occ[0]:.0%}" in w.status.value


@pytest.mark.napari
def test_adaptation_widget_tuning_panel(make_napari_viewer, qtbot):
    from neuroana.adaptation import RecurrentGainNetwork
    from neuroana.adaptation.simulate import simulate_adaptation
    from neuroana.viz.napari._analysis_widgets import adaptation_widget

    viewer = make_napari_viewer()
    w = adaptation_widget(viewer)
    f = w.fields
    f["n_neurons"].value, f["n_stimuli"].value, f["adapter"].value = 12, 36, 30.0
    f["adaptor_probability"].value, f["recurrence"].value = 0.4, 0.3
    worker = w.run()
    seen = _record_progress(worker.pbar)
    _wait(qtbot, w, worker)
    # the gain solver's iterations drive the bar (two solves: before and after adaptation)
    assert seen and all(total > 0 for _, total, _ in seen) and max(v for v, _, _ in seen) >= 1
    assert all("gains" in label for _, _, label in seen)
    ref = simulate_adaptation(RecurrentGainNetwork(12, 36, recurrence=0.3), 30.0, 0.4)
    xr.testing.assert_identical(w.result, ref)
    ax_t, ax_g = w.figure.axes[:2]
    # tuning: neuron 0 before (dashed) then after (solid); the adapter is the vertical line
    np.testing.assert_allclose(ax_t.lines[0].get_ydata(), ref.tuning.values[0, 0])
    np.testing.assert_allclose(ax_t.lines[1].get_ydata(), ref.tuning.values[1, 0])
    assert ax_t.lines[0].get_linestyle() == "--" and ax_t.lines[1].get_linestyle() == "-"
    vlines = [ln for ln in ax_t.lines if np.ptp(np.asarray(ln.get_xdata(), float)) == 0]
    assert [float(ln.get_xdata()[0]) for ln in vlines] == [30.0]
    np.testing.assert_allclose(ax_g.lines[1].get_ydata(), ref.gain.sel(condition="after"))


@pytest.mark.napari
def test_community_layer_draws(make_napari_viewer, session_layer):
    data, kw = session_layer
    roi_ids = kw["metadata"]["roi_ids"]
    planted = xr.DataArray(np.arange(len(roi_ids)) % 3, dims="roi", coords={"roi": roi_ids})
    res = xr.Dataset({"communities": planted.expand_dims("component")})
    ((painted, lkw, _),) = community_layers(data, roi_ids, res)

    viewer = make_napari_viewer(show=True)
    viewer.add_labels(data, **kw).visible = False
    layer = viewer.add_labels(painted, **lkw)
    layer.opacity = 1.0  # exact colours on the black canvas
    viewer.reset_view()
    rgb = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    lit = rgb.sum(-1) > 30
    assert lit.mean() > 0.01, f"only {lit.mean():.4f} of the canvas is drawn"
    colours = [np.round(layer.get_color(c)[:3] * 255).astype(int) for c in (1, 2, 3)]
    near = [np.abs(rgb - c).sum(-1) < 40 for c in colours]
    for c, m in zip((1, 2, 3), near, strict=True):
        assert m.sum() > 20, f"community {c - 1}'s colour {colours[c - 1]} is not on the canvas"
    # the lit pixels are the layer's colours (anti-aliased edges aside)
    assert (np.logical_or.reduce(near) & lit).sum() > 0.8 * lit.sum()
    layer.visible = False
    dark = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int).sum(-1) > 30
    assert dark.mean() < lit.mean() / 5


def _record_progress(pbar):
    """(value, total, label) of every progress event, in the order the activity dock sees them."""
    seen = []
    pbar.events.value.connect(lambda e: seen.append((pbar.n, pbar.total, pbar.desc)))
    return seen


@pytest.mark.napari
def test_progress_is_determinate_and_cancel_adds_no_layer(make_napari_viewer, qtbot, session_layer):
    from napari.utils import progress

    from neuroana.viz.napari._analysis_widgets import connectome_widget

    data, kw = session_layer
    viewer = make_napari_viewer()
    viewer.add_labels(data, **kw)
    w = connectome_widget(viewer)
    w.n_components.value, w.n_restarts.value, w.max_iter.value = "auto", 2, 150
    worker = w.run()
    assert w.cancel.enabled and not w.button.enabled
    seen = _record_progress(worker.pbar)
    _wait(qtbot, w, worker)
    assert {total for _, total, _ in seen} == {150}  # determinate: iteration of max_iter
    runs = [int(label.split("(run ")[1].split(")")[0]) for _, _, label in seen]
    assert runs == sorted(runs) and runs[-1] > 1  # restarts x ranks: several fit_loop runs
    for r in set(runs):
        values = [v for (v, _, _), rr in zip(seen, runs, strict=True) if rr == r]
        assert values == sorted(values)  # the value only increases within a run
    assert max(v for v, _, _ in seen) >= 5
    assert all(" loss " in label for v, _, label in seen if v > 0)  # the current loss is shown
    assert worker.pbar not in progress._all_instances  # closed when the fit ended
    full_runs = runs[-1]
    assert "communities c0" in viewer.layers
    for ly in [ly for ly in viewer.layers if ly.name.startswith("communities")]:
        viewer.layers.remove(ly)

    # cancel from the dock at the first reported iteration
    worker = w.run()
    seen = _record_progress(worker.pbar)
    worker.pbar.events.value.connect(lambda e: e.value >= 1 and w.cancel.changed.emit(True))
    qtbot.waitUntil(lambda: w.button.enabled, timeout=120_000)
    assert "cancelled; nothing was added" in w.status.value, w.status.value
    assert w.result is None and not w.cancel.enabled
    assert [ly.name for ly in viewer.layers] == ["ROIs"]  # no layer from the cancelled fit
    runs = [int(label.split("(run ")[1].split(")")[0]) for _, _, label in seen]
    assert runs and runs[-1] < full_runs  # stopped early, not run to the end and dropped
    assert worker.pbar not in progress._all_instances
    # the activity dock's own Cancel button (cancelable_progress.cancel) stops a fit too
    worker = w.run()
    worker.pbar.events.value.connect(lambda e: e.value >= 1 and worker.pbar.cancel())
    qtbot.waitUntil(lambda: w.button.enabled, timeout=120_000)
    assert "cancelled" in w.status.value and w.result is None
    # and the widget runs again afterwards
    _wait(qtbot, w, w.run())
    qtbot.waitUntil(lambda: "communities c0" in viewer.layers, timeout=10_000)
