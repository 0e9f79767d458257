"""The pure half of the analysis widgets (no Qt, no napari): fits through the analysis registry,
widget text -> parameter values, and communities painted onto each animal's ROI masks.

Every analysis widget runs :func:`fit_registered` in its worker thread: the registry entry's
``pipeline.read_inputs(paths, data)`` -> ``estimator.fit(**inputs)`` -> ``pipeline.results``,
exactly what ``neuroana run`` does, so a widget and a run configuration with the same files,
``data`` options and parameters give the same fit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import xarray as xr

__all__ = [
    "AnalysisWidgetError",
    "Outcome",
    "animal_rois",
    "check_animals",
    "check_data_options",
    "communities_to_labels",
    "community_layer",
    "fit_registered",
    "parse_value",
    "run_adaptation",
]


class AnalysisWidgetError(ValueError):
    """A widget value or layer that cannot feed the analysis (the message names it)."""


class Outcome(NamedTuple):
    """What a widget's fit returns: the fitted estimator, the pipeline's results Dataset and
    summary (as ``neuroana run`` writes them) and the inputs it was fitted on."""

    estimator: Any
    dataset: xr.Dataset
    summary: dict
    inputs: dict


def parse_value(text) -> Any:
    """Widget text -> a parameter value: YAML scalars and lists (``1e4`` a number); empty text is
    ``None``.

    Examples
    --------
    >>> [parse_value(t) for t in (" auto ", "3", "[1, 2]", "", "1e4", 0.5)]
    ['auto', 3, [1, 2], None, 10000.0, 0.5]
    """
    if not isinstance(text, str):
        return text
    import yaml

    text = text.strip()
    if not text:
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):  # YAML 1.1 reads "1e4" as text
        try:
            return float(value)
        except ValueError:
            return value
    return value


def check_data_options(name: str, data: Mapping[str, Any], n_files: int) -> dict:
    """The ``data`` options of analysis ``name`` checked as ``neuroana run`` checks them: unset
    options dropped, required ones present, the pipeline's ``check_data`` applied.

    Examples
    --------
    >>> check_data_options("hmmglm", {"bin_size": None, "trials": None}, 1)
    Traceback (most recent call last):
    ...
    neuroana.viz.napari._analysis_core.AnalysisWidgetError: hmmglm needs data option(s) ['bin_size']
    """
    from neuroana.analysis import get

    pipe = get(name).pipeline_module()
    data = {k: v for k, v in data.items() if v is not None}
    unknown = sorted(set(data) - set(pipe.DATA_KEYS))
    if unknown:
        raise AnalysisWidgetError(f"{name}: unknown data option(s) {unknown}")
    missing = [k for k, req in pipe.DATA_KEYS.items() if req and k not in data]
    if missing:
        raise AnalysisWidgetError(f"{name} needs data option(s) {missing}")
    check = getattr(pipe, "check_data", None)
    return dict(check(data, n_files, Path)) if check is not None else data


def fit_registered(
    name: str,
    paths: Sequence,
    data: Mapping[str, Any],
    estimator,
    check: Callable[[dict], None] | None = None,
) -> Outcome:
    """Read, fit and summarise analysis ``name`` through its registry entry.

    ``check(inputs)`` (optional) sees the pipeline's inputs before the fit and may refuse them.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from neuroana.datasets import make_session
    >>> from neuroana.hmmglm import HMMGLM
    >>> from neuroana.io import write_session_nwb
    >>> p = write_session_nwb(make_session(random_state=0, duration=20.0, n_units=3),
    ...                       pathlib.Path(tempfile.mkdtemp()) / "s.nwb")
    >>> data = {"bin_size": 0.1, "trials": "epochs", "trial_length": 5.0}
    >>> out = fit_registered("hmmglm", [p], data,
    ...                      HMMGLM(n_states=2, max_iter=2, n_restarts=1, device="cpu"))
    >>> out.dataset["states"].sizes["trial"]  # 15 s of wake and 5 s of sleep in 5-s trials
    4
    """
    from neuroana.analysis import get

    pipe = get(name).pipeline_module()
    inputs = pipe.read_inputs([Path(p) for p in paths], data)
    if check is not None:
        check(inputs)
    estimator.fit(**inputs)
    ds, summary = pipe.results(estimator, inputs)
    return Outcome(estimator, ds, summary, inputs)


# ====================================================================================== connectome
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
        Community of each ROI, by ROI id (a DataArray's ``roi`` coordinate holds the ids).

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


def animal_rois(traces: xr.DataArray) -> dict:
    """Neuron (``roi`` coordinate: label or id) -> ROI table id, for one animal's traces.

    Examples
    --------
    >>> import xarray as xr
    >>> tr = xr.DataArray([[1.0, 2.0]], dims=("time", "roi"),
    ...                   coords={"roi": ["N1", "N2"], "roi_id": ("roi", [7, 3])})
    >>> animal_rois(tr)
    {'N1': 7, 'N2': 3}
    """
    labels = traces["roi"].values.tolist()
    ids = traces["roi_id"].values.tolist() if "roi_id" in traces.coords else labels
    return dict(zip(labels, ids, strict=True))


def _community_rows(result: xr.Dataset) -> tuple[str, list[str], xr.DataArray, list]:
    """The rows to paint: episodes when the fit had epochs, else components."""
    if "episode_communities" in result:
        com = result["episode_communities"].transpose("episode", "roi")
        names = [str(e) for e in result["episode"].values]
        n = result["episode_n_communities"].values.tolist()
        return "episode", names, com, n
    com = result["communities"].transpose("component", "roi")
    names = [f"c{r}" for r in range(com.sizes["component"])]
    n = (
        result["n_communities"].values.tolist()
        if "n_communities" in result
        else [None] * len(names)
    )
    return "component", names, com, n


def community_layer(
    masks_labels: np.ndarray,
    roi_ids: Sequence,
    result: xr.Dataset,
    rois: Mapping | None = None,
    *,
    name: str = "communities",
    layer_kwargs: Mapping | None = None,
) -> tuple:
    """One animal's Labels layer-data tuple: its ROI masks painted by community, one plane per
    episode (fits with epochs) or per component, stacked on a leading axis.

    Parameters
    ----------
    masks_labels, roi_ids
        The animal's ROI label image and its ROI ids in label order (the NWB ``ROIs`` layer).
    result : xarray.Dataset
        ``DynamicConnectome.result_`` (or the pipeline's results Dataset).
    rois : mapping, optional
        The animal's neuron (the result's ``roi``: label) -> ROI id (:func:`animal_rois`);
        ``None`` when the result's ``roi`` are this animal's ROI ids. Neurons the animal lacks
        and ROIs the result lacks stay unpainted.
    name : str
        Layer name.
    layer_kwargs : mapping, optional
        ``scale``/``translate`` of the ROI layer (a leading ``1``/``0`` is added) and any other
        layer keyword.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> res = xr.Dataset({"communities": (("component", "roi"), [[0, 1, 1], [1, 1, 0]])},
    ...                  coords={"roi": ["a", "b", "c"]})
    >>> data, kw, kind = community_layer(np.array([[1, 2, 0]]), [5, 6], res, {"b": 5, "c": 6})
    >>> data.tolist(), kw["metadata"]["rows"], kind
    ([[[2, 2, 0]], [[2, 1, 0]]], ['c0', 'c1'], 'labels')
    """
    axis, names, com, n = _community_rows(result)
    labels = com["roi"].values.tolist()
    planes = []
    for r in range(com.sizes[axis]):
        by_label = dict(zip(labels, com.values[r].tolist(), strict=True))
        if rois is None:
            mapping = by_label
        else:
            mapping = {rois[lb]: c for lb, c in by_label.items() if lb in rois}
        planes.append(communities_to_labels(masks_labels, roi_ids, mapping))
    kw = dict(layer_kwargs or {})
    if "scale" in kw:
        kw["scale"] = (1.0, *kw["scale"])
    if "translate" in kw:
        kw["translate"] = (0.0, *kw["translate"])
    kw["name"] = name
    kw["metadata"] = {"axis": axis, "rows": names, "n_communities": n}
    return np.stack(planes), kw, "labels"


def check_animals(inputs: Mapping, layers: Sequence[tuple[str, Sequence]]) -> list[dict]:
    """Refuse animals whose neurons do not line up; return each animal's neuron -> ROI id.

    ``layers`` are ``(file name, ROI ids of its ROIs layer)`` in input order. Refused: a file
    whose traces name ROI ids its ROIs layer lacks (layer and file disagree), and, with several
    files, a file that shares fewer than two neurons (label-column values) with the others
    (a wrong or per-file label column would otherwise give unrelated communities).

    Examples
    --------
    >>> import xarray as xr
    >>> tr = lambda labels, ids: xr.DataArray([[0.0] * len(ids)], dims=("time", "roi"),
    ...     coords={"roi": labels, "roi_id": ("roi", ids)})
    >>> check_animals({"traces": {"a": tr(["x", "y"], [1, 2]), "b": tr(["p", "q"], [1, 2])}},
    ...               [("a.nwb", [1, 2]), ("b.nwb", [1, 2])])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    neuroana.viz.napari._analysis_core.AnalysisWidgetError: a.nwb: its labels ['x', 'y'] share ...
    """
    tr = inputs["traces"]
    animals = list(tr.values()) if isinstance(tr, Mapping) else [tr]
    if len(animals) != len(layers):
        raise AnalysisWidgetError(f"{len(animals)} animals read but {len(layers)} ROI layers")
    maps = [animal_rois(a) for a in animals]
    for (fname, ids), m in zip(layers, maps, strict=True):
        extra = sorted(set(m.values()) - set(ids), key=str)
        if extra:
            raise AnalysisWidgetError(
                f"{fname}: ROI ids {extra[:5]} of its traces are not in its ROIs layer; the layer "
                "does not show this file's ROI table"
            )
    if len(maps) > 1:
        for i, ((fname, _), m) in enumerate(zip(layers, maps, strict=True)):
            others = set().union(*(set(o) for j, o in enumerate(maps) if j != i))
            if len(set(m) & others) < 2:
                raise AnalysisWidgetError(
                    f"{fname}: its labels {sorted(m, key=str)[:5]} share "
                    f"{len(set(m) & others)} neuron(s) with the other files; expected the "
                    "label column to name the same neurons in every file (check the label column)"
                )
    return maps


# ===================================================================== adaptation (network explorer)
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
