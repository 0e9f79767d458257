"""Sample spacing of a regularly sampled dimension, read from its coordinate."""

from __future__ import annotations

import numpy as np
import xarray as xr


def check_dim(da: xr.DataArray, dim: str, name: str = "input") -> None:
    """Raise ``ValueError`` unless ``da`` is a DataArray that has dimension ``dim``."""
    if not isinstance(da, xr.DataArray):
        raise ValueError(f"{name} is a {type(da).__name__}; expected an xarray.DataArray")
    if dim not in da.dims:
        raise ValueError(f"{name} has dims {tuple(da.dims)}; expected a {dim!r} dim")


def sample_spacing(da: xr.DataArray, dim: str, name: str = "input") -> float:
    """Return the constant spacing (seconds) of coordinate ``dim``.

    Raises ``ValueError`` when the coordinate is missing, has fewer than two samples, or is not
    regular (relative deviation above 1e-6 of the median step).
    """
    check_dim(da, dim, name)
    if dim not in da.coords:
        raise ValueError(f"{name} has no {dim!r} coordinate; expected sample times in seconds")
    t = np.asarray(da[dim].values, dtype=np.float64)
    if t.size < 2:
        raise ValueError(f"{name} has {t.size} sample(s) along {dim!r}; expected at least 2")
    steps = np.diff(t)
    dt = float(np.median(steps))
    if not dt > 0 or np.max(np.abs(steps - dt)) > 1e-6 * dt:
        raise ValueError(
            f"{name} coordinate {dim!r} is not regularly increasing (steps from {steps.min()} to "
            f"{steps.max()}); expected a constant sample spacing"
        )
    return dt


def samples_in(seconds: float, dt: float, what: str) -> int:
    """Convert ``seconds`` to a whole number of samples of spacing ``dt`` (must be a multiple)."""
    seconds = float(seconds)
    if not np.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{what}={seconds!r} is not valid; expected a positive number of seconds")
    n = int(round(seconds / dt))
    if n < 1 or abs(n * dt - seconds) > 1e-6 * max(seconds, dt):
        raise ValueError(
            f"{what}={seconds!r} s is not a whole multiple of the sample spacing {dt!r} s; "
            f"expected e.g. {max(n, 1) * dt!r}"
        )
    return n
