"""``list_contents``: everything with an NWB type in a file, as a table (``neuroana info``).

Kept apart from the xarray readers, and pandas is imported only by :func:`list_contents`, so that
``neuroana info`` (which prints :func:`contents_rows`) imports only h5py and numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neuroana.io.nwb_file import PathLike, attr_str, open_h5, scalar, trace_orientation, walk

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COLUMNS", "contents_rows", "list_contents"]

#: the columns of :func:`list_contents`
COLUMNS = ("path", "neurodata_type", "shape", "description")

_COLUMN_TYPES = ("VectorData", "VectorIndex", "ElementIdentifiers", "DynamicTableRegion")


def _shape_of(obj) -> str:
    if hasattr(obj, "shape"):
        return str(tuple(obj.shape))
    if "data" in obj and hasattr(obj["data"], "shape"):
        return str(tuple(obj["data"].shape))
    if "id" in obj and "colnames" in obj.attrs:
        return f"({obj['id'].shape[0]} rows)"
    return ""


def _description(obj) -> str:
    if "description" in obj.attrs:
        return attr_str(obj.attrs, "description") or ""
    if hasattr(obj, "keys") and "description" in obj and not hasattr(obj["description"], "keys"):
        value = scalar(obj["description"])
        return value if isinstance(value, str) else str(value)
    return ""


def list_contents(path: PathLike) -> pd.DataFrame:
    """Everything with an NWB type in a file, as a readable table (what ``neuroana info`` prints).

    Table columns (``VectorData``, ``VectorIndex``...) are folded into their table's row.

    Parameters
    ----------
    path : str or os.PathLike
        NWB file (or an ``http(s)://`` / ``s3://`` URL).

    Returns
    -------
    pandas.DataFrame
        Columns ``path``, ``neurodata_type``, ``shape`` (data shape of a series, ``(n rows)`` of a
        table, empty for containers) and ``description``; one row per object, file order.

    Raises
    ------
    NWBError
        The file is missing, not HDF5, truncated, or not NWB.

    Examples
    --------
    >>> from neuroana.io import list_contents  # doctest: +SKIP
    >>> print(list_contents("session.nwb").to_string(index=False))  # doctest: +SKIP
    """
    import pandas as pd

    return pd.DataFrame(contents_rows(path), columns=list(COLUMNS))


def contents_rows(path: PathLike) -> list[dict[str, str]]:
    """The rows of :func:`list_contents` as plain dicts (keys :data:`COLUMNS`), without pandas.

    Examples
    --------
    >>> from neuroana.io import contents_rows  # doctest: +SKIP
    >>> contents_rows("session.nwb")[0]["neurodata_type"]  # doctest: +SKIP
    'NWBFile'
    """
    rows = []
    with open_h5(path) as f:
        rows.append(
            {
                "path": "/",
                "neurodata_type": attr_str(f.attrs, "neurodata_type") or "",
                "shape": "",
                "description": str(scalar(f["session_description"]))
                if "session_description" in f
                else "",
            }
        )
        for p, obj in walk(f):
            kind = attr_str(obj.attrs, "neurodata_type") or ""
            if kind in _COLUMN_TYPES:
                continue
            desc = _description(obj)
            if kind == "RoiResponseSeries" and "rois" in obj and obj["data"].ndim == 2:
                n_rois = obj["rois"].shape[0]
                n_ts = obj["timestamps"].shape[0] if "timestamps" in obj else None
                try:
                    if trace_orientation(obj["data"].shape, n_rois, n_ts):
                        desc = (
                            desc + " " if desc else ""
                        ) + "[stored (roi, time); read transposed]"
                except ValueError:
                    pass
            rows.append(
                {"path": p, "neurodata_type": kind, "shape": _shape_of(obj), "description": desc}
            )
    return rows
