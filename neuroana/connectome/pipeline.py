"""NWB ROI traces -> :class:`~neuroana.connectome.DynamicConnectome` input, and a fitted model ->
Dataset + summary (the contract of :mod:`neuroana.analysis`). Each input file is one animal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["DATA_KEYS", "read_inputs", "results"]

#: ``data:`` options of a run configuration -> required?
DATA_KEYS: dict[str, bool] = {"name": False, "drop_constant": False}


def read_inputs(paths: Sequence[Path], data: Mapping[str, Any]) -> dict[str, Any]:
    """Read each file's ROI traces: ``{"traces": DataArray}`` for one file, or a dict of animals
    (file stem -> traces) for several.

    ``data["name"]`` picks the RoiResponseSeries (default the only one); ``data["drop_constant"]``
    drops ROIs whose trace never changes.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from neuroana.datasets import make_session
    >>> from neuroana.io import write_session_nwb
    >>> p = write_session_nwb(make_session(random_state=0, duration=20.0, n_rois=5),
    ...                       pathlib.Path(tempfile.mkdtemp()) / "s.nwb")
    >>> read_inputs([p], {})["traces"].sizes["roi"]
    5
    """
    from neuroana.io import read_roi_traces

    animals = {}
    for p in map(Path, paths):
        tr = read_roi_traces(p, data.get("name"))
        if data.get("drop_constant"):
            std = tr.std("time").values
            keep = std > 1e-12 * max(1.0, float(np.abs(tr).max()))
            tr = tr.isel(roi=np.flatnonzero(keep))
        key = p.stem if p.stem not in animals else str(p)
        animals[key] = tr
    return {"traces": next(iter(animals.values())) if len(animals) == 1 else animals}


def results(estimator, inputs: Mapping[str, Any]) -> tuple[xr.Dataset, dict[str, Any]]:
    """The affinities, NTF factors and communities; rank, reconstruction error, communities."""
    from neuroana.io.fitted import fitted_dataset

    ds, scalars = fitted_dataset(estimator)
    scores = {
        "n_components": int(estimator.ntf_.n_components),
        "reconstruction_error": float(estimator.ntf_.reconstruction_error_),
        "n_communities": np.asarray(estimator.result_["n_communities"]).tolist(),
    }
    return ds, {"fitted": scalars, "scores": scores}
