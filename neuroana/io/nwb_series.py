"""Behaviour and other TimeSeries (SpatialSeries, TimeSeries, containers of them) as ``(time, feature)``."""

from __future__ import annotations

import numpy as np
import xarray as xr

from neuroana.io.errors import NWBError
from neuroana.io.nwb_file import (
    PathLike,
    attr_str,
    data_scaling,
    file_label,
    open_h5,
    scaled,
    select,
    series_times,
    walk,
)

_SERIES_ROOTS = ("/acquisition", "/processing", "/stimulus")


def is_series(obj) -> bool:
    """A group laid out as a TimeSeries: ``data`` plus ``timestamps`` or ``starting_time``."""
    return (
        hasattr(obj, "keys") and "data" in obj and ("timestamps" in obj or "starting_time" in obj)
    )


def find_series(f) -> list[str]:
    """Paths of every TimeSeries-like group under acquisition, processing and stimulus."""
    return [p for p, obj in walk(f) if p.startswith(_SERIES_ROOTS) and is_series(obj)]


def _containers(f, series: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in series:
        parent = p.rsplit("/", 1)[0]
        if "neurodata_type" in f[parent].attrs and not is_series(f[parent]):
            out.setdefault(parent, []).append(p)
    return out


def _feature_labels(g, base: str, k: int) -> list:
    if k == 1:
        return [base]
    if attr_str(g.attrs, "neurodata_type") == "SpatialSeries" and k <= 3:
        return ["x", "y", "z"][:k]
    return list(range(k))


def _read_one(g, label: str) -> tuple[np.ndarray, np.ndarray, list]:
    ds = g["data"]
    base = g.name.rsplit("/", 1)[-1]
    if ds.ndim not in (1, 2):
        raise NWBError(
            f"{label}: {g.name}/data has shape {ds.shape}; read_behavior handles 1-D or 2-D "
            "series (time, feature) — use open_nwb for image series"
        )
    values = ds[()]
    values = values[:, None] if values.ndim == 1 else values
    values = scaled(values, *data_scaling(ds))
    times = series_times(g, values.shape[0], label)
    return values, times, _feature_labels(g, base, values.shape[1])


def read_behavior(path: PathLike, name: str) -> xr.DataArray:
    """Read a behavioural TimeSeries or SpatialSeries, or a container of them, as ``(time, feature)``.

    Parameters
    ----------
    path : str or os.PathLike
        NWB file (or an ``http(s)://`` / ``s3://`` URL).
    name : str
        A series anywhere in ``acquisition``, ``processing`` or ``stimulus`` (its name, trailing
        path components such as ``"Position/x"``, or full path), or a container (``"Position"``,
        ``"CompassDirection"``) whose series share one time base: they become the features.

    Returns
    -------
    xarray.DataArray
        Values in the series' unit (``data * conversion + offset``), dims ``("time", "feature")``;
        coords ``time`` (s) and ``feature`` (series name for 1-D data, ``x``/``y``/``z`` for a 2-D
        SpatialSeries, column numbers otherwise; a container's series names); attrs ``unit``,
        ``source_file``, ``nwb_path``.

    Raises
    ------
    NWBError
        No series or container ``name`` (the message lists the series present), several match, or
        a container's series do not share their times.

    Examples
    --------
    >>> from neuroana.io import read_behavior  # doctest: +SKIP
    >>> read_behavior("A2929-200711.nwb", "Position").sizes  # doctest: +SKIP
    Frozen({'time': 63527, 'feature': 3})
    """
    label = file_label(path)
    with open_h5(path) as f:
        series = find_series(f)
        try:
            found = select(series, name, "TimeSeries", label)
        except NWBError:
            containers = _containers(f, series)
            key = name.strip("/")
            hits = [c for c in containers if c.strip("/") == key or c.endswith("/" + key)]
            if len(hits) != 1:
                raise NWBError(
                    f"{label}: no TimeSeries or container named {name!r}; series present: "
                    + (", ".join(series) or "none")
                ) from None
            return _read_container(f, hits[0], containers[hits[0]], label)
        if len(found) > 1:
            raise NWBError(
                f"{label}: {len(found)} series match {name!r}; use a longer path, one of: "
                + ", ".join(found)
            )
        g = f[found[0]]
        values, times, features = _read_one(g, label)
        unit = attr_str(g["data"].attrs, "unit", "")
    return xr.DataArray(
        values,
        dims=("time", "feature"),
        coords={"time": times, "feature": features},
        name=found[0].rsplit("/", 1)[-1],
        attrs={"unit": unit, "source_file": label, "nwb_path": found[0]},
    )


def _read_container(f, cpath: str, members: list[str], label: str) -> xr.DataArray:
    parts, features, units = [], [], []
    times = None
    for p in sorted(members):
        values, t, labels = _read_one(f[p], label)
        base = p.rsplit("/", 1)[-1]
        if times is None:
            times = t
        elif t.shape != times.shape or not np.array_equal(t, times):
            raise NWBError(
                f"{label}: the series in {cpath} do not share their times ({p} differs); "
                "read them one at a time"
            )
        parts.append(values)
        features += [base] if len(labels) == 1 else [f"{base}_{c}" for c in labels]
        units.append(attr_str(f[p]["data"].attrs, "unit", ""))
    unit = units[0] if len(set(units)) == 1 else ", ".join(units)
    return xr.DataArray(
        np.concatenate(parts, axis=1),
        dims=("time", "feature"),
        coords={"time": times, "feature": features},
        name=cpath.rsplit("/", 1)[-1],
        attrs={"unit": unit, "source_file": label, "nwb_path": cpath},
    )
