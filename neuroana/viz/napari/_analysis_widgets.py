"""napari dock widgets for the analyses, built from the analysis registry.

:func:`analysis_widget` makes the dock widget of any registered analysis
(:mod:`neuroana.analysis`): a list of the NWB files opened as layers (and, for analyses that do
not paint on ROI masks, further input files), one field per ``data`` option of the analysis's
pipeline and one per estimator parameter, a Fit and a Cancel button, a status line and a
matplotlib panel. Fit runs :func:`~._analysis_core.fit_registered` in a worker thread (the
pipeline's ``read_inputs`` -> ``estimator.fit`` -> ``results``, as ``neuroana run`` does), with
a determinate progress bar in napari's activity dock driven by every fit loop's iterations
(:func:`neuroana.backend.observe_fits`); Cancel stops the fit at its next iteration and adds
nothing. An analysis without an entry in :data:`SPECS` gets every data option and every
estimator parameter (with the estimator's defaults) and its summary's scores on the status line;
:func:`registry_widget` offers every registered analysis in one dock.

=================  =================================  ============================================
widget             inputs                             shows
=================  =================================  ============================================
connectome         ROIs layers, one per animal        one Labels layer per animal: its ROI masks
                   (label column aligns them)         painted by community, a plane per episode
                                                      (with epochs) or component; the factors
hmmglm             NWB layers; trials from an         spike counts, Viterbi states and
                   interval table (``trials``)        posteriors of the first trial
any other          NWB layers and files               the summary's scores
adaptation         (network explorer, no file)        tuning before/after, gains
=================  =================================  ============================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from neuroana.viz.napari._analysis_core import (
    Outcome,
    animal_rois,
    check_animals,
    check_data_options,
    community_layer,
    fit_registered,
    parse_value,
    run_adaptation,
)
from neuroana.viz.napari._fitdock import _dock, _nwb_layer_names, _set_figure, _start, _viewer

__all__ = [
    "SPECS",
    "WidgetSpec",
    "adaptation_widget",
    "analysis_widget",
    "connectome_widget",
    "hmmglm_widget",
    "registry_widget",
]


class _RoiLayer(NamedTuple):
    """What a fit needs of one animal's ROIs layer, taken on the main thread."""

    file: str
    roi_ids: list
    masks: np.ndarray
    geometry: dict
    stem: str


@dataclass(frozen=True)
class WidgetSpec:
    """How :func:`analysis_widget` shows one analysis.

    Attributes
    ----------
    params : mapping or None
        Estimator parameters shown -> the widget's starting value (``None``: every parameter,
        starting at the estimator's default).
    data : mapping or None
        Pipeline ``data`` options shown -> starting value (``None``: every ``DATA_KEYS`` entry,
        unset).
    rois : bool
        Inputs are NWB ``ROIs`` layers whose masks :attr:`paint` draws on (one per file); no
        other files are offered.
    check : callable or None
        ``check(inputs, roi_layers)`` in the worker before the fit; raises to refuse.
    paint : callable or None
        ``paint(widget, outcome, roi_layers)`` on the main thread after the fit (default: the
        summary's scores on the status line).
    """

    params: Mapping[str, Any] | None = None
    data: Mapping[str, Any] | None = None
    rois: bool = False
    check: Callable | None = None
    paint: Callable | None = None


def _field(key: str, default):
    from magicgui.widgets import CheckBox, LineEdit, SpinBox

    if isinstance(default, bool):
        return CheckBox(label=key, value=default)
    if isinstance(default, int):
        return SpinBox(label=key, value=default, min=-(2**31), max=2**31 - 1)
    if default is None:
        text = ""
    elif isinstance(default, list | tuple):
        text = "[" + ", ".join(map(str, default)) + "]"
    else:
        text = str(default)
    return LineEdit(label=key, value=text)


def _values(fields: Mapping, defaults: Mapping) -> dict:
    out = {}
    for k, f in fields.items():
        v = parse_value(f.value)
        if isinstance(defaults.get(k), tuple) and isinstance(v, list):
            v = tuple(v)
        out[k] = v
    return out


def _roi_layers(layers) -> list[_RoiLayer]:
    out = []
    for ly in layers:
        path = Path(ly.metadata["nwb_path"])
        geometry = {"scale": tuple(ly.scale), "translate": tuple(ly.translate)}
        out.append(
            _RoiLayer(
                path.name, list(ly.metadata["roi_ids"]), np.asarray(ly.data), geometry, path.stem
            )
        )
    return out


def analysis_widget(name: str, napari_viewer=None, spec: WidgetSpec | None = None):
    """Dock widget for the registered analysis ``name`` (see the module documentation).

    ``w.run()`` starts a fit and returns its worker (``None``, with a message on the status line,
    when the values cannot run); ``w.result`` holds the :class:`~._analysis_core.Outcome`
    afterwards. ``w.layer_box`` lists the NWB layers (several may be selected: one file each),
    ``w.files`` further input files, ``w.data_fields`` and ``w.param_fields`` the fields by key;
    ``w.data()``, ``w.params()`` and ``w.estimator()`` read them.
    """
    from magicgui.widgets import FileEdit, Label, Select

    from neuroana.analysis import get

    entry = get(name)
    spec = spec if spec is not None else SPECS.get(name, WidgetSpec())
    viewer = _viewer(napari_viewer)
    pipe = entry.pipeline_module()
    data_defaults = dict(spec.data) if spec.data is not None else dict.fromkeys(pipe.DATA_KEYS)
    param_defaults = (
        dict(spec.params) if spec.params is not None else entry.estimator_class()().get_params()
    )
    layer_box = Select(
        label="ROIs layers" if spec.rois else "NWB layers",
        choices=_nwb_layer_names(viewer, spec.rois),
    )
    files = FileEdit(label="other files", mode="rm")
    data_fields = {k: _field(k, v) for k, v in data_defaults.items()}
    param_fields = {k: _field(k, v) for k, v in param_defaults.items()}
    fields = [
        layer_box,
        *([] if spec.rois else [files]),
        Label(value="data options"),
        *data_fields.values(),
        Label(value="parameters"),
        *param_fields.values(),
    ]
    w = _dock(viewer, fields, f"Fit {name}", layer_box)
    if layer_box.choices:
        layer_box.value = [layer_box.choices[0]]
    w.analysis, w.layer_box, w.files = name, layer_box, files
    w.data_fields, w.param_fields = data_fields, param_fields

    def data() -> dict:
        return _values(data_fields, data_defaults)

    def params() -> dict:
        return _values(param_fields, param_defaults)

    def estimator():
        return entry.estimator_class()(**params())

    def run():
        layers = [viewer.layers[n] for n in layer_box.value]
        paths: list[str] = []
        for ly in layers:
            p = ly.metadata["nwb_path"]
            if p in paths:
                w.status.value = f"two selected layers come from {Path(p).name}; select one each"
                return None
            paths.append(p)
        if not spec.rois:
            paths += [str(f) for f in files.value or ()]
        if not paths:
            kind = "an NWB file with ROI masks (its 'ROIs' layer)" if spec.rois else "a file"
            w.status.value = f"open {kind} and select it"
            return None
        try:
            d = check_data_options(name, data(), len(paths))
            est = estimator()
        except (ValueError, TypeError) as e:
            w.status.value = str(e)
            return None
        rois = _roi_layers(layers) if spec.rois else []
        check = None
        if spec.check is not None:

            def check(inputs):
                spec.check(inputs, rois)

        def show(outcome: Outcome):
            (spec.paint or _paint_summary)(w, outcome, rois)

        work = lambda: fit_registered(name, paths, d, est, check)  # noqa: E731
        return _start(w, work, show, f"{name} fit")

    w.data, w.params, w.estimator, w.run = data, params, estimator, run
    w.button.changed.connect(lambda *_: run())
    return w


def registry_widget(napari_viewer=None):
    """Dock widget offering every registered analysis that fits one estimator: pick one and its
    :func:`analysis_widget` appears below (``w.analysis_box``; ``w.inner`` is the current one)."""
    from magicgui.widgets import ComboBox, Container

    from neuroana.analysis import analyses

    viewer = _viewer(napari_viewer)
    choices = [a.name for a in analyses() if not hasattr(a.pipeline_module(), "run")]
    box = ComboBox(label="analysis", choices=choices, value=choices[0])
    w = Container(widgets=[box])
    w.analysis_box, w.inner = box, None

    def switch(*_):
        if w.inner is not None:
            w.remove(w.inner)
        w.inner = analysis_widget(box.value, viewer)
        w.append(w.inner)

    box.changed.connect(switch)
    switch()
    return w


def _paint_summary(w, outcome: Outcome, rois) -> None:
    scores = outcome.summary.get("scores", {})
    text = ", ".join(
        f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}"
        for k, v in scores.items()
        if isinstance(v, int | float | str)
    )
    w.status.value = f"{w.analysis} fitted; {text}" if text else f"{w.analysis} fitted"


# ====================================================================================== connectome
def _check_connectome(inputs, rois) -> None:
    check_animals(inputs, [(r.file, r.roi_ids) for r in rois])


def _paint_connectome(w, outcome: Outcome, rois) -> None:
    from napari.layers import Layer

    viewer = w.viewer
    tr = outcome.inputs["traces"]
    animals = list(tr.values()) if isinstance(tr, Mapping) else [tr]
    res = outcome.estimator.result_
    for r, traces in zip(rois, animals, strict=True):
        data, kw, kind = community_layer(
            r.masks,
            r.roi_ids,
            res,
            animal_rois(traces),
            name=f"communities {r.stem}",
            layer_kwargs=r.geometry,
        )
        if kw["name"] in viewer.layers:
            viewer.layers.remove(kw["name"])
        viewer.add_layer(Layer.create(data, kw, kind))
    _show_factors(w, res)
    meta = kw["metadata"]
    ncom = ", ".join(f"{n}: {k}" for n, k in zip(meta["rows"], meta["n_communities"], strict=True))
    w.status.value = (
        f"rank {res.attrs['rank']}; {len(rois)} animal(s); communities per {meta['axis']} {ncom}"
    )


def _show_factors(w, result: xr.Dataset) -> None:
    from matplotlib.figure import Figure

    from neuroana.viz.connectome import plot_factors

    n = result.sizes["component"]
    fig = Figure(figsize=(5, 1.4 * n + 0.8), layout="constrained")
    axes = fig.subplots(n, 2, squeeze=False, gridspec_kw={"width_ratios": [4, 1]})
    plot_factors(result, axes=axes)
    _set_figure(w, fig)


# ========================================================================================= HMM-GLM
def _paint_hmmglm(w, outcome: Outcome, rois) -> None:
    from neuroana.viz.hmmglm import plot_states

    X = outcome.inputs["spikes"]
    states = outcome.dataset["states"]
    first = X.isel(trial=slice(0, 1))
    post = outcome.estimator.posterior(first).isel(trial=0).transpose("time", "state")
    fig, _ = plot_states(X.isel(trial=0), states.isel(trial=0), posterior=post)
    _set_figure(w, fig)
    occ = np.bincount(states.values.ravel(), minlength=outcome.estimator.n_states)
    frac = ", ".join(f"{k}: {o / occ.sum():.0%}" for k, o in enumerate(occ))
    w.status.value = (
        f"{X.sizes['trial']} trial(s) of {X.sizes['time']} bins of {X.attrs['bin_size']} s "
        f"(panel: trial 0); state occupancy {frac}"
    )


SPECS: dict[str, WidgetSpec] = {
    "connectome": WidgetSpec(
        params={
            "window": 5.0,
            "step": 2.5,
            "n_components": "auto",
            "ranks": (1, 2, 3, 4),
            "n_restarts": 4,
            "max_iter": 200,
            "n_runs": 3,
            "random_state": 0,
        },
        data={"roi_label": None, "epochs": None},
        rois=True,
        check=_check_connectome,
        paint=_paint_connectome,
    ),
    "hmmglm": WidgetSpec(
        params={"n_states": 3, "prior": "none", "max_iter": 20, "n_restarts": 2, "random_state": 0},
        data={"bin_size": 0.05, "trials": None, "trial_length": None},
        paint=_paint_hmmglm,
    ),
}


def connectome_widget(napari_viewer=None):
    """The connectome's :func:`analysis_widget`: select one ROIs layer per animal (with several,
    name the ROI-table column that identifies neurons across files in ``roi_label``); each
    animal's masks are painted by community (``communities <file stem>``), the panel shows the
    components' window and animal factors (:func:`neuroana.viz.connectome.plot_factors`)."""
    return analysis_widget("connectome", napari_viewer)


def hmmglm_widget(napari_viewer=None):
    """The HMM-GLM's :func:`analysis_widget`: spikes binned at ``bin_size``; ``trials`` names an
    interval table (e.g. ``trials`` or ``epochs``) whose rows are the trials (default: one trial
    per file). The panel shows the first trial's counts, Viterbi states and posteriors
    (:func:`neuroana.viz.hmmglm.plot_states`)."""
    return analysis_widget("hmmglm", napari_viewer)


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
