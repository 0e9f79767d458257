"""Interval tables (epochs, trials, any TimeIntervals) as pandas DataFrames."""

from __future__ import annotations

import numpy as np
import pandas as pd

from neuroana.io.errors import NWBError
from neuroana.io.nwb_file import PathLike, file_label, open_h5, read_table, typed


def _interval_tables(f) -> list[str]:
    return typed(f, ("TimeIntervals",))


def _read_intervals(f, name: str, label: str) -> pd.DataFrame:
    tables = _interval_tables(f)
    key = name.strip("/")
    wanted = [t for t in tables if t.strip("/") == key or t.rsplit("/", 1)[-1] == key]
    if not wanted:
        names = ", ".join(t.rsplit("/", 1)[-1] for t in tables) or "none"
        raise NWBError(f"{label}: no interval table named {name!r}; interval tables: {names}")
    df = read_table(f[wanted[0]], label)
    for col in ("start_time", "stop_time"):
        if col not in df:
            raise NWBError(f"{label}: interval table {wanted[0]} has no {col} column")
        df[col] = df[col].astype(np.float64)
    order = ["start_time", "stop_time"] + [
        c for c in df.columns if c not in ("start_time", "stop_time")
    ]
    return df[order]


def read_intervals(path: PathLike, name: str = "epochs") -> pd.DataFrame:
    """Read an NWB interval table (``epochs``, ``trials``, any ``TimeIntervals``).

    Parameters
    ----------
    path : str or os.PathLike
        NWB file (local path, or an ``http(s)://`` / ``s3://`` URL with the ``stream`` extra).
    name : str
        Table name (``"epochs"``, ``"trials"``, ``"sleep_ripples"``...) or its full HDF5 path.

    Returns
    -------
    pandas.DataFrame
        One row per interval, indexed by the table's ``id``, with ``start_time`` and ``stop_time``
        (float64 seconds) first, then the table's other columns in file order. Ragged columns
        such as ``tags`` hold one list per row; object references hold the target's name.

    Raises
    ------
    NWBError
        The file cannot be read, or has no interval table ``name`` (the message lists those it has).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from neuroana.datasets import make_session
    >>> from neuroana.io import write_session_nwb
    >>> s = make_session(random_state=1, duration=5.0, n_units=3, n_rois=4)
    >>> path = write_session_nwb(s, pathlib.Path(tempfile.mkdtemp()) / "s.nwb")
    >>> from neuroana.io import read_intervals
    >>> df = read_intervals(path, "epochs")
    >>> df["start_time"].tolist(), df["stop_time"].tolist(), df["tags"].tolist()
    ([0.0, 3.75], [3.75, 5.0], [['wake'], ['sleep']])
    """
    label = file_label(path)
    with open_h5(path) as f:
        return _read_intervals(f, name, label)


def resolve_interval(f, interval, label: str) -> tuple[float, float]:
    """``(start, stop)`` of one row of an interval table, chosen by tag or by row position."""
    if not (isinstance(interval, tuple | list) and len(interval) == 2):
        raise NWBError(
            f"{label}: interval={interval!r}; expected (table_name, tag or row index), "
            "e.g. ('epochs', 'wake')"
        )
    table, which = interval
    df = _read_intervals(f, str(table), label)
    if isinstance(which, bool) or not isinstance(which, str | int | np.integer):
        raise NWBError(
            f"{label}: interval row {which!r}; expected a tag (str) or a row index (int)"
        )
    if isinstance(which, str):
        if "tags" not in df:
            raise NWBError(f"{label}: interval table {table!r} has no tags to match {which!r}")
        hits = [i for i, tags in enumerate(df["tags"]) if which in tags]
        if len(hits) != 1:
            have = sorted({t for tags in df["tags"] for t in tags})
            problem = "no row is" if not hits else f"{len(hits)} rows (positions {hits}) are"
            raise NWBError(
                f"{label}: {problem} tagged {which!r} in interval table {table!r}; "
                f"tags present: {have[:20]}"
                + (" ..." if len(have) > 20 else "")
                + "; pass a row index instead"
            )
        row = df.iloc[hits[0]]
    else:
        if not -len(df) <= int(which) < len(df):
            raise NWBError(
                f"{label}: row {which} out of range for interval table {table!r} ({len(df)} rows)"
            )
        row = df.iloc[int(which)]
    return float(row["start_time"]), float(row["stop_time"])
