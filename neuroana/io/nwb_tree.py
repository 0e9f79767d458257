"""A first look at an NWB file: ``open_nwb`` (a lazy DataTree of dask arrays)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from neuroana.io.nwb_file import (
    PathLike,
    attr_str,
    data_scaling,
    file_label,
    open_h5,
    read_table,
    scalar,
    series_times,
    trace_orientation,
    walk,
)
from neuroana.io.nwb_lazy import lazy_array
from neuroana.io.nwb_series import find_series, is_series

_IMAGE_TYPES = ("Image", "GrayscaleImage", "RGBImage", "RGBAImage")


def _lazy(path, ds, dims, transpose=False, scale=True) -> xr.Variable:
    conv, off = data_scaling(ds) if scale else (1.0, 0.0)
    return xr.Variable(dims, lazy_array(path, ds, transpose=transpose, conversion=conv, offset=off))


def _series_node(path, g, label) -> xr.Dataset:
    ds = g["data"]
    kind = attr_str(g.attrs, "neurodata_type") or ""
    attrs = {"neurodata_type": kind, "unit": attr_str(ds.attrs, "unit", ""), "nwb_path": g.name}
    coords = {}
    transpose = False
    if kind == "RoiResponseSeries" and "rois" in g and ds.ndim == 2:
        idx = np.asarray(g["rois"][()], dtype=np.int64)
        table = g.file[g["rois"].attrs["table"]] if "table" in g["rois"].attrs else None
        ids = np.asarray(table["id"][()])[idx] if table is not None else idx
        n_ts = g["timestamps"].shape[0] if "timestamps" in g else None
        try:
            transpose = trace_orientation(ds.shape, ids.size, n_ts)
        except ValueError:
            transpose = False
        dims = ("time", "roi")
        coords["roi"] = ids
        attrs["stored_orientation"] = "(roi, time)" if transpose else "(time, roi)"
    elif ds.ndim == 1:
        dims = ("time",)
    elif ds.ndim == 2:
        dims = ("time", "feature")
    elif ds.ndim == 3:
        dims = ("time", "y", "x")
    else:
        dims = ("time", *(f"dim_{i}" for i in range(1, ds.ndim)))
    var = _lazy(path, ds, dims, transpose)
    coords["time"] = series_times(g, var.shape[0], label)
    return xr.Dataset({"data": var}, coords=coords, attrs=attrs)


def _table_node(group, label, dim, skip=()) -> xr.Dataset:
    df = read_table(group, label, skip=skip)
    data = {}
    for col in df.columns:
        values = df[col].tolist()
        if values and isinstance(values[0], list):
            if all(isinstance(v, str) for row in values for v in row):
                data[col] = (dim, np.array([",".join(row) for row in values], dtype=object))
            continue  # ragged numbers (spike times) are read with the dedicated readers
        if values and isinstance(values[0], dict):
            continue
        arr = np.asarray(values)
        if arr.dtype.kind in "biufUO":
            data[col] = ((dim, *(f"{col}_dim{i}" for i in range(1, arr.ndim))), arr)
    return xr.Dataset(data, coords={dim: df.index.to_numpy()}, attrs={"nwb_path": group.name})


def open_nwb(path: PathLike) -> xr.DataTree:
    """Open an NWB file as an :class:`xarray.DataTree`, lazily, for a first look.

    Nodes follow the HDF5 paths: every TimeSeries (``acquisition/...``, ``processing/...``) is a
    node whose ``data`` variable is a dask array read on compute only (each chunk read opens the
    file read-only and closes it again, so no handle stays open), with a ``time`` coordinate in seconds;
    RoiResponseSeries get dims ``(time, roi)`` with ROI-first storage transposed; tables (units,
    interval tables, plane segmentations) become small Datasets, with ``units/spike_times`` lazy
    and ``n_spikes`` per unit; images and 3-D image masks are lazy ``(y, x)`` / ``(roi, y, x)``.

    Parameters
    ----------
    path : str or os.PathLike
        NWB file (or an ``http(s)://`` / ``s3://`` URL).

    Returns
    -------
    xarray.DataTree
        Root attrs: ``nwb_version``, ``identifier``, ``session_description``,
        ``session_start_time``, ``source_file``.

    Raises
    ------
    NWBError
        The file is missing, not HDF5, truncated, or not NWB.

    Examples
    --------
    >>> from neuroana.io import open_nwb  # doctest: +SKIP
    >>> tree = open_nwb("pynapple_suite2p_2022_08_08.nwb")  # doctest: +SKIP
    >>> tree["processing/ophys/Fluorescence/Fluorescence"]["data"].shape  # doctest: +SKIP
    (2000, 219)
    """
    label = file_label(path)
    nodes: dict[str, xr.Dataset] = {}
    with open_h5(path) as f:
        root_attrs = {"nwb_version": attr_str(f.attrs, "nwb_version", ""), "source_file": label}
        for key in ("identifier", "session_description", "session_start_time"):
            if key in f:
                root_attrs[key] = str(scalar(f[key]))
        nodes["/"] = xr.Dataset(attrs=root_attrs)
        for spath in find_series(f):
            nodes[spath] = _series_node(path, f[spath], label)
        for p, obj in walk(f):
            kind = attr_str(obj.attrs, "neurodata_type") or ""
            if kind == "Units":
                node = _table_node(obj, label, "unit", skip=("spike_times",))
                if "spike_times" in obj and "spike_times_index" in obj:
                    ends = np.asarray(obj["spike_times_index"][()], dtype=np.int64)
                    node["n_spikes"] = ("unit", np.diff(np.concatenate([[0], ends])))
                    node["spike_times"] = _lazy(path, obj["spike_times"], ("spike",), scale=False)
                nodes[p] = node
            elif kind in ("TimeIntervals", "DynamicTable") and not p.startswith("/units"):
                nodes[p] = _table_node(obj, label, "interval" if kind == "TimeIntervals" else "row")
            elif kind == "PlaneSegmentation":
                node = _table_node(
                    obj, label, "roi", skip=("image_mask", "pixel_mask", "voxel_mask")
                )
                if (
                    "image_mask" in obj
                    and obj["image_mask"].ndim == 3
                    and obj["image_mask"].shape[1] > 1
                ):
                    node["image_mask"] = _lazy(
                        path, obj["image_mask"], ("roi", "y", "x"), scale=False
                    )
                nodes[p] = node
            elif kind in _IMAGE_TYPES and not hasattr(obj, "keys") and obj.ndim in (2, 3):
                parent, name = p.rsplit("/", 1)
                dims = ("y", "x") if obj.ndim == 2 else ("y", "x", "channel")
                node = nodes.setdefault(parent, xr.Dataset(attrs={"nwb_path": parent}))
                try:
                    node[name] = _lazy(path, obj, dims, scale=False)
                except ValueError:  # another image of this container has another frame size
                    node[name] = _lazy(path, obj, tuple(f"{name}_{d}" for d in dims), scale=False)
            elif hasattr(obj, "keys") and not is_series(obj) and p not in nodes:
                nodes[p] = xr.Dataset(attrs={"neurodata_type": kind, "nwb_path": p})
    return xr.DataTree.from_dict(nodes)
