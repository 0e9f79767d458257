"""Pictures of the napari plugin's widgets after a fit on its sample data (the README's figures).

Run under a display, from the repository root::

    xvfb-run -a -s "-screen 0 1280x1024x24" python docs/screenshots.py

It writes ``docs/napari_<widget>.png`` (the whole window: canvas and the widget's dock, reduced to a
small palette). ``tests/viz/test_napari_screenshots.py`` runs the same :func:`shoot` into a
temporary folder and checks that each picture shows drawn content.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

WIDGETS = ("traces", "fisbe", "connectome", "hmmglm", "adaptation")
WINDOW = (1280, 800)
MAX_BYTES = 200_000


def _wait(cond, timeout: float = 300.0) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("the widget did not finish in time")
        QApplication.processEvents()
        time.sleep(0.01)


def _settle(seconds: float = 1.0) -> None:
    """Let Qt lay out and paint the docks."""
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def _session(viewer):
    from neuroana.viz.napari._sample_data import sample_session

    ((data, kw, _),) = sample_session()
    return viewer.add_labels(data, **kw)


def _run(w) -> None:
    worker = w.run()
    if worker is None:
        raise RuntimeError(f"the widget did not start: {w.status.value}")
    _wait(lambda: w.button.enabled)
    if w.result is None:
        raise RuntimeError(f"the widget's fit failed: {w.status.value}")


def _panel(figure) -> np.ndarray:
    """The dock's matplotlib panel as drawn (RGB)."""
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


def _traces(viewer):
    from neuroana.viz.napari._widgets import TracesWidget

    layer = _session(viewer)
    w = TracesWidget(viewer)
    viewer.window.add_dock_widget(w, name="NWB traces and spikes", area="right")
    viewer.layers.selection.active = layer
    layer.selected_label = 3
    return w.figure


def _fisbe(viewer):
    from napari.layers import Layer

    from neuroana.datasets.fisbe_synth import perturb_prediction
    from neuroana.viz.napari._fisbe import fisbe_evaluate_widget
    from neuroana.viz.napari._sample_data import sample_fisbe

    for data, kw, kind in sample_fisbe():
        viewer.add_layer(Layer.create(data, kw, kind))
    gt = np.stack([ly.data for ly in viewer.layers if ly.name.startswith("gt ")])
    pred = perturb_prediction(gt, random_state=0)
    lab = np.zeros(pred.shape[1:], np.int32)
    for c in range(pred.shape[0]):
        lab[pred[c] > 0] = c + 1
    viewer.add_labels(lab, name="my prediction", scale=viewer.layers["gt 1"].scale)
    w = fisbe_evaluate_widget(viewer)
    viewer.window.add_dock_widget(w, name="FISBe evaluation", area="right")
    w.pred.value = "my prediction"
    w.run()
    _wait(lambda: w.decisions is not None and "matcher: TP" in viewer.layers)
    for ly in viewer.layers:  # the matcher's decisions over the raw image
        ly.visible = ly.name.startswith(("raw", "matcher"))
    viewer.dims.set_point(0, viewer.dims.range[0].start + viewer.dims.range[0].stop / 2)
    return None


def _connectome(viewer):
    from neuroana.viz.napari._analysis_widgets import connectome_widget

    _session(viewer)
    w = connectome_widget(viewer)
    viewer.window.add_dock_widget(w, name="Dynamic connectome", area="right")
    fields = w.param_fields
    fields["n_components"].value, fields["n_restarts"].value, fields["max_iter"].value = "2", 2, 100
    _run(w)
    _wait(lambda: "communities session" in viewer.layers)
    for ly in viewer.layers:  # the session's ROI masks painted by community (component 0)
        ly.visible = ly.name == "communities session"
    return w.figure


def _hmmglm(viewer):
    from neuroana.viz.napari._analysis_widgets import hmmglm_widget

    _session(viewer)
    w = hmmglm_widget(viewer)
    viewer.window.add_dock_widget(w, name="HMM-GLM states", area="right")
    fields = w.param_fields
    fields["n_states"].value, fields["max_iter"].value, fields["n_restarts"].value = 3, 10, 1
    # trials: the epochs table's rows (wake, sleep) cut into 7.5-s pieces
    w.data_fields["trials"].value, w.data_fields["trial_length"].value = "epochs", "7.5"
    _run(w)
    return w.figure


def _adaptation(viewer):
    from neuroana.viz.napari._analysis_widgets import adaptation_widget

    w = adaptation_widget(viewer)
    viewer.window.add_dock_widget(w, name="Adaptation tuning curves", area="right")
    w.fields["adapter"].value = 30.0
    _run(w)
    return w.figure


def shoot(name: str, viewer, out_dir: Path) -> dict:
    """Open the sample data, run widget ``name`` on it, save ``napari_<name>.png`` in ``out_dir``.

    Returns the saved path, the whole window (RGB), the viewer's canvas (RGB) and the widget's
    matplotlib panel as drawn (RGB; None for the FISBe widget, which draws on the canvas only).
    """
    from PIL import Image

    viewer.window.resize(*WINDOW)
    figure = {
        "traces": _traces,
        "fisbe": _fisbe,
        "connectome": _connectome,
        "hmmglm": _hmmglm,
        "adaptation": _adaptation,
    }[name](viewer)
    if figure is not None:
        figure.canvas.draw()
    _settle()  # the docks take their room first, then the view fits the canvas that is left
    viewer.reset_view()
    _settle(0.3)
    window = viewer.screenshot(canvas_only=False, flash=False)[..., :3]
    canvas = viewer.screenshot(canvas_only=True, flash=False)[..., :3]
    path = Path(out_dir) / f"napari_{name}.png"
    image = Image.fromarray(np.ascontiguousarray(window))
    image.quantize(colors=64, dither=Image.Dither.NONE).save(path, optimize=True)
    panel = None if figure is None else _panel(figure)
    return {"path": path, "window": window, "canvas": canvas, "panel": panel}


def main() -> None:
    import napari

    out = Path(__file__).resolve().parent
    for name in WIDGETS:
        viewer = napari.Viewer(show=True)
        shot = shoot(name, viewer, out)
        print(f"{shot['path']}: {shot['path'].stat().st_size / 1e3:.0f} kB")
        viewer.close()


if __name__ == "__main__":
    main()
