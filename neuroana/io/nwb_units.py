"""Spike times from the NWB ``Units`` table, and binned spike counts as a ``(time, unit)`` DataArray."""

from __future__ import annotations

import math
import warnings

import numpy as np
import xarray as xr

from neuroana.io.errors import NWBError, NWBWarning
from neuroana.io.nwb_file import PathLike, file_label, open_h5, typed
from neuroana.io.nwb_intervals import resolve_interval
from neuroana.preprocess.binning import bin_spike_times


def _units_group(f, label: str):
    if "units" in f and "spike_times" in f["units"]:
        return f["units"]
    found = [p for p in typed(f, ("Units",)) if "spike_times" in f[p]]
    if not found:
        raise NWBError(f"{label}: no Units table with spike_times in this file")
    return f[found[0]]


def _spike_times(f, label: str) -> dict[int, np.ndarray]:
    units = _units_group(f, label)
    ids = np.asarray(units["id"][()])
    times = np.asarray(units["spike_times"][()], dtype=np.float64)
    if "spike_times_index" in units:
        ends = np.asarray(units["spike_times_index"][()], dtype=np.int64)
    elif ids.size == 1:
        ends = np.array([times.size])
    else:
        raise NWBError(f"{label}: {units.name}/spike_times has no spike_times_index")
    if ends.size != ids.size or (
        ends.size and (np.any(np.diff(ends) < 0) or ends[-1] > times.size)
    ):
        raise NWBError(
            f"{label}: {units.name}/spike_times_index ({ends.size} entries) does not split "
            f"{times.size} spike times into {ids.size} units"
        )
    out: dict[int, np.ndarray] = {}
    start = 0
    for uid, end in zip(ids.tolist(), ends.tolist(), strict=True):
        t = times[start:end]
        start = end
        if np.isnan(t).any():
            raise NWBError(
                f"{label}: unit {uid} has {int(np.isnan(t).sum())} NaN spike times; "
                "expected finite times in seconds"
            )
        if t.size > 1 and np.any(np.diff(t) < 0):
            warnings.warn(
                f"{label}: spike times of unit {uid} are not sorted; sorting them",
                NWBWarning,
                stacklevel=3,
            )
            t = np.sort(t, kind="stable")
        out[int(uid)] = t
    return out


def read_spike_times(path: PathLike) -> dict[int, np.ndarray]:
    """Read every unit's spike train.

    Parameters
    ----------
    path : str or os.PathLike
        NWB file with a ``Units`` table (or an ``http(s)://`` / ``s3://`` URL).

    Returns
    -------
    dict of int to numpy.ndarray
        Unit id (``Units.id``, not the row position) to its spike times, float64 seconds, sorted.
        Units without spikes map to an empty array. Unsorted trains are sorted with an
        :class:`~neuroana.io.NWBWarning`.

    Raises
    ------
    NWBError
        The file cannot be read, has no ``Units`` table, or a unit has NaN spike times.

    Examples
    --------
    >>> from neuroana.io import read_spike_times  # doctest: +SKIP
    >>> spikes = read_spike_times("pynapple_phy_A8604-211122.nwb")  # doctest: +SKIP
    >>> {uid: t.size for uid, t in spikes.items()}  # doctest: +SKIP
    {6: 11020, 191: 4690, 206: 5644}
    """
    label = file_label(path)
    with open_h5(path) as f:
        return _spike_times(f, label)


def read_spike_counts(
    path: PathLike,
    bin_size: float,
    *,
    start: float | None = None,
    stop: float | None = None,
    interval: tuple[str, str | int] | None = None,
) -> xr.DataArray:
    """Bin every unit's spikes into a ``(time, unit)`` count matrix.

    Bin ``k`` is the left-closed interval ``[start + k*bin_size, start + (k+1)*bin_size)``, edges
    computed as ``start + arange(n + 1) * bin_size`` in float64 and compared exactly (a spike on
    an inner edge belongs to the bin on its right).

    Parameters
    ----------
    path : str or os.PathLike
        NWB file with a ``Units`` table.
    bin_size : float
        Bin width in seconds, > 0.
    start, stop : float, optional
        Time range in seconds. ``start`` defaults to ``min(0, first spike)``; ``stop`` to just
        past the last spike. A range that is not a whole number of bins is cut to whole bins (a
        ratio within 1e-9 of an integer counts as whole). Cannot be combined with ``interval``.
    interval : (str, str or int), optional
        A row of an interval table to restrict to: ``("epochs", "wake")`` picks the one row whose
        tags contain ``"wake"``; ``("epochs", 1)`` picks row position 1.

    Returns
    -------
    xarray.DataArray
        int64 counts, dims ``("time", "unit")``; coords ``time`` (bin centres, s) and ``unit``
        (``Units.id``); attrs ``bin_size``, ``start``, ``stop`` (the last edge), ``source_file``.
        Units without spikes in the range give a zero column.

    Raises
    ------
    NWBError
        Bad ``bin_size``/range/interval, or the file cannot be read (see
        :func:`read_spike_times`).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from neuroana.datasets import make_session
    >>> from neuroana.io import write_session_nwb
    >>> s = make_session(random_state=1, duration=5.0, n_units=3, n_rois=4)
    >>> path = write_session_nwb(s, pathlib.Path(tempfile.mkdtemp()) / "s.nwb")
    >>> from neuroana.io import read_spike_counts
    >>> counts = read_spike_counts(path, 0.25, interval=("epochs", "wake"))
    >>> counts.dims, counts.shape, counts.attrs["start"], counts.attrs["stop"]
    (('time', 'unit'), (15, 3), 0.0, 3.75)
    """
    label = file_label(path)
    bin_size = float(bin_size)
    if not math.isfinite(bin_size) or bin_size <= 0:
        raise NWBError(f"{label}: bin_size={bin_size}; expected a positive number of seconds")
    if interval is not None and (start is not None or stop is not None):
        raise NWBError(f"{label}: pass either interval= or start=/stop=, not both")
    with open_h5(path) as f:
        spikes = _spike_times(f, label)
        if interval is not None:
            start, stop = resolve_interval(f, interval, label)
    if start is None:
        start = min([0.0] + [float(t[0]) for t in spikes.values() if t.size])
    start = float(start)
    if stop is not None:
        stop = float(stop)
        if not (math.isfinite(start) and math.isfinite(stop)) or stop - start < bin_size:
            raise NWBError(
                f"{label}: start={start}, stop={stop}, bin_size={bin_size}; expected finite "
                "start < stop holding at least one bin"
            )
    try:
        counts = bin_spike_times(spikes, bin_size, start, stop)
    except ValueError as exc:
        raise NWBError(f"{label}: {exc}") from exc
    attrs = {**counts.attrs, "source_file": label}
    if interval is not None:
        attrs["interval"] = f"{interval[0]}:{interval[1]}"
    return counts.assign_coords(unit=np.asarray(list(spikes), dtype=np.int64)).assign_attrs(attrs)
