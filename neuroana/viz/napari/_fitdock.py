"""The dock machinery the analysis widgets share: a Container with fields, Fit and Cancel buttons,
a status line and a matplotlib panel, and :func:`_start`, which runs a fit in a worker thread with
a determinate progress bar and cancel (one fit at a time across the widgets)."""

from __future__ import annotations

from typing import NamedTuple


def _viewer(napari_viewer):
    if napari_viewer is not None:
        return napari_viewer
    import napari

    return napari.current_viewer()


def _nwb_layer_names(viewer, need_roi_ids: bool):
    def names(_=None):
        return [
            ly.name
            for ly in viewer.layers
            if "nwb_path" in getattr(ly, "metadata", {})
            and (not need_roi_ids or "roi_ids" in ly.metadata)
        ]

    return names


def _dock(viewer, fields: list, button_text: str, layer_box=None):
    """A Container: ``fields``, a run button, a status line and a matplotlib panel below."""
    from magicgui.widgets import Container, Label, PushButton
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure

    button = PushButton(text=button_text)
    cancel = PushButton(text="Cancel", enabled=False)
    status = Label(value="")
    w = Container(widgets=[*fields, button, cancel, status])
    w.button, w.cancel, w.status, w.result, w.worker, w.viewer = (
        button,
        cancel,
        status,
        None,
        None,
        viewer,
    )
    w.stop = None

    def request_cancel(*_):
        if w.stop is not None and not w.stop.is_set():
            w.stop.set()
            w.status.value = "cancelling at the next iteration..."

    cancel.changed.connect(request_cancel)
    w.figure = Figure(figsize=(5, 4), layout="constrained")
    w.canvas = FigureCanvasQTAgg(w.figure)
    w.canvas.setMinimumHeight(300)
    w.native.layout().addWidget(w.canvas)
    if layer_box is not None:

        def refresh(event=None):
            layer_box.reset_choices()

        viewer.layers.events.inserted.connect(refresh)
        viewer.layers.events.removed.connect(refresh)
    return w


def _set_figure(w, fig) -> None:
    """Show ``fig`` in the dock's panel (a new canvas in place of the old one)."""
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg

    layout = w.native.layout()
    canvas = FigureCanvasQTAgg(fig)
    canvas.setMinimumHeight(300)
    layout.replaceWidget(w.canvas, canvas)
    w.canvas.setParent(None)
    w.canvas.deleteLater()
    w.figure, w.canvas = fig, canvas
    canvas.draw_idle()


# One fit at a time: with a shown viewer, two workers that each carry a napari progress bar stalled
# the viewer (the activity dialog's nested processEvents starved the workers; reproduced with two
# plain create_worker(..., _progress=...) calls on napari 0.9.2 with the Qt5 binding the plugin
# used then; not re-checked on Qt6), and two torch fits would oversubscribe the cores anyway. A
# second Run while a fit is running is refused with a message.
_ACTIVE: list = []
# how often the progress bar shows the fit's latest iteration
_PROGRESS_INTERVAL_MS = 20


def _progress_text(desc: str, p) -> str:
    """The progress bar's label for a :class:`~neuroana.backend.FitProgress` report.

    Examples
    --------
    >>> from neuroana.backend import FitProgress
    >>> _progress_text("HMM-GLM fit", FitProgress("EM", 2, 7, 20, {"objective": -1.5}, "objective"))
    'HMM-GLM fit: EM (run 2) objective -1.5'
    """
    value = p.value
    tail = "" if value is None else f" {p.monitor} {value:.4g}"
    return f"{desc}: {p.desc} (run {p.run}){tail}"


class _Failed(NamedTuple):
    """What a worker returns when its fit raised (or was cancelled)."""

    error: Exception


def _start(w, work, show, desc: str):
    """Run ``work()`` in a worker thread; ``show(result)`` on the main thread when it returns;
    errors go to the status line. One fit at a time across the analysis widgets (None is
    returned, with a message, while another runs).

    Every :func:`~neuroana.backend.fit_loop` run inside ``work`` drives a determinate
    ``napari.utils.cancelable_progress`` in the activity dock (iteration of ``max_iter``, the
    monitored loss in its label; through :func:`~neuroana.backend.observe_fits`). The dock's
    Cancel button and the activity dock's both stop the fit at its next iteration
    (:class:`~neuroana.backend.FitCancelled`); a cancelled run adds no layer and draws nothing.
    """
    import threading

    from napari.qt.threading import create_worker
    from napari.utils import cancelable_progress
    from qtpy.QtCore import QTimer

    from neuroana.backend import FitCancelled, observe_fits

    if _ACTIVE:
        w.status.value = "another analysis is running; run this one when it has finished"
        return None

    stop = threading.Event()
    pbar = cancelable_progress(total=0, desc=desc)
    closed = threading.Event()  # finish() runs on returned and again on finished

    def cancelled() -> bool:
        return stop.is_set() or pbar.is_canceled

    # the fit's thread only stores its latest report; a main-thread timer shows it (Qt widgets
    # are touched from the main thread alone, and no queued call can arrive out of order)
    latest: list = [None, None]  # [newest report, report shown]

    def report(p) -> None:
        latest[0] = p

    def poll() -> None:
        p = latest[0]
        if p is None or p is latest[1] or closed.is_set():
            return
        latest[1] = p
        if pbar.total != p.max_iter:
            pbar.total = p.max_iter
        pbar.set_description(_progress_text(desc, p))
        pbar.update(p.iteration - pbar.n)

    timer = QTimer()
    timer.setInterval(_PROGRESS_INTERVAL_MS)
    timer.timeout.connect(poll)

    def job():
        # every outcome comes back through ``returned``: napari 0.9.2's own slot on ``errored``
        # takes the wrong number of arguments under PySide6 (a TypeError in the event loop)
        try:
            with observe_fits(report, cancel=cancelled):
                out = work()
        except Exception as e:  # noqa: BLE001 - shown on the status line by done()
            return _Failed(e)
        if cancelled():  # cancelled after the last fit_loop iteration: drop the result too
            return _Failed(FitCancelled(f"{desc} cancelled"))
        return out

    def finish():
        if worker in _ACTIVE:
            _ACTIVE.remove(worker)
        if not closed.is_set():
            poll()  # the last iteration reached
            timer.stop()
            closed.set()
            pbar.close()
        w.button.enabled, w.cancel.enabled = True, False

    def done(result):
        finish()
        if isinstance(result, _Failed) or cancelled():
            e = result.error if isinstance(result, _Failed) else None
            if e is None or isinstance(e, FitCancelled):
                w.status.value = f"{desc} cancelled; nothing was added"
            else:
                w.status.value = f"{desc} failed: {e}"
            return
        w.result = result
        try:
            show(result)
        except Exception as e:  # noqa: BLE001 - shown to the user, the dock stays usable
            w.status.value = f"showing the result failed: {e}"

    worker = create_worker(job, _ignore_errors=True)
    worker.pbar = pbar
    worker.returned.connect(done)
    worker.finished.connect(finish)
    _ACTIVE.append(worker)
    w.button.enabled, w.cancel.enabled = False, True
    w.result = None
    w.status.value = f"{desc}..."
    w.worker, w.stop, w.timer = worker, stop, timer
    timer.start()
    worker.start()
    return worker
