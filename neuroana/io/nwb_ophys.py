"""Optical physiology: ROI traces ``(time, roi)`` and ROI masks ``(roi, y, x)``."""

from __future__ import annotations

import numpy as np
import xarray as xr

from neuroana.io.errors import NWBError
from neuroana.io.nwb_file import (
    PathLike,
    _column_values,
    attr_str,
    data_scaling,
    file_label,
    open_h5,
    scaled,
    select,
    series_times,
    trace_orientation,
    typed,
)

# when several series match and no name is given, the first of these basenames wins
_DEFAULT_TRACES = ("DfOverF", "Fluorescence", "RoiResponseSeries")


def _roi_table(series, label: str):
    """``(roi ids, table group)`` for the ``rois`` region of a RoiResponseSeries."""
    if "rois" not in series:
        raise NWBError(f"{label}: {series.name} has no rois region")
    rois = series["rois"]
    idx = np.asarray(rois[()], dtype=np.int64)
    table = series.file[rois.attrs["table"]] if "table" in rois.attrs else None
    if table is not None and "id" in table:
        ids = np.asarray(table["id"][()])[idx]
    else:
        ids = idx
    return ids, table


def _pick_series(f, name: str | None, label: str) -> str:
    paths = typed(f, ("RoiResponseSeries",), under=("/processing", "/acquisition"))
    found = select(paths, name, "RoiResponseSeries", label)
    if len(found) == 1:
        return found[0]
    if name is None:
        for base in _DEFAULT_TRACES:
            hits = [p for p in found if p.rsplit("/", 1)[-1] == base]
            if len(hits) == 1:
                return hits[0]
    raise NWBError(
        f"{label}: {len(found)} RoiResponseSeries match"
        + (f" {name!r}" if name else "")
        + "; pass name= one of: "
        + ", ".join(found)
    )


def _roi_labels(table, idx: np.ndarray, column: str, label: str) -> np.ndarray:
    """The ``column`` of the ROI table for the rows ``idx``; unique and present, else NWBError."""
    if table is None:
        raise NWBError(f"{label}: the series' rois region names no ROI table; roi_label={column!r}")
    cols = [c.decode() if isinstance(c, bytes) else str(c) for c in table.attrs.get("colnames", [])]
    if column not in table or f"{column}_index" in table:
        raise NWBError(
            f"{label}: ROI table {table.name} has no scalar column {column!r}; "
            f"columns: {', '.join(cols) or 'none'}"
        )
    values = np.asarray(_column_values(table[column]))
    if values.ndim != 1 or values.size != np.asarray(table["id"]).size:
        raise NWBError(f"{label}: column {table.name}/{column} is not one value per ROI")
    labels = values[idx]
    uniq, counts = np.unique(labels.astype(str), return_counts=True)
    if (counts > 1).any():
        raise NWBError(
            f"{label}: roi_label column {column!r} repeats {uniq[counts > 1][:5].tolist()} "
            "within the file; expected one ROI per label"
        )
    return labels


def read_roi_traces(
    path: PathLike, name: str | None = None, *, roi_label: str | None = None
) -> xr.DataArray:
    """Read a RoiResponseSeries (in a Fluorescence or DfOverF container) as ``(time, roi)``.

    Orientation is checked against the ROI table: a series stored ROI-first ``(roi, time)``
    (suite2p writes it so, against the NWB rule) is transposed, and ``attrs["stored_orientation"]``
    says which layout the file had.

    Parameters
    ----------
    path : str or os.PathLike
        NWB file (or an ``http(s)://`` / ``s3://`` URL).
    name : str, optional
        The series: its name (``"Neuropil"``), ``"container/series"``, or full HDF5 path. Default:
        the only series, else the one named ``DfOverF``, ``Fluorescence`` or
        ``RoiResponseSeries`` (first that is unique); otherwise an error lists the choices.
    roi_label : str, optional
        A column of the ROI table (e.g. ``"neuron_label"``) that names each ROI's identity. It
        becomes the ``roi`` coordinate (the table ids move to the ``roi_id`` coordinate), so
        recordings of several animals align by identity rather than by table id.

    Returns
    -------
    xarray.DataArray
        Values in the series' unit (``data * conversion + offset``; the stored dtype when no
        scaling applies), dims ``("time", "roi")``, coords ``time`` (s, from timestamps or
        starting_time + i / rate) and ``roi`` (the ROI table's ids; with ``roi_label``
        that column, the ids moving to ``roi_id``); attrs ``unit``, ``source_file``, ``nwb_path``,
        ``stored_orientation``, ``roi_label``.

    Raises
    ------
    NWBError
        No such series (the message lists those present), or its shape matches neither the ROI
        count nor the time axis; a ``roi_label`` column that is absent (the message lists the
        columns) or repeats a label.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from neuroana.datasets import make_session
    >>> from neuroana.io import write_session_nwb
    >>> s = make_session(random_state=1, duration=5.0, n_units=3, n_rois=4)
    >>> path = write_session_nwb(s, pathlib.Path(tempfile.mkdtemp()) / "s.nwb")
    >>> from neuroana.io import read_roi_traces
    >>> read_roi_traces(path).dims
    ('time', 'roi')
    """
    label = file_label(path)
    with open_h5(path) as f:
        spath = _pick_series(f, name, label)
        g = f[spath]
        ds = g["data"]
        ids, table = _roi_table(g, label)
        labels = None
        if roi_label is not None:
            idx = np.asarray(g["rois"][()], dtype=np.int64)
            labels = _roi_labels(table, idx, roi_label, label)
        n_rois = ids.size
        n_ts = g["timestamps"].shape[0] if "timestamps" in g else None
        shape = ds.shape
        if len(shape) == 1 and n_rois == 1:
            values, roi_first = ds[()][:, None], False
        elif len(shape) == 2 and n_rois in shape:
            try:
                roi_first = trace_orientation(shape, n_rois, n_ts)
            except ValueError:
                raise NWBError(
                    f"{label}: {spath}/data has shape {shape}; cannot tell time from ROIs "
                    f"({n_rois} ROIs, {n_ts} timestamps)"
                ) from None
            values = ds[()].T if roi_first else ds[()]
        else:
            raise NWBError(
                f"{label}: {spath}/data has shape {shape}, which does not match its {n_rois} "
                "ROIs; expected (time, roi)"
            )
        values = np.ascontiguousarray(scaled(values, *data_scaling(ds)))
        times = series_times(g, values.shape[0], label)
        unit = attr_str(ds.attrs, "unit", "")
    coords = {"time": times, "roi": ids}
    if labels is not None:
        coords = {"time": times, "roi": labels, "roi_id": ("roi", ids)}
    return xr.DataArray(
        values,
        dims=("time", "roi"),
        coords=coords,
        name=spath.rsplit("/", 1)[-1],
        attrs={
            "roi_label": roi_label or "",
            "unit": unit,
            "source_file": label,
            "nwb_path": spath,
            "stored_orientation": "(roi, time)" if roi_first else "(time, roi)",
        },
    )


def _plane_shape(f, seg, label: str) -> tuple[int, int] | None:
    """``(height, width)`` from an imaging series on the same plane that stores ``dimension``."""
    if "imaging_plane" not in seg:
        return None
    plane = seg["imaging_plane"]  # a link: compare objects, not the paths they were reached by
    for p in typed(
        f, ("TwoPhotonSeries", "OnePhotonSeries"), under=("/acquisition", "/processing")
    ):
        g = f[p]
        if "imaging_plane" in g and g["imaging_plane"] == plane and "dimension" in g:
            dim = np.asarray(g["dimension"][()]).ravel()
            if dim.size >= 2:
                return int(dim[1]), int(dim[0])  # NWB dimension = [x, y]
    return None


def read_roi_masks(
    path: PathLike,
    name: str | None = None,
    *,
    shape: tuple[int, int] | None = None,
    order: str = "C",
) -> xr.DataArray:
    """Read the ROI masks of a PlaneSegmentation as a dense ``(roi, y, x)`` array.

    - 3-D ``image_mask`` ``(roi, a, b)`` is returned as stored, read as ``(roi, y, x)``.
    - Flattened ``image_mask`` (``(roi, n)`` or ``(roi, 1, n)``, as MATLAB writers leave it):
      the frame shape is not in the file, so it is never guessed. Pass ``shape=(height, width)``
      (and ``order="F"`` for column-major flattening); otherwise :class:`NWBError` reports the
      stored shape.
    - ``pixel_mask`` (x, y, weight per pixel) is made dense; the frame is ``shape`` if given, else
      ``dimension`` of an imaging series on the same plane, else ``(max y + 1, max x + 1)``.

    Parameters
    ----------
    path : str or os.PathLike
        NWB file (or an ``http(s)://`` / ``s3://`` URL).
    name : str, optional
        PlaneSegmentation name or path; default the only one.
    shape : (int, int), optional
        Frame ``(height, width)`` for flattened image masks or pixel masks.
    order : {"C", "F"}
        How a flattened image mask is unravelled to ``shape``.

    Returns
    -------
    xarray.DataArray
        dims ``("roi", "y", "x")``, coord ``roi`` (the table's ids); attrs ``source_file``,
        ``nwb_path``, ``mask_kind`` (``image_mask`` or ``pixel_mask``), ``stored_shape``.

    Raises
    ------
    NWBError
        No PlaneSegmentation, a flattened mask without a matching ``shape``, pixels outside
        ``shape``.

    Examples
    --------
    >>> from neuroana.io import read_roi_masks  # doctest: +SKIP
    >>> read_roi_masks("pynapple_inscopix-cnmfe_A0634-210127.nwb").shape  # doctest: +SKIP
    (10, 184, 154)
    """
    label = file_label(path)
    if order not in ("C", "F"):
        raise NWBError(f"{label}: order={order!r}; expected 'C' or 'F'")
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2 or min(shape) < 1:
            raise NWBError(f"{label}: shape={shape}; expected (height, width), both positive")
    with open_h5(path) as f:
        paths = select(typed(f, ("PlaneSegmentation",)), name, "PlaneSegmentation", label)
        if len(paths) > 1:
            raise NWBError(
                f"{label}: {len(paths)} PlaneSegmentations; pass name= one of: " + ", ".join(paths)
            )
        seg = f[paths[0]]
        ids = np.asarray(seg["id"][()])
        if "image_mask" in seg:
            ds = seg["image_mask"]
            stored = tuple(ds.shape)
            kind = "image_mask"
            masks = _image_masks(ds[()], stored, shape, order, f"{label}: {ds.name}")
        elif "pixel_mask" in seg:
            kind = "pixel_mask"
            pix = seg["pixel_mask"][()]
            stored = tuple(pix.shape)
            ends = np.asarray(seg["pixel_mask_index"][()], dtype=np.int64)
            frame = shape or _plane_shape(f, seg, label)
            masks = _pixel_masks(pix, ends, ids.size, frame, f"{label}: {seg.name}/pixel_mask")
        else:
            raise NWBError(f"{label}: {seg.name} has neither image_mask nor pixel_mask")
    if masks.shape[0] != ids.size:
        raise NWBError(f"{label}: {seg.name} has {ids.size} ids but {masks.shape[0]} masks")
    return xr.DataArray(
        masks,
        dims=("roi", "y", "x"),
        coords={"roi": ids},
        name="roi_masks",
        attrs={
            "source_file": label,
            "nwb_path": paths[0],
            "mask_kind": kind,
            "stored_shape": list(stored),
        },
    )


def _image_masks(data, stored, shape, order, where):
    if data.ndim == 3 and stored[1] > 1 and shape is None:
        return data
    flat_n = int(np.prod(stored[1:])) if data.ndim >= 2 else 0
    flattened = data.ndim == 2 or (data.ndim == 3 and stored[1] == 1)
    if not flattened and data.ndim != 3:
        raise NWBError(f"{where} has shape {stored}; expected (roi, y, x) or a flattened (roi, n)")
    if shape is None:
        raise NWBError(
            f"{where} is stored flattened with shape {stored}: the frame height x width is not "
            f"in the file and is not guessed; pass shape=(height, width) with height*width = {flat_n}"
        )
    if shape[0] * shape[1] != flat_n:
        raise NWBError(
            f"{where} has {flat_n} pixels per ROI (stored shape {stored}); "
            f"shape={shape} holds {shape[0] * shape[1]}"
        )
    return data.reshape((stored[0], *shape), order=order)


def _pixel_masks(pix, ends, n_rois, frame, where):
    if ends.size != n_rois:
        raise NWBError(f"{where}: index has {ends.size} entries for {n_rois} ROIs")
    x = pix["x"].astype(np.int64)
    y = pix["y"].astype(np.int64)
    w = pix["weight"] if "weight" in pix.dtype.names else np.ones(x.size, np.float32)
    if frame is None:
        frame = (int(y.max()) + 1 if y.size else 0, int(x.max()) + 1 if x.size else 0)
    h, wd = frame
    if y.size and (y.min() < 0 or x.min() < 0 or y.max() >= h or x.max() >= wd):
        raise NWBError(
            f"{where}: pixels span y 0..{int(y.max())}, x 0..{int(x.max())}, outside the "
            f"frame {frame}; pass shape=(height, width)"
        )
    roi = np.repeat(np.arange(n_rois), np.diff(np.concatenate([[0], ends])))
    out = np.zeros((n_rois, h, wd), dtype=np.result_type(w.dtype, np.float32))
    np.add.at(out, (roi, y, x), w)
    return out
