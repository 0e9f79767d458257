"""The connectome analysis contract: NWB files -> ``DynamicConnectome.fit`` inputs -> results.

``DATA_KEYS`` are the keys of a run configuration's ``data:`` section (``neuroana run``):

``roi_label``
    The ROI-table column that names each neuron's identity across animals (e.g.
    ``neuron_label``). Required with several files, unless ``shared_ids: true``.
``shared_ids``
    ``true`` declares that the ROI table ids already mean the same neuron in every file (then
    several files are aligned by id). Default ``false``: several files without ``roi_label`` are
    refused, because ROI ids are per-file row numbers in most pipelines and aligning by them
    merges different neurons silently.
``name``
    The RoiResponseSeries (default: the only one, else DfOverF / Fluorescence / RoiResponseSeries).
``drop_constant``
    Drop ROIs whose trace never changes (default ``false``).
``epochs``
    An interval table name in the files (e.g. ``epochs``; every file must hold the same
    intervals), or a list of ``[start, stop, name]`` rows in seconds: the fit then reports the
    components and communities of every episode.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from neuroana.connectome.errors import ConnectomeInputError

DATA_KEYS: dict[str, bool] = {
    "name": False,
    "roi_label": False,
    "shared_ids": False,
    "drop_constant": False,
    "epochs": False,
}


def _epochs(paths: Sequence[pathlib.Path], spec) -> pd.DataFrame:
    from neuroana.io import read_intervals

    if isinstance(spec, str):
        tables = [read_intervals(p, spec) for p in paths]
        first = tables[0][["start_time", "stop_time"]].to_numpy()
        for p, t in zip(paths[1:], tables[1:], strict=True):
            other = t[["start_time", "stop_time"]].to_numpy()
            if other.shape != first.shape or not np.allclose(other, first):
                raise ConnectomeInputError(
                    f"data.epochs: interval table {spec!r} of {p.name} differs from that of "
                    f"{paths[0].name}; expected the same episodes in every file (or give the "
                    "episodes as a list of [start, stop, name] rows)"
                )
        return tables[0]
    if isinstance(spec, list) and spec and all(isinstance(r, list | tuple) for r in spec):
        rows = [tuple(r) for r in spec]
        if all(len(r) == 3 for r in rows):
            return pd.DataFrame(rows, columns=["start_time", "stop_time", "name"])
        if all(len(r) == 2 for r in rows):
            return pd.DataFrame(rows, columns=["start_time", "stop_time"])
    raise ConnectomeInputError(
        f"data.epochs={spec!r}; expected an interval table name (e.g. 'epochs') or a list of "
        "[start, stop, name] rows in seconds"
    )


def read_inputs(paths: Sequence[pathlib.Path], data: Mapping[str, Any]) -> dict[str, Any]:
    """NWB files (one per animal) + the ``data:`` options -> ``DynamicConnectome.fit`` keywords.

    Returns ``{"traces": DataArray or {file stem: DataArray}}`` plus ``"epochs"`` when
    ``data["epochs"]`` is given.

    Raises
    ------
    ConnectomeInputError
        Several files without ``roi_label`` (the message names the files and the two options),
        an unknown ``data`` key, epochs that differ between files.
    neuroana.io.NWBError
        A missing ``roi_label`` column or a label repeated within a file.

    Examples
    --------
    >>> from neuroana.connectome.pipeline import read_inputs
    >>> read_inputs(["a.nwb", "b.nwb"], {})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    neuroana.errors.ConnectomeInputError: inputs a.nwb, b.nwb: several animals ...
    """
    from neuroana.io import read_roi_traces

    paths = [pathlib.Path(p) for p in paths]
    bad = sorted(set(data) - set(DATA_KEYS))
    if bad:
        raise ConnectomeInputError(f"data: unknown key(s) {bad}; valid: {sorted(DATA_KEYS)}")
    label = data.get("roi_label")
    if len(paths) > 1 and label is None and not data.get("shared_ids"):
        raise ConnectomeInputError(
            f"inputs {', '.join(p.name for p in paths)}: several animals need a neuron identity "
            "shared across files; ROI table ids are per-file and would merge different neurons. "
            "Set data.roi_label to the ROI-table column naming each neuron (e.g. neuron_label), "
            "or data.shared_ids: true if the ids already mean the same neuron in every file"
        )
    animals: dict[str, xr.DataArray] = {}
    for p in paths:
        tr = read_roi_traces(p, data.get("name"), roi_label=label)
        if data.get("drop_constant"):
            std = tr.std("time").values
            keep = std > 1e-12 * max(1.0, float(np.abs(tr).max()))
            tr = tr.isel(roi=np.flatnonzero(keep))
        key = p.stem if p.stem not in animals else str(p)
        animals[key] = tr
    out: dict[str, Any] = {"traces": next(iter(animals.values())) if len(animals) == 1 else animals}
    if data.get("epochs") is not None:
        out["epochs"] = _epochs(paths, data["epochs"])
    return out


def results(estimator, inputs: Mapping[str, Any]) -> tuple[xr.Dataset, dict[str, Any]]:
    """Fitted :class:`DynamicConnectome` -> results Dataset and a JSON-able summary.

    The Dataset holds ``affinity`` and the variables of ``result_`` (factors, communities,
    coverage; with epochs the ``episode_*`` variables) and the rank-selection table
    (``rank_stability``, ``rank_error`` on a ``rank`` dim) when the rank was chosen. The summary
    is ``{"fitted": {"rank": ...}, "scores": ...}``; its scores have the rank, the reconstruction error, the communities per component and, with epochs, per
    episode: its components, number of communities and animal loadings.
    """
    res = estimator.result_
    ds = res.copy()
    ds["affinity"] = estimator.affinity_.rename(None)
    sel = estimator.rank_selection_
    if sel is not None:
        ds["rank_stability"] = sel.table["stability"]
        ds["rank_error"] = sel.table["error"]
    for name in list(ds.variables):
        if ds[name].dtype == object:
            ds[name] = ds[name].astype(str)
        if ds[name].dtype == bool:
            ds[name] = ds[name].astype(np.int8)
    ds.attrs = {"rank": int(res.attrs["rank"])}
    summary: dict[str, Any] = {
        "n_components": int(res.attrs["rank"]),
        "reconstruction_error": float(res.attrs["reconstruction_error"]),
        "n_communities": np.asarray(res["n_communities"]).tolist(),
        "rank_rule": None if sel is None else sel.rule,
    }
    if "episode" in res.dims:
        summary["episodes"] = {
            str(name): {
                "components": np.flatnonzero(res["episode_members"].values[e]).tolist(),
                "n_communities": int(res["episode_n_communities"].values[e]),
                "animal_loading": {
                    str(a): (None if not np.isfinite(v) else float(v))
                    for a, v in zip(
                        res["animal"].values
                        if "animal" in res.coords
                        else range(res.sizes["animal"]),
                        res["episode_animal_loading"].values[e],
                        strict=True,
                    )
                },
            }
            for e, name in enumerate(res["episode"].values)
        }
    return ds, {"fitted": {"rank": int(res.attrs["rank"])}, "scores": summary}
