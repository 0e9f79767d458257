"""FISBe in napari: per-instance decisions vs the counts, writer round trip, sample data, the view.

Pure-Python tests run anywhere; ``@pytest.mark.napari`` tests need a display (CI: Xvfb) and skip
cleanly without one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from neuroana.datasets.fisbe_synth import perturb_prediction
from neuroana.io import read_fisbe
from neuroana.segmentation import (
    THRESHOLDS,
    FisbeInputError,
    evaluate_instances,
    instance_decisions,
)
from neuroana.viz.napari._fisbe import DECISION_COLOURS, evaluation_layers
from neuroana.viz.napari._sample_data import sample_fisbe
from neuroana.viz.napari._writer import write_labels

needs_display = pytest.mark.skipif(
    not os.environ.get("DISPLAY"), reason="napari tests need a display (run under xvfb-run)"
)


def _check_decisions(d, result, th="th_0_5"):
    cm, gen, c = result["confusion_matrix"][th], result["general"], d.counts()
    assert (c["TP"], c["FN"], c["FP"]) == (cm["AP_TP"], cm["AP_FN"], cm["AP_FP"])
    assert (c["FS"], c["FM"]) == (gen["FS"], gen["FM"])
    # one-to-one: matched ids are mutually consistent
    for g, p in enumerate(d.gt_match, start=1):
        if p:
            assert d.pred_match[p - 1] == g
    assert np.count_nonzero(d.gt_match) == np.count_nonzero(d.pred_match)


def test_decisions_match_counts_on_reference_bank(shared_dir):
    bank = Path(shared_dir) / "fisbe_reference"
    if not bank.is_dir():
        pytest.skip(f"{bank} absent")
    n = 0
    for npz in sorted(bank.glob("pub*.npz")):
        ref = json.loads(npz.with_suffix(".json").read_text())
        if ref["official"]["status"] != "ok":
            continue
        z = np.load(npz)
        lab, dim = str(z["labeling"]), z["dim_neurons"].tolist()
        d = instance_decisions(z["gt"], z["pred"], lab, dim, threshold=0.5)
        # the result carried along is the official one, field by field (numbers unchanged)
        off = ref["official"]["metrics"]
        assert d.result["general"]["FS"] == off["general"]["FS"]
        assert d.result["confusion_matrix"]["avFscore"] == off["confusion_matrix"]["avFscore"]
        assert json.dumps(d.result, sort_keys=True) == json.dumps(
            evaluate_instances(z["gt"], z["pred"], lab, dim), sort_keys=True
        )
        _check_decisions(d, off)
        n += 1
    assert n == 26


def _planted():
    """4 straight GT tubes; prediction: tube 1 cut in two, tubes 2+3 merged, tube 4 missed, and
    a false tube (pred ids 1, 2: halves; 3: merge; 4: false)."""
    gt = np.zeros((4, 12, 80, 100), np.uint8)
    for j in range(4):
        gt[j, 3:8, 5 + 18 * j : 10 + 18 * j, 5:95] = j + 1
    pred = np.zeros((4, 12, 80, 100), np.uint8)
    pred[0, :, :, :50] = gt[0, :, :, :50] > 0
    pred[1, :, :, 50:] = (gt[0, :, :, 50:] > 0) * 2
    pred[2] = ((gt[1] > 0) | (gt[2] > 0)) * 3
    pred[3, 3:8, 72:77, 5:95] = 4
    return gt, pred


def test_decisions_planted_errors():
    gt, pred = _planted()
    for th in THRESHOLDS:
        for labeling in ("completely", "partly"):
            d = instance_decisions(gt, pred, labeling, threshold=th)
            _check_decisions(d, d.result, "th_" + str(th).replace(".", "_"))
    d = instance_decisions(gt, pred)
    ids = d.ids()
    assert d.splits == {1: [1, 2]}  # GT 1 cut in two
    assert d.merges == {3: [2, 3]}  # pred 3 = GT 2 | GT 3
    assert ids["false split"] == [1, 2] and ids["false merge"] == [3]
    assert ids["FN"] == [3, 4]  # tie GT 2 / GT 3 on pred 3 goes to the lower GT id; GT 4 missed
    assert len(ids["TP"]) == 2 and 3 in ids["TP"]
    assert 4 in ids["FP"] and len(ids["FP"]) == 2  # the false tube and the unmatched half
    assert d.gt_match[1] == 3 and d.pred_match[2] == 2
    with pytest.raises(FisbeInputError, match="threshold"):
        instance_decisions(gt, pred, threshold=0.33)


def test_evaluation_layers_paint_decided_instances():
    gt, pred = _planted()
    raw = np.stack([gt.sum(0) * 100 + k for k in range(3)]).astype(np.uint16)
    d = instance_decisions(gt, pred)
    layers = {kw["name"]: (data, kw, kind) for data, kw, kind in evaluation_layers(d, raw=raw)}
    assert [layers[f"raw ch{i}"][1]["colormap"] for i in range(3)] == ["red", "green", "blue"]
    assert all(layers[f"raw ch{i}"][1]["blending"] == "additive" for i in range(3))
    ids = d.ids()
    assert all(ids[k] for k in DECISION_COLOURS)  # every category is exercised
    for key, colour in DECISION_COLOURS.items():
        data, kw, kind = layers[f"matcher: {key}"]
        assert kind == "labels" and kw["colormap"][None] == colour
        voxels = d.gt_voxels if key == "FN" else d.pred_voxels
        want = np.zeros(d.shape, bool)
        for i in ids[key]:
            want.reshape(-1)[voxels[i - 1]] = True
        np.testing.assert_array_equal(data > 0, want)
    for j in range(gt.shape[0]):
        np.testing.assert_array_equal(layers[f"gt {j + 1}"][0] > 0, gt[j] > 0)
    pts = layers["gt skeletons"][0]
    assert len(pts) == sum(len(s[0]) for s in d.gt_skeletons)
    assert all(gt[:, int(z), int(y), int(x)].any() for z, y, x in pts)  # skeleton inside GT


def test_writer_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 300, size=(6, 7, 8)).astype(np.int32)
    out = write_labels(str(tmp_path / "p"), lab, {"name": "pred"})
    assert out == [str(tmp_path / "p.zarr")]
    back = read_fisbe(out[0]).pred.values
    assert back.shape == (1, 6, 7, 8) and back.dtype == np.uint32
    np.testing.assert_array_equal(back[0], lab)
    four = (rng.random((3, 4, 5, 6)) < 0.3).astype(np.uint8) * np.arange(1, 4)[:, None, None, None]
    back4 = read_fisbe(write_labels(str(tmp_path / "q.zarr"), four, {})[0]).pred.values
    np.testing.assert_array_equal(back4, four)
    assert back4.dtype == np.uint8
    with pytest.raises(FisbeInputError, match="negative id -1"):
        write_labels(str(tmp_path / "n.zarr"), lab - 1, {})
    with pytest.raises(FisbeInputError, match="float"):
        write_labels(str(tmp_path / "f.zarr"), lab.astype(float), {})
    assert not (tmp_path / "n.zarr").exists()


def test_sample_fisbe_layers():
    layers = sample_fisbe()
    names = [kw["name"] for _, kw, _ in layers]
    assert names[:3] == ["raw ch0", "raw ch1", "raw ch2"]
    assert [kw["colormap"] for _, kw, _ in layers[:3]] == ["red", "green", "blue"]
    raw = np.stack([d for d, _, _ in layers[:3]])
    gts = [(d, kw) for d, kw, kind in layers if kind == "labels"]
    assert raw.dtype == np.uint16 and raw.shape == (3, 48, 96, 96)
    assert len(gts) == 4
    fg = np.zeros(raw.shape[1:], bool)
    for j, (d, kw) in enumerate(gts):
        assert kw["name"] == f"gt {j + 1}" and set(np.unique(d)) == {0, j + 1}
        fg |= d > 0
    # the raw image is brighter on neurons than off them (the planted structure is visible)
    s = raw.sum(0, dtype=np.float64)
    assert s[fg].mean() > 3 * s[~fg].mean()
    assert np.allclose(layers[0][1]["scale"], 0.44)


# ---------------------------------------------------------------- napari (display needed)


@pytest.mark.napari
@needs_display
def test_view_draws_matcher_colours(make_napari_viewer):
    from neuroana.viz.napari._fisbe import show_evaluation

    gt = np.zeros((2, 12, 40, 80), np.uint8)
    gt[0, 3:8, 5:15, 2:78] = 1
    gt[1, 3:8, 25:35, 2:78] = 2
    viewer = make_napari_viewer(show=True)  # a shown canvas: screenshots render the layers
    added = show_evaluation(viewer, gt, gt[:1])  # GT 1 found (TP), GT 2 missed (FN)
    names = [ly.name for ly in added]
    assert "matcher: TP" in names and "matcher: FN" in names
    for ly in added:
        ly.visible = ly.name == "matcher: FN"
    viewer.layers["matcher: FN"].opacity = 1.0  # exact colour on the black canvas
    viewer.dims.set_point(0, 5)
    viewer.reset_view()
    img = viewer.screenshot(canvas_only=True, flash=False)
    rgb = img[..., :3].astype(int)
    want = np.array([0x22, 0x77, 0xFF])  # FN blue
    near = np.abs(rgb - want).sum(-1) < 60
    assert near.sum() > 0.05 * near.size, f"only {near.sum()} FN-blue pixels"
    assert not np.any(np.abs(rgb - np.array([0x22, 0xDD, 0x22])).sum(-1) < 60)  # TP hidden


@pytest.mark.napari
@needs_display
def test_widget_evaluates_in_thread_and_adds_layers(make_napari_viewer, qtbot):
    from napari.layers import Layer

    from neuroana.viz.napari._fisbe import fisbe_evaluate_widget

    viewer = make_napari_viewer()
    for data, kw, kind in sample_fisbe():
        viewer.add_layer(Layer.create(data, kw, kind))
    gt = np.stack([ly.data for ly in viewer.layers if ly.name.startswith("gt ")])
    pred = perturb_prediction(gt, random_state=0)
    lab = np.zeros(pred.shape[1:], np.int32)
    for c in range(pred.shape[0]):
        lab[pred[c] > 0] = c + 1
    viewer.add_labels(lab, name="my prediction")
    w = fisbe_evaluate_widget(viewer)
    w.pred.value = "my prediction"
    w.run()
    qtbot.waitUntil(lambda: w.decisions is not None, timeout=120_000)
    qtbot.waitUntil(lambda: "matcher: false merge" in viewer.layers, timeout=10_000)
    ref = evaluate_instances(gt, lab)
    assert json.dumps(w.decisions.result, sort_keys=True) == json.dumps(ref, sort_keys=True)
    assert "S = " in w.status.value and f"FM = {ref['general']['FM']}" in w.status.value
    assert "my prediction" in viewer.layers  # the user's layer is kept


def test_reader_shows_raw_gt_and_prediction(tmp_path):
    from neuroana.io import write_fisbe
    from neuroana.viz.napari._reader import get_fisbe_reader

    gt, pred = _planted()
    raw = np.stack([gt.sum(0) * (k + 1) for k in range(3)]).astype(np.uint16)
    write_fisbe(tmp_path / "s.zarr", raw=raw, gt=gt, pred=pred)
    assert get_fisbe_reader(str(tmp_path / "nothing.zarr")) is None
    layers = get_fisbe_reader(str(tmp_path / "s.zarr"))(str(tmp_path / "s.zarr"))
    by = {kw["name"]: (np.asarray(d), kw, k) for d, kw, k in layers}
    np.testing.assert_array_equal(by["raw ch1"][0], raw[1])
    assert by["raw ch1"][1]["blending"] == "additive"
    for j in range(4):
        np.testing.assert_array_equal(by[f"gt {j + 1}"][0] > 0, gt[j] > 0)
    np.testing.assert_array_equal(by["prediction"][0], pred.max(0))  # channels do not overlap
