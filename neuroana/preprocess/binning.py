"""Binning spike times into counts on a regular, left-closed time grid."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from neuroana.dims import TIME, UNIT


def _n_bins(start: float, stop: float, bin_size: float) -> int:
    """Number of whole bins of ``bin_size`` in ``[start, stop)`` (tolerant to float round-off)."""
    return int(np.floor((stop - start) / bin_size + 1e-9))


def bin_edges(start: float, stop: float, bin_size: float) -> np.ndarray:
    """Left-closed bin edges ``start + arange(n + 1) * bin_size`` covering ``[start, stop)``.

    ``n`` is the number of whole bins that fit; a trailing partial bin is dropped.

    Examples
    --------
    >>> from neuroana.preprocess import bin_edges
    >>> bin_edges(0.0, 1.0, 0.25).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    n = _n_bins(start, stop, bin_size)
    return start + np.arange(n + 1) * bin_size


def bin_spike_times(
    spike_times: Mapping,
    bin_size: float,
    start: float | None = None,
    stop: float | None = None,
) -> xr.DataArray:
    """Count spikes in left-closed bins ``[start + k*bin_size, start + (k+1)*bin_size)``.

    The rule is the one :func:`neuroana.io.read_spike_counts` uses: edges are
    ``start + arange(n + 1) * bin_size`` with ``n = floor((stop - start) / bin_size)`` whole bins, and a
    spike at time ``t`` falls in bin ``searchsorted(edges, t, side="right") - 1``; spikes before
    ``start`` or at/after the last edge are dropped. A spike exactly on an edge belongs to the bin
    that starts there.

    Parameters
    ----------
    spike_times : mapping
        Unit id -> 1-D array of spike times in seconds (any order).
    bin_size : float
        Bin width in seconds, > 0.
    start, stop : float, optional
        The binned range in seconds. ``start`` defaults to ``min(0, earliest spike)`` (as in
        :func:`neuroana.io.read_spike_counts`); ``stop`` defaults to the first edge past the
        latest spike, so every spike is counted.

    Returns
    -------
    xarray.DataArray
        int64 counts with dims ``("time", "unit")``; coordinate ``time`` holds bin centres, ``unit``
        the mapping's keys in their order; attrs ``bin_size``, ``start`` and ``stop`` (the last edge).

    Raises
    ------
    ValueError
        If ``bin_size`` is not positive and finite, ``stop <= start``, the mapping is empty (with no
        ``start``/``stop``), or a unit's spike times are not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.preprocess import bin_spike_times
    >>> counts = bin_spike_times({7: np.array([0.0, 0.1, 0.5, 0.99])}, 0.5, start=0.0, stop=1.0)
    >>> counts.sel(unit=7).values.tolist()
    [2, 2]
    >>> counts.time.values.tolist()
    [0.25, 0.75]
    """
    bin_size = float(bin_size)
    if not np.isfinite(bin_size) or bin_size <= 0:
        raise ValueError(
            f"bin_size={bin_size!r} is not valid; expected a positive number of seconds"
        )
    units = list(spike_times.keys())
    arrays = []
    for u in units:
        t = np.asarray(spike_times[u], dtype=np.float64).ravel()
        if not np.all(np.isfinite(t)):
            raise ValueError(
                f"spike times of unit {u!r} contain {int((~np.isfinite(t)).sum())} non-finite "
                "values; expected finite times in seconds"
            )
        arrays.append(t)
    nonempty = [t for t in arrays if t.size]
    if start is None:
        start = min([0.0] + [float(t.min()) for t in nonempty])
    if stop is None:
        if not nonempty:
            raise ValueError("stop is None and there are no spikes to infer it from; pass stop")
        last = float(max(t.max() for t in nonempty))
        stop = start + (np.floor((last - start) / bin_size) + 1) * bin_size
    start, stop = float(start), float(stop)
    if not (np.isfinite(start) and np.isfinite(stop)) or stop <= start:
        raise ValueError(f"start={start!r}, stop={stop!r} is not valid; expected start < stop")
    edges = bin_edges(start, stop, bin_size)
    n = edges.size - 1
    if n < 1:
        raise ValueError(
            f"[start, stop) = [{start}, {stop}) holds no whole bin of bin_size={bin_size}; "
            "expected stop - start >= bin_size"
        )
    counts = np.zeros((n, len(units)), dtype=np.int64)
    for j, t in enumerate(arrays):
        idx = np.searchsorted(edges, t, side="right") - 1
        idx = idx[(idx >= 0) & (idx < n)]
        counts[:, j] = np.bincount(idx, minlength=n)
    return xr.DataArray(
        counts,
        dims=(TIME, UNIT),
        coords={TIME: edges[:-1] + bin_size / 2, UNIT: units},
        name="spike_counts",
        attrs={"bin_size": bin_size, "start": start, "stop": float(edges[-1])},
    )
