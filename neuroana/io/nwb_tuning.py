"""Stimulus tuning tables (one row per session, neuron, stimulus and ensemble) as a DataArray."""

from __future__ import annotations

import numpy as np
import xarray as xr

from neuroana.io.errors import NWBError
from neuroana.io.nwb_file import PathLike, file_label, open_h5, read_table, select, typed

__all__ = ["read_tuning"]

_COLUMNS = ("session", "adaptor_probability", "neuron", "stimulus", "ensemble", "response")


def read_tuning(path: PathLike, name: str | None = None) -> xr.DataArray:
    """Read a tuning table into a ``("session", "neuron", "stimulus", "ensemble")`` DataArray.

    The table is a ``DynamicTable`` with columns ``session``, ``adaptor_probability``,
    ``neuron`` (preferred orientation), ``stimulus`` (orientation), ``ensemble`` and
    ``response``, one row per combination, in any order (the layout
    :func:`~neuroana.io.write_session_nwb` writes, Benucci et al. 2013's data in long form).

    Parameters
    ----------
    path : str or os.PathLike
        NWB file.
    name : str, optional
        Table name or HDF5 path; default the only table with those columns.

    Returns
    -------
    xarray.DataArray
        Named ``response``, coordinate ``adaptor_probability`` on ``session``.

    Raises
    ------
    NWBError
        No such table, several candidates and no ``name``, a missing or duplicated combination, or
        sessions with more than one ``adaptor_probability``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from neuroana.datasets import make_session
    >>> from neuroana.io import write_session_nwb
    >>> s = make_session(random_state=1, duration=5.0, n_units=3, n_rois=4, n_tuning_sessions=2)
    >>> p = write_session_nwb(s, pathlib.Path(tempfile.mkdtemp()) / "s.nwb")
    >>> da = read_tuning(p)
    >>> da.dims, bool((da == s.tuning).all())
    (('session', 'neuron', 'stimulus', 'ensemble'), True)
    """
    label = file_label(path)
    with open_h5(path) as f:
        tables = [t for t in typed(f, ("DynamicTable",)) if all(c in f[t] for c in _COLUMNS)]
        if not tables:
            raise NWBError(
                f"{label}: no tuning table (a DynamicTable with columns {list(_COLUMNS)})"
            )
        chosen = select(tables, name, "tuning table", label)
        if len(chosen) != 1:
            names = ", ".join(chosen)
            raise NWBError(f"{label}: several tuning tables ({names}); pass name=")
        df = read_table(f[chosen[0]], label)
    df["ensemble"] = [e.decode() if isinstance(e, bytes) else str(e) for e in df["ensemble"]]
    keys = ["session", "neuron", "stimulus", "ensemble"]
    if df.duplicated(keys).any():
        raise NWBError(f"{label}: tuning table has repeated (session, neuron, stimulus, ensemble)")
    ap = df.groupby("session")["adaptor_probability"].nunique()
    if (ap > 1).any():
        raise NWBError(
            f"{label}: sessions {ap[ap > 1].index.tolist()} have several adaptor_probability"
        )
    series = df.set_index(keys)["response"].astype(np.float64)
    da = xr.DataArray.from_series(series)
    if da.isnull().any():
        raise NWBError(
            f"{label}: tuning table misses {int(da.isnull().sum())} (session, neuron, stimulus, "
            "ensemble) combinations; expected a full grid"
        )
    order = [e for e in ("uniform", "biased") if e in da["ensemble"].values]
    order += [e for e in da["ensemble"].values if e not in order]
    da = da.sel(ensemble=order)
    probs = df.groupby("session")["adaptor_probability"].first()
    return da.assign_coords(
        adaptor_probability=("session", probs.loc[da["session"].values].to_numpy(np.float64))
    ).rename("response")
