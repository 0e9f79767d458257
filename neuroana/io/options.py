"""Checks of the reading options (``data:``) of run configurations, shared by the analyses'
pipelines: time ranges, unit selections, interval rows."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import xarray as xr

__all__ = ["interval_and_units", "interval_bounds", "positive_seconds", "select_units"]


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


def select_units(da: xr.DataArray, units, p: Path) -> xr.DataArray:
    """``da`` restricted to ``units`` (all when ``None``); a missing id is a ``ValueError``."""
    if units is None:
        return da
    have = set(da["unit"].values.tolist())
    miss = [u for u in units if u not in have]
    if miss:
        raise ValueError(f"data.units: unit id(s) {miss} not in {p.name} (has {sorted(have)})")
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
