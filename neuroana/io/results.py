"""Atomic result writers: netCDF, Zarr and JSON written to a temporary name, then renamed.

An interrupted run leaves either the previous file or the complete new one, never half a file. The
temporary lives next to the target (same file system, so the rename is atomic) and is removed when
writing fails.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from neuroana.io.atomic import atomic_dir, atomic_path

PathLike = str | os.PathLike

__all__ = ["to_jsonable", "write_json_atomic", "write_netcdf_atomic", "write_zarr_atomic"]


def _as_dataset(ds: xr.Dataset | xr.DataArray, what: str) -> xr.Dataset:
    if isinstance(ds, xr.DataArray):
        return ds.to_dataset(name=ds.name if ds.name is not None else "data")
    if isinstance(ds, xr.Dataset):
        return ds
    raise TypeError(f"{what} got {type(ds).__name__}; expected an xarray Dataset or DataArray")


def write_netcdf_atomic(ds: xr.Dataset | xr.DataArray, path: PathLike) -> Path:
    """Write ``ds`` to a netCDF-4 file atomically (temp file + ``os.replace``).

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        What to write (a DataArray is written as a one-variable Dataset).
    path : str or os.PathLike
        Target file; its folder must exist. An existing file is replaced only once the new one is
        complete.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib, xarray as xr
    >>> from neuroana.io import write_netcdf_atomic
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.nc"
    >>> write_netcdf_atomic(xr.Dataset({"a": ("t", [1.0, 2.0])}), out).name
    'x.nc'
    """
    ds = _as_dataset(ds, "write_netcdf_atomic")
    path = Path(path)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp)
    return path


def write_zarr_atomic(ds: xr.Dataset | xr.DataArray, path: PathLike) -> Path:
    """Write ``ds`` to a Zarr store (a folder) atomically.

    The store is written to a temporary folder next to ``path`` and renamed into place. An
    existing store is first renamed aside and deleted after the new one is in place, so ``path``
    is never a half-written store (a crash between the two renames leaves the old store under a
    ``.<name>.*.old`` name next to it).

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        What to write.
    path : str or os.PathLike
        Target folder.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib, xarray as xr
    >>> from neuroana.io import write_zarr_atomic
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.zarr"
    >>> float(xr.open_zarr(write_zarr_atomic(xr.Dataset({"a": ("t", [1.0, 2.0])}), out))["a"].sum())
    3.0
    """
    ds = _as_dataset(ds, "write_zarr_atomic")
    path = Path(path)
    with atomic_dir(path) as tmp:
        ds.to_zarr(tmp, mode="w")
    return path


def to_jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays, paths, tuples and sets turned into JSON types.

    Non-finite floats become ``None`` (JSON has no NaN).

    Examples
    --------
    >>> import numpy as np
    >>> to_jsonable({"n": np.int64(3), "x": np.array([0.5, np.nan])})
    {'n': 3, 'x': [0.5, None]}
    """
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, str) else k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, xr.DataArray):
        return to_jsonable(obj.values)
    return obj


def write_json_atomic(obj: Any, path: PathLike, *, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON atomically (numpy scalars and arrays converted, NaN as null).

    Parameters
    ----------
    obj : object
        Dicts, lists, numbers, strings, numpy scalars/arrays, paths.
    path : str or os.PathLike
        Target file; its folder must exist.
    indent : int or None
        Passed to :func:`json.dump`.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import json, tempfile, pathlib, numpy as np
    >>> from neuroana.io import write_json_atomic
    >>> out = write_json_atomic({"ap": np.float32(0.5)}, pathlib.Path(tempfile.mkdtemp()) / "r.json")
    >>> json.loads(out.read_text())
    {'ap': 0.5}
    """
    path = Path(path)
    data = to_jsonable(obj)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=indent, allow_nan=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path
