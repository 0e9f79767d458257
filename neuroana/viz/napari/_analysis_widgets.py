"""napari dock widgets for the analyses: connectome communities, HMM-GLM states, adaptation tuning.

Each widget is a thin client of the public API. The top half of this module is pure Python (no Qt,
no napari): parameter plumbing from widget values to an unfitted estimator, the fits on an NWB
file, and the painting of communities onto ROI masks. The widgets below only gather values, run
those functions in a worker thread (``napari.qt.threading.create_worker``, so the viewer never
freezes) and show the results as layers and matplotlib panels. Every fit's iterations drive a
determinate progress bar in napari's activity dock (through :func:`neuroana.backend.observe_fits`),
and Cancel stops a fit at its next iteration without adding anything.

=================  ===============================  ==============================================
widget             fit (worker thread)              shows
=================  ===============================  ==============================================
connectome         :func:`fit_connectome`           one Labels layer per component (ROI ``i``'s
                                                    pixels painted community + 1); time factors
hmmglm             :func:`fit_hmmglm`               spike counts, Viterbi states, posteriors
adaptation         :func:`run_adaptation`           tuning before/after (adapter marked), gains
=================  ===============================  ==============================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import xarray as xr

__all__ = [
    "HMMGLMFit",
    "adaptation_widget",
    "communities_to_labels",
    "community_layers",
    "connectome_estimator",
    "connectome_widget",
    "fit_connectome",
    "fit_hmmglm",
    "hmmglm_estimator",
    "hmmglm_widget",
    "parse_n_components",
    "run_adaptation",
]


class AnalysisWidgetError(ValueError):
    """A widget value or layer that cannot feed the analysis (the message names it)."""


# =============================================================================== pure: connectome
def parse_n_components(value) -> int | str:
    """Widget text for ``n_components``: ``"auto"`` or a positive integer.

    Examples
    --------
    >>> parse_n_components(" Auto "), parse_n_components("3"), parse_n_components(2)
    ('auto', 3, 2)
    """
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        raise AnalysisWidgetError(
            f"n_components={value!r}; expected 'auto' or a positive integer"
        ) from None
    if n < 1:
        raise AnalysisWidgetError(f"n_components={value!r}; expected 'auto' or an integer >= 1")
    return n


def connectome_estimator(
    *,
    window: float,
    step: float | None = None,
    n_components: int | str = "auto",
    random_state: int | None = 0,
    n_restarts: int = 4,
    max_iter: int = 200,
    max_rank: int = 4,
    n_runs: int = 3,
    device: str = "auto",
):
    """The unfitted :class:`~neuroana.connectome.DynamicConnectome` the connectome widget runs.

    ``step`` of ``None`` or ``0`` means the estimator's default hop; ``n_components`` may be the
    text ``"auto"`` (rank chosen among ``1 .. max_rank``) or an integer (also as text).

    Examples
    --------
    >>> est = connectome_estimator(window=5.0, step=0, n_components="2", random_state=1)
    >>> est.step is None, est.n_components, est.random_state
    (True, 2, 1)
    """
    from neuroana.connectome import DynamicConnectome

    if max_rank < 1:
        raise AnalysisWidgetError(f"max_rank={max_rank!r}; expected an integer >= 1")
    return DynamicConnectome(
        window=float(window),
        step=None if step in (None, 0, 0.0) else float(step),
        n_components=parse_n_components(n_components),
        ranks=tuple(range(1, int(max_rank) + 1)),
        n_restarts=int(n_restarts),
        max_iter=int(max_iter),
        n_runs=int(n_runs),
        device=device,
        random_state=random_state,
    )


def fit_connectome(path: str, estimator):
    """Read the ROI traces of the NWB file ``path`` and fit ``estimator`` (returned, fitted).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from neuroana.datasets import make_session
    >>> from neuroana.io import write_session_nwb
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.nwb"
    >>> _ = write_session_nwb(make_session(random_state=0, duration=20.0, n_rois=8), p)
    >>> est = connectome_estimator(window=5.0, n_components=1, n_restarts=1, device="cpu")
    >>> fit_connectome(str(p), est).result_["communities"].sizes["roi"]
    8
    """
    from neuroana.io import read_roi_traces

    return estimator.fit(read_roi_traces(path))


def communities_to_labels(
    masks_labels: np.ndarray, roi_ids: Sequence, communities: xr.DataArray | Mapping
) -> np.ndarray:
    """Paint communities onto a ROI label image.

    Parameters
    ----------
    masks_labels : array of int
        ROI label image: pixel value ``i + 1`` belongs to ROI ``roi_ids[i]``, ``0`` is background
        (the ``ROIs`` layer of the NWB reader).
    roi_ids : sequence
        ROI ids in label order (the layer's ``metadata["roi_ids"]``).
    communities : xarray.DataArray ``("roi",)`` or mapping
        Community of each ROI, by ROI id (a DataArray's ``roi`` coordinate holds the ids), e.g.
        ``DynamicConnectome.result_["communities"].isel(component=r)``.

    Returns
    -------
    numpy.ndarray of int32, shape of ``masks_labels``
        ROI ``roi_ids[i]``'s pixels hold its community + 1. Background, ROIs absent from
        ``communities`` and ROIs of community ``-1`` (not estimable) are 0.

    Raises
    ------
    AnalysisWidgetError
        Non-integer or negative labels, a label above ``len(roi_ids)``, or communities without
        ROI ids.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.array([[0, 1, 1], [2, 3, 0]])
    >>> communities_to_labels(lab, [10, 20, 30], {10: 1, 20: 0, 30: -1})
    array([[0, 2, 2],
           [1, 0, 0]], dtype=int32)
    """
    lab = np.asarray(masks_labels)
    if not (np.issubdtype(lab.dtype, np.integer) or lab.dtype == bool):
        raise AnalysisWidgetError(f"ROI labels of dtype {lab.dtype}; expected integer labels")
    ids = list(roi_ids)
    if lab.size and lab.min() < 0:
        raise AnalysisWidgetError(f"ROI labels contain {int(lab.min())}; expected labels >= 0")
    if lab.size and lab.max() > len(ids):
        raise AnalysisWidgetError(
            f"ROI label {int(lab.max())} but only {len(ids)} roi_ids; expected labels <= "
            f"{len(ids)} (label i + 1 is roi_ids[i])"
        )
    if isinstance(communities, xr.DataArray):
        if communities.dims != ("roi",) or "roi" not in communities.coords:
            raise AnalysisWidgetError(
                f"communities with dims {communities.dims} and coords {list(communities.coords)};"
                " expected a ('roi',) DataArray with a 'roi' coordinate of ROI ids"
            )
        mapping = dict(
            zip(communities["roi"].values.tolist(), communities.values.tolist(), strict=True)
        )
    elif isinstance(communities, Mapping):
        mapping = dict(communities)
    else:
        raise AnalysisWidgetError(
            f"communities of type {type(communities).__name__}; expected a ('roi',) DataArray "
            "or a mapping from ROI id to community"
        )
    lut = np.zeros(len(ids) + 1, dtype=np.int32)
    for i, rid in enumerate(ids):
        c = mapping.get(rid, -1)
        lut[i + 1] = int(c) + 1 if c is not None and int(c) >= 0 else 0
    return lut[lab.astype(np.int64)]


def community_layers(
    masks_labels: np.ndarray, roi_ids: Sequence, result: xr.Dataset, layer_kwargs=None
) -> list[tuple]:
    """One Labels layer-data tuple per component: ``("communities c<r>", ...)``.

    ``layer_kwargs`` (e.g. the ROI layer's ``scale`` and ``translate``) is added to every layer's
    kwargs; the metadata records the component and its number of communities.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> res = xr.Dataset({"communities": (("component", "roi"), [[0, 1], [1, 1]])},
    ...                  coords={"roi": [5, 6]})
    >>> layers = community_layers(np.array([[1, 2, 0]]), [5, 6], res)
    >>> [(kw["name"], d.tolist()) for d, kw, _ in layers]
    [('communities c0', [[1, 2, 0]]), ('communities c1', [[2, 2, 0]])]
    """
    com = result["communities"].transpose("component", "roi")
    out = []
    for r in range(com.sizes["component"]):
        data = communities_to_labels(masks_labels, roi_ids, com.isel(component=r))
        n = int(result["n_communities"].values[r]) if "n_communities" in result else None
        kw = {
            **(layer_kwargs or {}),
            "name": f"communities c{r}",
            "metadata": {"component": r, "n_communities": n},
        }
        out.append((data, kw, "labels"))
    return out


# =================================================================================== pure: HMM-GLM
class HMMGLMFit(NamedTuple):
    """The fitted model, the counts it saw ``("time", "unit")`` and its decoded states."""

    model: object
    spikes: xr.DataArray
    states: xr.DataArray  # ("time",) Viterbi path
    posterior: xr.DataArray  # ("time", "state")


def hmmglm_estimator(
    *,
    n_states: int = 2,
    prior: str = "none",
    random_state: int | None = 0,
    max_iter: int = 20,
    n_restarts: int = 2,
    device: str = "auto",
):
    """The unfitted :class:`~neuroana.hmmglm.HMMGLM` the HMM-GLM widget runs.

    Examples
    --------
    >>> hmmglm_estimator(n_states=3, prior="onehot").get_params()["n_states"]
    3
    """
    from neuroana.hmmglm import HMMGLM

    return HMMGLM(
        n_states=int(n_states),
        prior=prior,
        random_state=random_state,
        max_iter=int(max_iter),
        n_restarts=int(n_restarts),
        device=device,
    )


def fit_hmmglm(path: str, bin_size: float, estimator) -> HMMGLMFit:
    """Bin the spikes of the NWB file ``path`` (one trial), fit ``estimator``, decode the states.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from neuroana.datasets import make_session
    >>> from neuroana.io import write_session_nwb
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.nwb"
    >>> _ = write_session_nwb(make_session(random_state=0, duration=10.0, n_units=4), p)
    >>> est = hmmglm_estimator(n_states=2, max_iter=3, n_restarts=1, device="cpu")
    >>> fit = fit_hmmglm(str(p), 0.05, est)
    >>> fit.states.dims, fit.posterior.dims
    (('time',), ('time', 'state'))
    """
    from neuroana.io import read_spike_counts

    spikes = read_spike_counts(path, bin_size)
    trial = spikes.expand_dims("trial")
    model = estimator.fit(trial)
    states = model.predict_states(trial).isel(trial=0)
    posterior = model.posterior(trial).isel(trial=0).transpose("time", "state")
    return HMMGLMFit(model, spikes, states, posterior)


# ================================================================================ pure: adaptation
def run_adaptation(
    *,
    n_neurons: int = 36,
    n_stimuli: int = 72,
    tuning_width: float = 20.0,
    recurrence: float = 0.6,
    kernel_width: float = 20.0,
    inhibition: float = 0.0,
    adapter: float = 0.0,
    adaptor_probability: float = 0.5,
    objective: str = "efficient_coding",
) -> xr.Dataset:
    """:func:`~neuroana.adaptation.simulate.simulate_adaptation` on a ring
    :class:`~neuroana.adaptation.RecurrentGainNetwork` built from the widget values.

    Examples
    --------
    >>> ds = run_adaptation(n_neurons=12, n_stimuli=24)
    >>> ds.attrs["adapter"], ds.sizes["neuron"]
    (0.0, 12)
    """
    from neuroana.adaptation import RecurrentGainNetwork
    from neuroana.adaptation.simulate import simulate_adaptation

    net = RecurrentGainNetwork(
        int(n_neurons),
        int(n_stimuli),
        tuning_width=float(tuning_width),
        recurrence=float(recurrence),
        kernel_width=float(kernel_width),
        inhibition=float(inhibition),
    )
    return simulate_adaptation(net, float(adapter), float(adaptor_probability), objective=objective)


# ========================================================================================== widgets
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


def connectome_widget(napari_viewer=None):
    """Dock widget: fit a dynamic connectome on the traces of an NWB ``ROIs`` layer's file.

    The communities of every component are painted onto the ROI masks as a new Labels layer
    ``communities c<r>`` (:func:`community_layers`); the panel shows the components' time (window)
    and animal factors (:func:`neuroana.viz.connectome.plot_factors`). ``w.run()`` starts a fit and
    returns its worker; ``w.result`` holds the fitted estimator afterwards.
    """
    from magicgui.widgets import ComboBox, FloatSpinBox, LineEdit, SpinBox

    viewer = _viewer(napari_viewer)
    layer_box = ComboBox(label="ROIs layer", choices=_nwb_layer_names(viewer, True))
    window = FloatSpinBox(label="window (s)", value=5.0, min=0.01, max=1e5, step=0.5)
    step = FloatSpinBox(label="step (s, 0: default)", value=2.5, min=0.0, max=1e5, step=0.5)
    n_components = LineEdit(label="n_components", value="auto")
    max_rank = SpinBox(label="max rank (auto)", value=4, min=1, max=20)
    n_restarts = SpinBox(label="n_restarts", value=4, min=1, max=100)
    max_iter = SpinBox(label="max_iter", value=200, min=1, max=100_000)
    random_state = SpinBox(label="random_state", value=0, min=0, max=2**31 - 1)
    fields = [layer_box, window, step, n_components, max_rank, n_restarts, max_iter, random_state]
    w = _dock(viewer, fields, "Fit connectome", layer_box)
    names = ("layer_box", "window", "step", "n_components", "max_rank", "n_restarts", "max_iter")
    for name, field in zip((*names, "random_state"), fields, strict=True):
        setattr(w, name, field)

    def estimator():
        return connectome_estimator(
            window=window.value,
            step=step.value,
            n_components=n_components.value,
            random_state=random_state.value,
            n_restarts=n_restarts.value,
            max_iter=max_iter.value,
            max_rank=max_rank.value,
        )

    def run():
        if not layer_box.value:
            w.status.value = "open an NWB file with ROI masks (its 'ROIs' layer)"
            return None
        layer = viewer.layers[layer_box.value]
        try:
            est = estimator()
        except ValueError as e:
            w.status.value = str(e)
            return None
        masks = np.asarray(layer.data)
        roi_ids = list(layer.metadata["roi_ids"])
        geometry = {"scale": tuple(layer.scale), "translate": tuple(layer.translate)}
        path = layer.metadata["nwb_path"]

        def show(fitted):
            from napari.layers import Layer

            res = fitted.result_
            for data, kw, kind in community_layers(masks, roi_ids, res, geometry):
                if kw["name"] in viewer.layers:
                    viewer.layers.remove(kw["name"])
                viewer.add_layer(Layer.create(data, kw, kind))
            _show_factors(w, res)
            ncom = ", ".join(f"c{r}: {int(n)}" for r, n in enumerate(res["n_communities"].values))
            w.status.value = f"rank {res.attrs['rank']}; communities {ncom}"

        return _start(w, lambda: fit_connectome(path, est), show, "connectome fit")

    w.estimator, w.run = estimator, run
    w.button.changed.connect(lambda *_: run())
    return w


def _show_factors(w, result: xr.Dataset) -> None:
    from matplotlib.figure import Figure

    from neuroana.viz.connectome import plot_factors

    n = result.sizes["component"]
    fig = Figure(figsize=(5, 1.4 * n + 0.8), layout="constrained")
    axes = fig.subplots(n, 2, squeeze=False, gridspec_kw={"width_ratios": [4, 1]})
    plot_factors(result, axes=axes)
    _set_figure(w, fig)


def hmmglm_widget(napari_viewer=None):
    """Dock widget: fit an HMM-GLM on the binned spikes of an NWB layer's file.

    The panel shows the spike counts, the Viterbi state path and the state posteriors along time
    (:func:`neuroana.viz.hmmglm.plot_states`). ``w.result`` holds the :class:`HMMGLMFit`.
    """
    from magicgui.widgets import ComboBox, FloatSpinBox, SpinBox

    viewer = _viewer(napari_viewer)
    layer_box = ComboBox(label="NWB layer", choices=_nwb_layer_names(viewer, False))
    bin_size = FloatSpinBox(label="bin size (s)", value=0.05, min=1e-4, max=60.0, step=0.01)
    n_states = SpinBox(label="n_states", value=3, min=1, max=20)
    prior = ComboBox(label="prior", choices=["none", "gaussian", "onehot"], value="none")
    max_iter = SpinBox(label="max_iter", value=20, min=1, max=10_000)
    n_restarts = SpinBox(label="n_restarts", value=2, min=1, max=100)
    random_state = SpinBox(label="random_state", value=0, min=0, max=2**31 - 1)
    fields = [layer_box, bin_size, n_states, prior, max_iter, n_restarts, random_state]
    w = _dock(viewer, fields, "Fit HMM-GLM", layer_box)
    w.layer_box, w.bin_size, w.n_states, w.prior = layer_box, bin_size, n_states, prior
    w.max_iter, w.n_restarts, w.random_state = max_iter, n_restarts, random_state

    def estimator():
        return hmmglm_estimator(
            n_states=n_states.value,
            prior=prior.value,
            random_state=random_state.value,
            max_iter=max_iter.value,
            n_restarts=n_restarts.value,
        )

    def run():
        if not layer_box.value:
            w.status.value = "open an NWB file with spikes (any of its layers)"
            return None
        path = viewer.layers[layer_box.value].metadata["nwb_path"]
        est, bs = estimator(), float(bin_size.value)

        def show(fit: HMMGLMFit):
            from neuroana.viz.hmmglm import plot_states

            fig, _ = plot_states(fit.spikes, fit.states, posterior=fit.posterior)
            _set_figure(w, fig)
            occ = np.bincount(fit.states.values, minlength=fit.model.n_states)
            frac = ", ".join(f"{k}: {o / occ.sum():.0%}" for k, o in enumerate(occ))
            w.status.value = f"{fit.spikes.sizes['time']} bins of {bs} s; state occupancy {frac}"

        return _start(w, lambda: fit_hmmglm(path, bs, est), show, "HMM-GLM fit")

    w.estimator, w.run = estimator, run
    w.button.changed.connect(lambda *_: run())
    return w


def adaptation_widget(napari_viewer=None):
    """Dock widget: adapt a recurrent gain network to a biased stimulus ensemble.

    The panel shows tuning curves before (dashed) and after (solid) adaptation with the adapter
    marked, and the optimal gains (:mod:`neuroana.viz.adaptation`). ``w.result`` holds the Dataset
    of :func:`run_adaptation`.
    """
    from magicgui.widgets import ComboBox, FloatSpinBox, SpinBox

    viewer = _viewer(napari_viewer)
    n_neurons = SpinBox(label="n_neurons", value=36, min=2, max=2000)
    n_stimuli = SpinBox(label="n_stimuli", value=72, min=3, max=5000)
    tuning_width = FloatSpinBox(label="tuning width", value=20.0, min=0.1, max=180.0)
    recurrence = FloatSpinBox(label="recurrence", value=0.6, min=-0.99, max=0.99, step=0.05)
    kernel_width = FloatSpinBox(label="kernel width", value=20.0, min=0.1, max=180.0)
    inhibition = FloatSpinBox(label="inhibition", value=0.0, min=0.0, max=10.0, step=0.1)
    adapter = FloatSpinBox(label="adapter", value=0.0, min=-90.0, max=90.0, step=5.0)
    probability = FloatSpinBox(label="adaptor p", value=0.5, min=0.0, max=1.0, step=0.05)
    objective = ComboBox(
        label="objective", choices=["efficient_coding", "homeostatic"], value="efficient_coding"
    )
    fields = [
        n_neurons,
        n_stimuli,
        tuning_width,
        recurrence,
        kernel_width,
        inhibition,
        adapter,
        probability,
        objective,
    ]
    w = _dock(viewer, fields, "Adapt")
    keys = (
        "n_neurons",
        "n_stimuli",
        "tuning_width",
        "recurrence",
        "kernel_width",
        "inhibition",
        "adapter",
        "adaptor_probability",
        "objective",
    )
    w.fields = dict(zip(keys, fields, strict=True))

    def params() -> dict:
        return {k: f.value for k, f in w.fields.items()}

    def run():
        kw = params()

        def show(ds):
            from matplotlib.figure import Figure

            from neuroana.viz.adaptation import plot_gains, plot_tuning_before_after

            fig = Figure(figsize=(5, 6), layout="constrained")
            ax_t, ax_g = fig.subplots(2, 1)
            plot_tuning_before_after(ds, every=max(ds.sizes["neuron"] // 12, 1), ax=ax_t)
            plot_gains(ds, ax=ax_g)
            _set_figure(w, fig)
            w.status.value = (
                f"adapter {ds.attrs['adapter']:g}: max response ratio at the adapter "
                f"{float(ds.max_ratio.values[np.argmin(np.abs(ds.distance_from_adapter.values))]):.3f}"
            )

        return _start(w, lambda: run_adaptation(**kw), show, "adaptation")

    w.params, w.run = params, run
    w.button.changed.connect(lambda *_: run())
    return w
