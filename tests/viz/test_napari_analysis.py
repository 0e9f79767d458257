"""napari analysis widgets: community painting, fits through the registry vs the public API.

Pure tests run anywhere (napari installed); ``@pytest.mark.napari`` tests need a display (CI runs
them under Xvfb) and are skipped by conftest without one.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("napari")
pytest.importorskip("magicgui")

from neuroana.viz.napari._analysis_core import (  # noqa: E402
    AnalysisWidgetError,
    check_animals,
    check_data_options,
    communities_to_labels,
    community_layer,
    parse_value,
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


def test_community_layer_maps_labels_to_each_animals_rois():
    lab, roi_ids, _ = _planted(3)
    rng = np.random.default_rng(1)
    names = [f"N{k}" for k in range(12)]  # the fit's neurons (labels), in its own order
    rows = rng.integers(-1, 3, size=(2, 12))
    res = xr.Dataset(
        {
            "episode_communities": (("episode", "roi"), rows),
            "episode_n_communities": ("episode", [3, 2]),
        },
        coords={"roi": names, "episode": ["a", "b"]},
    )
    # this animal has 9 ROIs; 7 carry labels of the fit, 2 carry labels the fit lacks
    own = [names[i] for i in rng.permutation(12)[:7]] + ["X1", "X2"]
    rois = dict(zip(own, roi_ids, strict=True))
    data, kw, kind = community_layer(
        lab, roi_ids, res, rois, name="communities m", layer_kwargs={"scale": (2.0, 3.0)}
    )
    assert kind == "labels" and data.shape == (2, *lab.shape)
    assert kw["scale"] == (1.0, 2.0, 3.0) and kw["name"] == "communities m"
    assert kw["metadata"] == {"axis": "episode", "rows": ["a", "b"], "n_communities": [3, 2]}
    label_of = {rid: lb for lb, rid in rois.items()}
    for e in range(2):
        comm = {
            rid: dict(zip(names, rows[e].tolist(), strict=True)).get(label_of[rid], -1)
            for rid in roi_ids
        }
        np.testing.assert_array_equal(data[e], _brute_paint(lab, roi_ids, comm))
    # the ROIs whose label the fit lacks stay unpainted
    for rid in (rois["X1"], rois["X2"]):
        assert (data[:, lab == roi_ids.index(rid) + 1] == 0).all()


def _traces(labels, ids):
    return xr.DataArray(
        np.zeros((3, len(ids))),
        dims=("time", "roi"),
        coords={"roi": labels, "roi_id": ("roi", ids)},
    )


def test_check_animals_refuses_what_does_not_line_up():
    a = _traces(["N1", "N2", "N3"], [4, 5, 6])
    b = _traces(["N3", "N1", "N2"], [9, 7, 8])
    maps = check_animals({"traces": {"a": a, "b": b}}, [("a.nwb", [4, 5, 6]), ("b.nwb", [7, 8, 9])])
    assert maps == [{"N1": 4, "N2": 5, "N3": 6}, {"N3": 9, "N1": 7, "N2": 8}]
    with pytest.raises(AnalysisWidgetError, match=r"b\.nwb: ROI ids \[9\].*not in its ROIs layer"):
        check_animals({"traces": {"a": a, "b": b}}, [("a.nwb", [4, 5, 6]), ("b.nwb", [7, 8])])
    c = _traces(["c-N1", "c-N2", "N3"], [1, 2, 3])  # a per-file column: one shared value only
    with pytest.raises(AnalysisWidgetError, match=r"a\.nwb: its labels .* share 1 neuron"):
        check_animals({"traces": {"a": a, "c": c}}, [("a.nwb", [4, 5, 6]), ("c.nwb", [1, 2, 3])])


def test_data_options_checked_as_the_runner_checks_them():
    assert check_data_options("hmmglm", {"bin_size": 0.1, "trials": None}, 1) == {"bin_size": 0.1}
    with pytest.raises(AnalysisWidgetError, match=r"needs data option\(s\) \['bin_size'\]"):
        check_data_options("hmmglm", {"trials": "epochs"}, 1)
    with pytest.raises(ValueError, match="either trials or interval"):
        check_data_options("hmmglm", {"bin_size": 0.1, "trials": "t", "start": 1.0}, 1)
    with pytest.raises(AnalysisWidgetError, match=r"unknown data option\(s\) \['nope'\]"):
        check_data_options("connectome", {"nope": 1}, 1)
    assert [parse_value(t) for t in ("auto", " 4 ", "[1, 2]", "", "0.5", 3)] == [
        "auto",
        4,
        [1, 2],
        None,
        0.5,
        3,
    ]


def test_run_adaptation_equals_public_api():
    from neuroana.adaptation import RecurrentGainNetwork
    from neuroana.adaptation.simulate import simulate_adaptation

    kw = dict(tuning_width=15.0, recurrence=0.4, kernel_width=25.0, inhibition=0.5)
    ds = run_adaptation(n_neurons=12, n_stimuli=36, adapter=30.0, adaptor_probability=0.4, **kw)
    ref = simulate_adaptation(RecurrentGainNetwork(12, 36, **kw), 30.0, 0.4)
    xr.testing.assert_identical(ds, ref)


# ---------------------------------------------------------------------------- napari (display)
# ---------------------------------------------------------------------------- napari (display)
@pytest.fixture(scope="module")
def session_layer():
    from neuroana.viz.napari._sample_data import sample_session

    ((data, kw, kind),) = sample_session()
    return data, kw


def _wait(qtbot, w, worker, timeout=120_000):
    """Wait for the worker; count main-loop timer ticks while it runs (the viewer is responsive)."""
    from qtpy.QtCore import QTimer

    assert worker is not None, w.status.value
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(worker.is_running))
    timer.start(10)
    qtbot.waitUntil(lambda: w.button.enabled, timeout=timeout)  # re-enabled when shown or failed
    timer.stop()
    assert w.result is not None, w.status.value
    return sum(ticks)


def _set(w, **values):
    for k, v in values.items():
        fields = w.param_fields if k in w.param_fields else w.data_fields
        fields[k].value = v


@pytest.mark.napari
def test_widget_fields_plumb_into_the_estimator(make_napari_viewer, session_layer):
    from neuroana.viz.napari._analysis_widgets import connectome_widget, hmmglm_widget

    viewer = make_napari_viewer()
    viewer.add_labels(session_layer[0], **session_layer[1])
    w = connectome_widget(viewer)
    _set(w, window="7.5", step="", n_components=" AUTO ", ranks="[1, 2, 3]", random_state=3)
    p = w.estimator().get_params()
    assert (p["window"], p["step"], p["n_components"], p["random_state"]) == (7.5, None, "AUTO", 3)
    assert p["ranks"] == (1, 2, 3) and w.data() == {"roi_label": None, "epochs": None}
    h = hmmglm_widget(viewer)
    _set(h, n_states=4, prior="gaussian", max_iter=9, bin_size="0.02", trials="trials")
    p = h.estimator().get_params()
    assert (p["n_states"], p["prior"], p["max_iter"]) == (4, "gaussian", 9)
    assert h.data() == {"bin_size": 0.02, "trials": "trials", "trial_length": None}


@pytest.mark.napari
def test_connectome_widget_paints_fitted_communities(make_napari_viewer, qtbot, session_layer):
    from neuroana.connectome import DynamicConnectome
    from neuroana.io import read_roi_traces
    from neuroana.viz.napari._analysis_widgets import connectome_widget

    data, kw = session_layer
    viewer = make_napari_viewer()
    viewer.add_labels(data, **kw)
    w = connectome_widget(viewer)
    assert w.layer_box.value == ["ROIs"]
    _set(w, window="5.0", step="2.5", n_components="2", n_restarts=2, max_iter=100, random_state=1)
    worker = w.run()
    assert worker.pbar is not None
    busy_ticks = _wait(qtbot, w, worker)
    assert busy_ticks > 0  # the event loop ran while the fit was in its thread
    name = "communities session"
    qtbot.waitUntil(lambda: name in viewer.layers, timeout=10_000)

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
    xr.testing.assert_equal(w.result.estimator.result_["communities"], com)
    xr.testing.assert_equal(w.result.dataset["communities"], com)  # the pipeline's Dataset
    roi_ids = kw["metadata"]["roi_ids"]
    painted = viewer.layers[name].data
    assert painted.shape == (2, *data.shape)
    for r in range(2):
        comm = dict(zip(com["roi"].values.tolist(), com.values[r].tolist(), strict=True))
        np.testing.assert_array_equal(painted[r], _brute_paint(data, roi_ids, comm))
        assert len(np.unique(painted[r][painted[r] > 0])) == ref.result_["n_communities"].values[r]
    # the panel draws each component's window factor against time
    wf = ref.result_["window_factor"].transpose("window", "component")
    for r in range(2):
        np.testing.assert_allclose(w.figure.axes[2 * r].lines[0].get_ydata(), wf.values[:, r])
    assert "rank 2" in w.status.value

    # a second run replaces the layer instead of stacking copies
    _set(w, n_components="1")
    _wait(qtbot, w, w.run())
    qtbot.waitUntil(lambda: viewer.layers[name].data.shape[0] == 1)
    assert sum(ly.name == name for ly in viewer.layers) == 1


@pytest.mark.napari
def test_connectome_widget_reports_bad_input(make_napari_viewer, qtbot, session_layer, tmp_path):
    from neuroana.datasets import make_session
    from neuroana.io import write_session_nwb
    from neuroana.viz.napari._analysis_widgets import connectome_widget
    from neuroana.viz.napari._reader import get_nwb_reader

    data, kw = session_layer
    viewer = make_napari_viewer()
    viewer.add_labels(data, **kw)
    viewer.add_labels(data, **{**kw, "name": "ROIs copy"})
    w = connectome_widget(viewer)
    w.layer_box.value = ["ROIs", "ROIs copy"]
    assert w.run() is None and "come from session.nwb; select one each" in w.status.value
    w.layer_box.value = ["ROIs"]
    _set(w, n_components="1", window="1e4")  # an error inside the fit comes to the status line
    w.run()
    qtbot.waitUntil(lambda: w.button.enabled, timeout=60_000)
    assert "connectome fit failed" in w.status.value
    assert "longer than the recording" in w.status.value
    # a second animal without a label column: the pipeline's refusal, nothing added
    other = write_session_nwb(make_session(random_state=5, duration=30.0), tmp_path / "m5.nwb")
    ((d2, kw2, _),) = get_nwb_reader(str(other))(str(other))
    viewer.add_labels(d2, **{**kw2, "name": "ROIs m5"})
    w.layer_box.value = ["ROIs", "ROIs m5"]
    _set(w, window="5.0")
    w.run()
    qtbot.waitUntil(lambda: w.button.enabled, timeout=60_000)
    assert "several animals need a neuron identity" in w.status.value, w.status.value
    assert w.result is None
    assert [ly.name for ly in viewer.layers] == ["ROIs", "ROIs copy", "ROIs m5"]


@pytest.mark.napari
def test_hmmglm_widget_trials_from_epochs_equal_public_api(
    make_napari_viewer, qtbot, session_layer
):
    from neuroana.hmmglm import HMMGLM
    from neuroana.io import read_intervals, read_spike_counts
    from neuroana.viz.napari._analysis_widgets import adaptation_widget, hmmglm_widget

    data, kw = session_layer
    viewer = make_napari_viewer()
    viewer.add_labels(data, **kw)
    w = hmmglm_widget(viewer)
    _set(w, bin_size="0.05", trials="epochs", trial_length="7.5")
    _set(w, n_states=2, prior="none", max_iter=5, n_restarts=1, random_state=2)
    worker = w.run()
    seen = _record_progress(worker.pbar)
    # one fit at a time: a second analysis is refused (with a message) while this one runs
    other = adaptation_widget(viewer)
    assert other.run() is None and "another analysis is running" in other.status.value
    assert _wait(qtbot, w, worker) > 0
    # determinate progress: EM iterations of max_iter, the EM objective in the label
    assert {total for _, total, _ in seen} == {5} and max(v for v, _, _ in seen) >= 1
    assert all(" objective " in label for v, _, label in seen if v > 0)

    # the same trials cut independently: each epochs row binned on its own, 150-bin pieces
    path = kw["metadata"]["nwb_path"]
    pieces = []
    for _, row in read_intervals(path, "epochs").iterrows():
        c = read_spike_counts(path, 0.05, start=row["start_time"], stop=row["stop_time"]).values
        pieces += [c[i * 150 : (i + 1) * 150] for i in range(len(c) // 150)]
    X = xr.DataArray(np.stack(pieces), dims=("trial", "time", "unit"))
    assert X.sizes["trial"] == 4  # 30 s: a 22.5-s wake and a 7.5-s sleep epoch
    np.testing.assert_array_equal(w.result.inputs["spikes"].values, X.values)
    ref = HMMGLM(n_states=2, prior="none", random_state=2, max_iter=5, n_restarts=1).fit(X)
    states = ref.predict_states(X)
    np.testing.assert_array_equal(w.result.dataset["states"].values, states.values)
    # the panel: trial 0's counts raster, its Viterbi row, its posterior stack
    axes = w.figure.axes
    np.testing.assert_array_equal(np.asarray(axes[1].images[0].get_array())[0], states.values[0])
    assert axes[2].get_ylabel() == "posterior"
    occ = np.bincount(states.values.ravel(), minlength=2) / states.size
    assert "4 trial(s) of 150 bins" in w.status.value and f"0: {occ[0]:.0%}" in w.status.value


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
    # the gain solver's iterations drive the bar (two solves: before and after adaptation); the
    # Newton solve can finish between two refreshes of the bar, so an iteration shows either as a
    # value >= 1 or as the loss the loop reported in the label
    assert seen and all(total > 0 for _, total, _ in seen)
    assert max(v for v, _, _ in seen) >= 1 or any("loss" in label for _, _, label in seen)
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
    painted, lkw, _ = community_layer(data, roi_ids, res)

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
    _set(w, n_components="auto", n_restarts=2, max_iter=150)
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
    assert "communities session" in viewer.layers
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
    qtbot.waitUntil(lambda: "communities session" in viewer.layers, timeout=10_000)
