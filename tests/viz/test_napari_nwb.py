"""The napari plugin on real NWB files: manifest, reader layers, traces widget, a rendered layer."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("npe2")

from neuroana.viz.napari._reader import get_fisbe_reader, get_nwb_reader, masks_to_labels  # noqa: E402

SUITE2P = "pynapple_suite2p_2022_08_08.nwb"
INSCOPIX = "pynapple_inscopix-cnmfe_A0634-210127.nwb"


def test_manifest_validates():
    from npe2 import PluginManifest

    pm = PluginManifest.from_distribution("neuroana")
    assert pm.name == "neuroana"
    readers = {r.command for r in pm.contributions.readers}
    assert readers == {"neuroana.get_nwb_reader", "neuroana.get_fisbe_reader"}
    # every command resolves to an importable callable
    for cmd in pm.contributions.commands:
        module, attr = cmd.python_name.split(":")
        mod = __import__(module, fromlist=[attr])
        assert callable(getattr(mod, attr)), cmd.python_name


@pytest.mark.napari
def test_qt_binding_is_qt6_and_one_for_all(qtbot):
    """napari, matplotlib's Qt canvas and pytest-qt run on the same Qt6 binding."""
    import os

    import qtpy
    from matplotlib.backends.qt_compat import QtCore as mpl_qtcore
    from pytestqt.qt_compat import qt_api

    assert qtpy.API_NAME in ("PyQt6", "PySide6"), f"the Qt binding is {qtpy.API_NAME}"
    binding = qtpy.API_NAME
    assert qt_api.QtCore.__name__ == f"{binding}.QtCore"
    assert mpl_qtcore.__name__ == f"{binding}.QtCore"
    if os.environ.get("QT_API"):
        assert binding.lower() == os.environ["QT_API"].lower()


@pytest.mark.napari
def test_qt_binding_keeps_none_alive(qtbot):
    """Qt calls that return nothing leave None's reference count alone (PySide6 6.12.0 on Python
    3.11 takes one per call: a long napari session then aborts with 'deallocating None')."""
    import sys

    from qtpy.QtWidgets import QLabel, QProgressBar

    label, bar = QLabel(), QProgressBar()
    before = sys.getrefcount(None)
    for i in range(500):
        label.setText(str(i))
        bar.setValue(i % 100)
    assert sys.getrefcount(None) - before > -50, "the Qt binding leaks references to None"


def test_npe2_validate_passes():
    """``npe2 validate neuroana``, as a plugin author (and the napari hub) runs it."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "neuroana"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "valid" in out.stdout


def test_reader_only_claims_nwb(tmp_path):
    assert get_nwb_reader(str(tmp_path / "x.tif")) is None
    assert get_fisbe_reader(str(tmp_path)) is None  # a folder without volumes/raw


def test_masks_to_labels_matches_brute_force():
    rng = np.random.default_rng(0)
    m = rng.random((4, 6, 7)) * (rng.random((4, 6, 7)) > 0.6)
    lab = masks_to_labels(m)
    for y in range(6):
        for x in range(7):
            w = m[:, y, x]
            assert lab[y, x] == (0 if not (w > 0).any() else int(np.argmax(w)) + 1)


def test_nwb_reader_layers_on_real_suite2p(nwb_dir):
    from neuroana.io import read_roi_masks

    path = str(nwb_dir / SUITE2P)
    layers = get_nwb_reader(path)(path)
    by_name = {kw["name"]: (data, kw, kind) for data, kw, kind in layers}
    assert {"meanImg", "max_proj", "Vcorr", "ROIs"} <= set(by_name)
    labels, kw, kind = by_name["ROIs"]
    assert kind == "labels" and labels.shape == (608, 608)
    masks = read_roi_masks(path)
    # every ROI with any pixel shows up, labelled by its position + 1
    covered = set(np.unique(labels)) - {0}
    nonempty = {i + 1 for i in range(masks.sizes["roi"]) if (masks.values[i] > 0).any()}
    assert covered <= nonempty and len(covered) >= 0.9 * len(nonempty)
    assert kw["metadata"]["nwb_path"] == path
    assert kw["metadata"]["roi_ids"] == masks["roi"].values.tolist()


@pytest.mark.napari
def test_traces_widget_plots_selected_roi(make_napari_viewer, nwb_dir):
    from neuroana.io import read_roi_traces
    from neuroana.viz.napari._widgets import TracesWidget

    viewer = make_napari_viewer()
    path = str(nwb_dir / INSCOPIX)
    for data, kw, kind in get_nwb_reader(path)(path):
        getattr(viewer, f"add_{kind}")(data, **kw)
    widget = TracesWidget(viewer)
    layer = viewer.layers["ROIs"]
    viewer.layers.selection.active = layer
    layer.selected_label = 3
    line = widget.figure.axes[0].lines[0]
    expected = read_roi_traces(path).isel(roi=2)
    np.testing.assert_array_equal(line.get_ydata(), expected.values)
    assert widget.figure.axes[0].get_title() == f"ROI {int(expected.roi)}"


@pytest.mark.napari
def test_roi_labels_layer_draws(make_napari_viewer, nwb_dir):
    viewer = make_napari_viewer(show=True)
    path = str(nwb_dir / INSCOPIX)
    for data, kw, kind in get_nwb_reader(path)(path):
        getattr(viewer, f"add_{kind}")(data, **kw)
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    rgb = shot[..., :3].astype(int)
    lit = (rgb.sum(-1) > 30).mean()
    assert lit > 0.01, f"only {lit:.4f} of the canvas is drawn"
    # hiding the layer blanks the canvas: the check measures the layer, not the background
    viewer.layers["ROIs"].visible = False
    dark = (
        viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int).sum(-1) > 30
    ).mean()
    assert dark < lit / 5


@pytest.mark.napari
def test_sample_session_opens_with_traces(make_napari_viewer):
    from neuroana.viz.napari._sample_data import sample_session
    from neuroana.viz.napari._widgets import TracesWidget

    viewer = make_napari_viewer()
    ((data, kw, kind),) = sample_session()
    layer = viewer.add_labels(data, **kw)
    widget = TracesWidget(viewer)
    viewer.layers.selection.active = layer
    layer.selected_label = 1
    from neuroana.io import read_roi_traces, read_spike_times

    path = kw["metadata"]["nwb_path"]
    np.testing.assert_array_equal(
        widget.figure.axes[0].lines[0].get_ydata(), read_roi_traces(path).isel(roi=0).values
    )
    # the raster below has one row per unit of the file
    assert len(widget.figure.axes) == 2
    assert len(widget.figure.axes[1].collections) == len(read_spike_times(path))
