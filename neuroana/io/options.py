"""Checks of the reading options (``data:``) of run configurations, shared by the analyses'
pipelines: time ranges, unit selections, interval rows."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "interval_and_units",
    "interval_bounds",
    "positive_seconds",
    "select_units",
    "spike_range",
]


def positive_seconds(data: Mapping[str, Any], key: str) -> None:
    """Raise ``ValueError`` unless ``data[key]`` is absent or a positive number."""
    v = data.get(key)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
        raise ValueError(f"data.{key}={v!r}; expected a positive number of seconds")


def interval_and_units(data: Mapping[str, Any]) -> dict:
    """Checked ``interval`` (as a tuple) and ``units`` options; the time-range rules shared by
    analyses that read spikes."""
    out = {}
    if data.get("interval") is not None:
        iv = data["interval"]
        if not (isinstance(iv, list | tuple) and len(iv) == 2 and isinstance(iv[0], str)):
            raise ValueError(
                f"data.interval={iv!r}; expected [table, tag or row], e.g. [epochs, wake]"
            )
        if data.get("start") is not None or data.get("stop") is not None:
            raise ValueError("data: give either interval or start/stop, not both")
        out["interval"] = (iv[0], iv[1])
    if data.get("units") is not None and not isinstance(data["units"], list | tuple):
        raise ValueError(f"data.units={data['units']!r}; expected a list of unit ids")
    return out


def _check_units(units, have, name: str) -> None:
    """``ValueError`` naming the ids of ``units`` that are not in ``have`` (the file's units)."""
    miss = [u for u in units if u not in have]
    if miss:
        raise ValueError(f"data.units: unit id(s) {miss} not in {name} (has {sorted(have)})")


def select_units(da: xr.DataArray, units, p: Path) -> xr.DataArray:
    """``da`` restricted to ``units`` (all when ``None``); a missing id is a ``ValueError``."""
    if units is None:
        return da
    _check_units(units, set(da["unit"].values.tolist()), p.name)
    return da.sel(unit=list(units))


def interval_bounds(path: Path, table: str, tag) -> tuple[float, float]:
    """``(start_time, stop_time)`` of the one row of interval ``table`` tagged ``tag`` (or row
    number ``tag``); a ``ValueError`` when not exactly one row matches."""
    from neuroana.io import read_intervals

    iv = read_intervals(path, table)
    if isinstance(tag, int):
        rows = iv.iloc[[tag]] if -len(iv) <= tag < len(iv) else iv.iloc[[]]
    else:
        tags = iv["tags"] if "tags" in iv else [[]] * len(iv)
        rows = iv[[tag in list(t) for t in tags]]
    if len(rows) != 1:
        raise ValueError(
            f"data.interval: {len(rows)} rows of table {table!r} match {tag!r} "
            f"in {Path(path).name}; expected exactly one"
        )
    row = rows.iloc[0]
    return float(row["start_time"]), float(row["stop_time"])


def spike_range(
    path: Path, spikes: Mapping, data: Mapping[str, Any]
) -> tuple[dict, tuple[float, float]]:
    """``spikes`` (``{unit id: times}`` read from ``path``) restricted to ``data["units"]`` (in
    that order), and the time range the ``data`` options choose: ``interval`` (a row of an
    interval table), ``start``/``stop``, by default the first spike to just after the last.

    Raises
    ------
    ValueError
        A unit id missing from the file, no spikes to take a default range from, or an empty
        range; the message names the file and the option.

    Examples
    --------
    >>> spike_range(None, {3: [0.5, 2.0], 4: [1.0]}, {"units": [4], "start": 0.0})
    ({4: [1.0]}, (0.0, 1.0000000000000002))
    """
    name = Path(path).name if path is not None else "the input"
    units = data.get("units")
    if units is not None:
        _check_units(units, set(spikes), name)
        spikes = {u: spikes[u] for u in units}
    else:
        spikes = dict(spikes)
    start, stop = data.get("start"), data.get("stop")
    if data.get("interval") is not None:
        start, stop = interval_bounds(path, *data["interval"])
    if start is None or stop is None:
        allt = np.concatenate([np.asarray(t, dtype=float).ravel() for t in spikes.values()] or [[]])
        if allt.size == 0:
            raise ValueError(
                f"{name}: no spikes in the chosen units; give data.start and data.stop"
            )
        start = float(allt.min()) if start is None else start
        stop = float(np.nextafter(allt.max(), np.inf)) if stop is None else stop
    start, stop = float(start), float(stop)
    if not stop > start:
        raise ValueError(f"data: the range [{start}, {stop}) s of {name} is empty")
    return spikes, (start, stop)
