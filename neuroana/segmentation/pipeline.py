"""FISBe zarr samples -> :class:`~neuroana.segmentation.ColourClustering` input, a fitted model ->
Dataset + summary, and the evaluation of given predictions (the contract of
:mod:`neuroana.analysis`).

Segmentation writes one ``<sample>.nc`` per input (or one ``results.nc`` of metrics when
``data["pred"]`` gives predictions to evaluate), so it provides :func:`run`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "DATA_KEYS",
    "check_data",
    "input_files",
    "read_inputs",
    "results",
    "run",
    "takes_params",
]

#: ``data:`` options of a run configuration -> required?
DATA_KEYS: dict[str, bool] = {"pred": False, "split_file": False, "labeling": False}


def check_data(data: Mapping[str, Any], n_inputs: int, resolve: Callable[[str], Path]) -> dict:
    """One prediction per input in ``pred``; ``pred`` and ``split_file`` resolved to paths."""
    data = dict(data)
    pred = data.get("pred")
    if pred is not None:
        pred = [pred] if isinstance(pred, str) else pred
        if not isinstance(pred, list) or len(pred) != n_inputs:
            raise ValueError(
                f"data.pred: expected one prediction per input ({n_inputs}); got {pred!r}"
            )
        data["pred"] = [resolve(p) for p in pred]
    if data.get("split_file") is not None:
        data["split_file"] = resolve(data["split_file"])
    return data


def input_files(data: Mapping[str, Any]) -> list[tuple[str, Path]]:
    """``(option, path)`` of the further files the options name (they must exist)."""
    out = [("data.pred", p) for p in data.get("pred") or []]
    if data.get("split_file") is not None:
        out.append(("data.split_file", data["split_file"]))
    return out


def takes_params(data: Mapping[str, Any]) -> bool:
    """Evaluating given predictions (``data["pred"]``) fits no estimator."""
    return data.get("pred") is None


def read_inputs(paths: Sequence[Path], data: Mapping[str, Any]) -> dict[str, Any]:
    """The raw volume of one FISBe sample: ``{"raw": ("channel", "z", "y", "x")}``, loaded.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from neuroana.datasets.fisbe_synth import make_fisbe_volume
    >>> from neuroana.io import write_fisbe
    >>> ds = make_fisbe_volume((16, 32, 32), n_neurons=2, random_state=0)
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.zarr"
    >>> write_fisbe(p, raw=ds.raw.values, gt=ds.gt.values)
    >>> read_inputs([p], {})["raw"].dims
    ('channel', 'z', 'y', 'x')
    """
    from neuroana.io import read_fisbe

    if len(paths) != 1:
        raise ValueError(f"inputs: read_inputs takes one FISBe sample; got {len(paths)}")
    p = Path(paths[0])
    sample = read_fisbe(p, split_file=data.get("split_file"))
    if "raw" not in sample:
        raise ValueError(f"inputs: {p.name} has no volumes/raw to segment")
    return {"raw": sample["raw"].load()}


def results(estimator, inputs: Mapping[str, Any]) -> tuple[xr.Dataset, dict[str, Any]]:
    """The instances found (``("instance", "z", "y", "x")``) and their number."""
    inst = estimator.instances_
    raw = inputs["raw"]
    if isinstance(raw, xr.DataArray):
        inst = inst.assign_coords({c: raw[c].values for c in ("z", "y", "x") if c in raw.coords})
    return xr.Dataset({"instances": inst}), {"fitted": {"n_instances": estimator.n_instances_}}


def run(
    paths: Sequence[Path], data: Mapping[str, Any], params: Mapping[str, Any], out_dir: Path
) -> tuple[Any, dict[str, Any], list[str]]:
    """Segment each input (one ``<sample>.nc`` each, scored against its ``gt`` when present), or
    evaluate ``data["pred"]`` against the inputs (one ``results.nc`` of metrics per sample).

    Returns the estimator (``None`` for an evaluation), the summary part and the file names
    written into ``out_dir``.
    """
    from neuroana.io import read_fisbe
    from neuroana.io.fitted import netcdf_safe
    from neuroana.io.results import write_netcdf_atomic
    from neuroana.segmentation import (
        ColourClustering,
        aggregate,
        evaluate_files,
        evaluate_instances,
        key_metrics,
    )

    out_dir = Path(out_dir)
    if data.get("pred") is not None:
        per = {}
        for gt, pred in zip(paths, data["pred"], strict=True):
            per[Path(gt).stem] = evaluate_files(
                gt, pred, split_file=data.get("split_file"), labeling=data.get("labeling")
            )
        keys = [k for k, v in next(iter(per.values()))["summary"].items() if _is_number(v)]
        ds = xr.Dataset(
            {k: ("sample", [float(r["summary"][k]) for r in per.values()]) for k in keys},
            coords={"sample": list(per)},
        )
        write_netcdf_atomic(ds, out_dir / "results.nc")
        return None, {"scores": {"per_sample": per}}, ["results.nc"]
    est = ColourClustering(**params)
    files, per, scored = [], {}, []
    for p in map(Path, paths):
        inputs = read_inputs([p], data)
        est.fit(inputs["raw"].values)
        ds, _ = results(est, inputs)
        sample = read_fisbe(p, split_file=data.get("split_file"))
        if "gt" in sample:
            res = evaluate_instances(sample["gt"].values, ds["instances"].values)
            scored.append(res)
            per[p.stem] = key_metrics(res)
        write_netcdf_atomic(netcdf_safe(ds), out_dir / f"{p.stem}.nc")
        files.append(f"{p.stem}.nc")
    scores: dict[str, Any] = {"per_sample": per}
    if scored:
        scores["combined"] = aggregate(scored)["summary"]["combined"]
    return est, {"scores": scores}, files


def _is_number(v) -> bool:
    return isinstance(v, int | float | np.number) and not isinstance(v, bool)
