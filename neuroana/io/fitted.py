"""A fitted estimator's xarray state as one NetCDF-safe Dataset (used by every analysis pipeline)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["fitted_dataset", "merge_named", "netcdf_safe"]


def fitted_dataset(estimator) -> tuple[xr.Dataset, dict[str, Any]]:
    """The estimator's fitted xarray attributes as one Dataset, and its fitted scalars.

    A fitted DataArray ``weights_`` becomes the variable ``weights``; a fitted Dataset ``result_``
    contributes its variables (those of ``history_`` prefixed ``history_``). An array whose dims
    clash with earlier ones (same name, other length or coordinates) gets its dims prefixed with
    its attribute name (see :func:`merge_named`).

    Examples
    --------
    >>> from neuroana.hmmglm import HMMGLM
    >>> m = HMMGLM.from_params([[[0.5]], [[-0.5]]], [0.0], [[0.9, 0.1], [0.1, 0.9]])
    >>> ds, scalars = fitted_dataset(m)
    >>> sorted(ds.data_vars)[:3]
    ['adjacency', 'bias', 'coupling']
    """
    ds = xr.Dataset()
    scalars: dict[str, Any] = {}
    for attr in sorted(vars(estimator)):
        if not attr.endswith("_") or attr.startswith("_"):
            continue
        value = getattr(estimator, attr)
        name = attr[:-1]
        if isinstance(value, bool | int | float | str | np.number | np.bool_):
            scalars[name] = value.item() if isinstance(value, np.generic) else value
            continue
        if isinstance(value, xr.DataArray):
            parts = xr.Dataset({name: value.rename(None)})
        elif isinstance(value, xr.Dataset):
            parts = value
            if name == "history":
                parts = value.rename({v: f"history_{v}" for v in value.data_vars})
        else:
            continue
        ds = merge_named(ds, parts, name)
    return ds, scalars


def merge_named(ds: xr.Dataset, part: xr.Dataset | xr.DataArray, name: str) -> xr.Dataset:
    """Merge ``part`` into ``ds``; on a dim clash, ``part``'s dims are prefixed with ``name``.

    Variables of ``part`` already in ``ds`` are dropped (the first one wins).

    Examples
    --------
    >>> import xarray as xr
    >>> a = xr.Dataset({"w": ("unit", [1.0, 2.0])})
    >>> b = xr.DataArray([1.0, 2.0, 3.0], dims="unit")
    >>> merge_named(a, b, "rate")["rate"].dims
    ('rate_unit',)
    """
    if isinstance(part, xr.DataArray):
        part = xr.Dataset({name: part.rename(None)})
    part = part.drop_vars([v for v in part.data_vars if v in ds.data_vars])
    try:
        return xr.merge([ds, part], compat="no_conflicts", join="exact", combine_attrs="drop")
    except (ValueError, xr.MergeError):
        renamed = part.rename({d: f"{name}_{d}" for d in part.dims})
        return xr.merge([ds, renamed], compat="no_conflicts", join="exact", combine_attrs="drop")


def _netcdf_attr(v):
    if isinstance(v, bool | np.bool_):
        return int(v)
    if isinstance(v, str | int | float | np.number):
        return v
    if isinstance(v, list | tuple | np.ndarray):
        a = np.asarray(v)
        if a.dtype.kind in "iuf" and a.ndim == 1:
            return a
    from neuroana.io.results import to_jsonable

    return json.dumps(to_jsonable(v), default=str)


def netcdf_safe(ds: xr.Dataset) -> xr.Dataset:
    """A copy whose attributes NetCDF can store (bools as ints, the rest as JSON text; ``None`` dropped).

    Examples
    --------
    >>> import xarray as xr
    >>> netcdf_safe(xr.Dataset(attrs={"ok": True, "cfg": {"a": 1}, "x": None})).attrs
    {'ok': 1, 'cfg': '{"a": 1}'}
    """
    ds = ds.copy()
    for obj in [ds, *ds.variables.values()]:
        obj.attrs = {k: _netcdf_attr(v) for k, v in obj.attrs.items() if v is not None}
    return ds
