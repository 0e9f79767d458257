"""Tuning data -> :class:`~neuroana.adaptation.GainAdaptationModel` input, and a fitted model ->
Dataset + summary (the contract of :mod:`neuroana.analysis`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import xarray as xr

__all__ = ["DATA_KEYS", "read_inputs", "results"]

#: ``data:`` options of a run configuration -> required?
DATA_KEYS: dict[str, bool] = {"adaptor_probability": False, "name": False}


def read_inputs(paths: Sequence[Path], data: Mapping[str, Any]) -> dict[str, Any]:
    """Read the Benucci-layout tuning data: ``{"data": DataArray}``.

    One input: the Benucci ``.mat`` file (``data["adaptor_probability"]``: per-session list), a
    netCDF file holding a Benucci-layout DataArray, or an NWB file holding the tuning table
    (``data["name"]``: its name; default the only one, see :func:`neuroana.io.nwb_tuning.read_tuning`).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from neuroana.datasets.adaptation_sim import make_benucci_like
    >>> da, _ = make_benucci_like(n_sessions=2, random_state=0)
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.nc"
    >>> da.to_netcdf(p)
    >>> read_inputs([p], {})["data"].dims == da.dims
    True
    """
    if len(paths) != 1:
        raise ValueError(f"inputs: adaptation takes exactly one input file; got {len(paths)}")
    p = Path(paths[0])
    if p.suffix == ".mat":
        from neuroana.io.benucci import read_benucci

        ap = data.get("adaptor_probability")
        return {"data": read_benucci(p, adaptor_probability=None if ap is None else tuple(ap))}
    if p.suffix == ".nwb":
        from neuroana.io.nwb_tuning import read_tuning

        return {"data": read_tuning(p, data.get("name"))}
    with xr.open_dataarray(p) as da:
        return {"data": da.load()}


def results(estimator, inputs: Mapping[str, Any]) -> tuple[xr.Dataset, dict[str, Any]]:
    """Fitted parameters, the predicted and measured responses, and the R^2 scores."""
    from neuroana.adaptation import r2_scores
    from neuroana.io.fitted import fitted_dataset, merge_named

    X = inputs["data"]
    ds, scalars = fitted_dataset(estimator)
    prediction = estimator.predict(X)
    ds = merge_named(ds, prediction, "prediction")
    ds = merge_named(ds, X.rename(None), "response")
    return ds, {"fitted": scalars, "scores": dict(r2_scores(prediction, X))}
