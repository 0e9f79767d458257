"""FISBe in napari: raw, GT, predictions, skeletons and the matcher's decisions, and a dock widget.

Layer building (:func:`dataset_layers`, :func:`evaluation_layers`) is pure Python: it returns
napari layer-data tuples ``(data, kwargs, layer_type)`` and imports neither napari nor Qt, so it
is tested anywhere. :func:`show_evaluation` adds them to a viewer; :func:`fisbe_evaluate_widget`
is the dock widget (the evaluation runs in a worker thread, the viewer stays responsive).

Fixed colours of the matcher's decisions (:data:`DECISION_COLOURS`; one Labels layer each, every
instance of a layer in its colour; an instance can be in several layers, e.g. a matched piece of a
split neuron is in ``TP`` and ``false split``):

========================  =========  =====================================================
layer                     colour     instances
========================  =========  =====================================================
``matcher: TP``           green      predictions matched one-to-one at clDice > 0.5
``matcher: FN``           blue       GT instances without such a match
``matcher: FP``           red        predictions counted as false positives at 0.5
``matcher: false split``  orange     predictions of a GT matched to several (clRecall > 0.05)
``matcher: false merge``  magenta    predictions matched to several GT (clRecall > 0.1)
========================  =========  =====================================================

Skeletons are Points layers: GT skeletons white, predicted skeletons yellow.
"""

from __future__ import annotations

import numpy as np

from neuroana.segmentation import InstanceDecisions, instance_decisions, key_metrics

__all__ = [
    "DECISION_COLOURS",
    "SKELETON_COLOURS",
    "dataset_layers",
    "evaluation_layers",
    "fisbe_evaluate_widget",
    "show_evaluation",
]

DECISION_COLOURS = {
    "TP": "#22dd22",
    "FN": "#2277ff",
    "FP": "#ff2222",
    "false split": "#ff9900",
    "false merge": "#ff22ff",
}
SKELETON_COLOURS = {"gt": "#ffffff", "pred": "#ffff00"}
CHANNEL_COLORMAPS = ("red", "green", "blue")


def _label_dtype(n: int):
    return np.uint8 if n < 256 else (np.uint16 if n < 65536 else np.uint32)


def _paint(shape, voxels, ids) -> np.ndarray:
    """A label volume with instance ``i`` (1-based id) painted at ``voxels[i - 1]``."""
    out = np.zeros(shape, dtype=_label_dtype(max(ids, default=0) + 1))
    flat = out.reshape(-1)
    for i in ids:
        flat[voxels[i - 1]] = i
    return out


def _single_colour(colour: str) -> dict:
    return {None: colour, 0: "transparent"}


def raw_layers(raw, scale=(1.0, 1.0, 1.0)) -> list[tuple]:
    """Three additive colour Image layers (red, green, blue) from a ``(3, Z, Y, X)`` raw image."""
    return [
        (
            raw[i],
            {
                "name": f"raw ch{i}",
                "colormap": CHANNEL_COLORMAPS[i % 3],
                "blending": "additive",
                "scale": tuple(scale),
            },
            "image",
        )
        for i in range(raw.shape[0])
    ]


def gt_layers(gt, scale=(1.0, 1.0, 1.0)) -> list[tuple]:
    """One Labels layer per GT channel (``gt 1``, ``gt 2``, ...); channel ``j`` painted ``j + 1``."""
    out = []
    for j in range(gt.shape[0]):
        mask = np.asarray(gt[j]) > 0
        data = mask.astype(_label_dtype(j + 2)) * (j + 1)
        out.append((data, {"name": f"gt {j + 1}", "scale": tuple(scale)}, "labels"))
    return out


def dataset_layers(ds) -> list[tuple]:
    """Layer data of a FISBe :class:`xarray.Dataset` (``read_fisbe`` or ``make_fisbe_volume``):
    raw as three additive colour layers, one Labels layer per GT instance, and the prediction.

    Examples
    --------
    >>> from neuroana.datasets.fisbe_synth import make_fisbe_volume
    >>> ds = make_fisbe_volume((16, 32, 32), n_neurons=2, n_fasciculating=0)
    >>> [(kw["name"], kind) for _, kw, kind in dataset_layers(ds)][:4]
    [('raw ch0', 'image'), ('raw ch1', 'image'), ('raw ch2', 'image'), ('gt 1', 'labels')]
    """
    scale = tuple(float(ds[d][1] - ds[d][0]) if ds.sizes[d] > 1 else 1.0 for d in ("z", "y", "x"))
    layers: list[tuple] = []
    if "raw" in ds:
        layers += raw_layers(ds["raw"].data, scale)
    if "gt" in ds:
        layers += gt_layers(ds["gt"].data, scale)
    if "pred" in ds:
        pred = np.asarray(ds["pred"].data)
        lab = np.zeros(pred.shape[1:], dtype=np.uint32)
        for c in range(pred.shape[0]):  # one channel per instance or a label map: ids kept
            lab = np.where(pred[c] > 0, pred[c], lab)
        layers.append((lab, {"name": "prediction", "scale": scale}, "labels"))
    return layers


def evaluation_layers(
    decisions: InstanceDecisions, raw=None, scale=(1.0, 1.0, 1.0), gt=None, show_gt: bool = True
) -> list[tuple]:
    """Layer data showing one evaluation: raw, GT, prediction, skeletons, matcher decisions.

    Parameters
    ----------
    decisions : InstanceDecisions
        From :func:`neuroana.segmentation.instance_decisions`.
    raw : array (3, Z, Y, X), optional
        Raw image, shown as three additive colour layers.
    scale : (dz, dy, dx)
        Voxel size (micrometres) for every layer.
    gt : array (N, Z, Y, X), optional
        GT channels to show one Labels layer each; default: the evaluated GT instances.
    show_gt : bool
        False: no ``gt *`` layers (the viewer already shows them).

    Returns
    -------
    list of (data, kwargs, layer_type)
        ``raw ch*`` images, ``gt *`` labels, ``evaluated prediction`` labels (ids after the size
        filter), ``gt skeletons`` / ``pred skeletons`` points, and ``matcher: TP``, ``FN``,
        ``FP``, ``false split``, ``false merge`` labels in :data:`DECISION_COLOURS`.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.segmentation import instance_decisions
    >>> gt = np.zeros((2, 12, 12, 80), np.uint8)
    >>> gt[0, 1:6, 1:6, 2:78] = 1; gt[1, 6:11, 6:11, 2:78] = 2
    >>> layers = evaluation_layers(instance_decisions(gt, gt[:1]))
    >>> fn = [d for d, kw, _ in layers if kw["name"] == "matcher: FN"][0]
    >>> bool((fn > 0).sum() == (gt[1] > 0).sum())
    True
    """
    shape, scale = decisions.shape, tuple(scale)
    layers: list[tuple] = []
    if raw is not None:
        layers += raw_layers(raw, scale)
    if not show_gt:
        pass
    elif gt is not None:
        layers += gt_layers(gt, scale)
    else:
        for j in range(len(decisions.gt_voxels)):
            data = _paint(shape, decisions.gt_voxels, [j + 1])
            layers.append((data, {"name": f"gt {j + 1}", "scale": scale}, "labels"))
    n_pred = len(decisions.pred_voxels)
    layers.append(
        (
            _paint(shape, decisions.pred_voxels, range(1, n_pred + 1)),
            {"name": "evaluated prediction", "scale": scale},
            "labels",
        )
    )
    for side, skels in (("gt", decisions.gt_skeletons), ("pred", decisions.pred_skeletons)):
        pts = (
            np.concatenate([np.stack(s, axis=1) for s in skels]).astype(float)
            if skels
            else np.zeros((0, 3))
        )
        kw = {
            "name": f"{side} skeletons",
            "face_color": SKELETON_COLOURS[side],
            "border_width": 0,
            "size": 1.5,
            "scale": scale,
        }
        layers.append((pts, kw, "points"))
    ids = decisions.ids()
    for key, colour in DECISION_COLOURS.items():
        voxels = decisions.gt_voxels if key == "FN" else decisions.pred_voxels
        data = _paint(shape, voxels, ids[key])
        kw = {
            "name": f"matcher: {key}",
            "colormap": _single_colour(colour),
            "opacity": 0.8,
            "scale": scale,
            "metadata": {"ids": ids[key], "colour": colour},
        }
        layers.append((data, kw, "labels"))
    return layers


def show_evaluation(
    viewer,
    gt,
    pred,
    raw=None,
    labeling: str = "completely",
    decisions: InstanceDecisions | None = None,
    scale=(1.0, 1.0, 1.0),
) -> list:
    """Evaluate ``pred`` against ``gt`` (unless ``decisions`` is given) and add the view's layers.

    Parameters
    ----------
    viewer : napari.Viewer
    gt, pred : arrays (FISBe layout or label maps)
        As for :func:`neuroana.segmentation.evaluate_instances`.
    raw : array (3, Z, Y, X), optional
    labeling : {"completely", "partly"}
    decisions : InstanceDecisions, optional
        A finished evaluation to show instead of evaluating again.
    scale : (dz, dy, dx)

    Returns
    -------
    list of napari layers added (see :func:`evaluation_layers` for names and colours).
    """
    from napari.layers import Layer

    if decisions is None:
        decisions = instance_decisions(gt, pred, labeling)
    added = []
    for data, kw, kind in evaluation_layers(decisions, raw=raw, scale=scale):
        added.append(viewer.add_layer(Layer.create(data, kw, kind)))
    return added


def summary_text(decisions: InstanceDecisions) -> str:
    """The key metrics of an evaluation, one line each (shown in the widget)."""
    km = key_metrics(decisions.result)
    c = decisions.counts()
    return (
        f"S = {km['S']:.4f}   avF1 = {km['avF1']:.4f}   C = {km['C']:.4f}\n"
        f"clDice_TP = {km['clDice_TP']:.4f}   tp = {km['tp']:.4f}\n"
        f"TP = {c['TP']}  FN = {c['FN']}  FP = {c['FP']}  (clDice > {decisions.threshold})\n"
        f"FS = {c['FS']}  FM = {c['FM']}   nGT = {km['nGT']}  nPred = {km['nPred']}"
    )


def _stack_gt(layers) -> np.ndarray:
    """FISBe-layout ``(N, Z, Y, X)`` from Labels layers (3-D: one channel; 4-D: its channels)."""
    chans = []
    for layer in layers:
        data = np.asarray(layer.data)
        chans.extend(data if data.ndim == 4 else [data])
    return np.stack(chans)


def fisbe_evaluate_widget(napari_viewer=None):
    """Dock widget: pick GT and prediction Labels layers, evaluate in a worker thread, then add
    the colour-coded layers (:func:`evaluation_layers`) and show the key metrics.

    GT: every Labels layer named ``gt *`` (as the FISBe reader and sample data create, one per
    instance) when "all 'gt *' layers" is ticked, else the chosen layer (a 4-D ``(N, Z, Y, X)``
    layer or a 3-D label map). Prediction: a 3-D label map or a 4-D one-instance-per-channel layer.
    """
    from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton
    from napari.layers import Labels
    from napari.qt.threading import thread_worker

    viewer = napari_viewer
    if viewer is None:
        import napari

        viewer = napari.current_viewer()

    def labels_names(_=None):
        return [ly.name for ly in viewer.layers if isinstance(ly, Labels)]

    gt_box = ComboBox(label="GT", choices=labels_names)
    all_gt = CheckBox(label="all 'gt *' layers", value=True)
    pred_box = ComboBox(label="prediction", choices=labels_names)
    labeling = ComboBox(label="labeling", choices=["completely", "partly"], value="completely")
    button = PushButton(text="Evaluate")
    status = Label(value="")
    w = Container(widgets=[gt_box, all_gt, pred_box, labeling, button, status])
    w.status, w.button, w.gt, w.pred, w.all_gt, w.labeling = (
        status,
        button,
        gt_box,
        pred_box,
        all_gt,
        labeling,
    )
    w.decisions = None

    def refresh(event=None):
        gt_box.reset_choices()
        pred_box.reset_choices()

    viewer.layers.events.inserted.connect(refresh)
    viewer.layers.events.removed.connect(refresh)

    def run():
        if not pred_box.value:
            status.value = "choose a prediction Labels layer"
            return None
        if all_gt.value:
            gl = [
                ly for ly in viewer.layers if isinstance(ly, Labels) and ly.name.startswith("gt ")
            ]
        else:
            gl = [viewer.layers[gt_box.value]] if gt_box.value else []
        if not gl:
            status.value = "no GT layer: name GT Labels layers 'gt 1', 'gt 2', ... or untick"
            return None
        gt = _stack_gt(gl)
        pdata = np.asarray(viewer.layers[pred_box.value].data)
        scale = tuple(viewer.layers[pred_box.value].scale[-3:])
        lab = labeling.value

        @thread_worker
        def work():
            return instance_decisions(gt, pdata, lab)

        def done(d):
            w.decisions = d
            from napari.layers import Layer

            for data, kw, kind in evaluation_layers(d, scale=scale, show_gt=False):
                if kw["name"] in viewer.layers:
                    viewer.layers.remove(kw["name"])
                viewer.add_layer(Layer.create(data, kw, kind))
            status.value = summary_text(d)
            button.enabled = True

        def failed(e):
            status.value = f"evaluation failed: {e}"
            button.enabled = True

        worker = work()
        worker.returned.connect(done)
        worker.errored.connect(failed)
        button.enabled = False
        status.value = "evaluating..."
        worker.start()
        w.worker = worker
        return worker

    button.changed.connect(lambda *_: run())
    w.run = run
    return w
