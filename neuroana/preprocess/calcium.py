"""Calcium-imaging traces: dF/F against a percentile, median or mean baseline."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.ndimage import percentile_filter, uniform_filter1d

from neuroana.dims import TIME
from neuroana.preprocess._timeaxis import check_dim, sample_spacing, samples_in

_BASELINES = ("percentile", "median", "mean")


def _fill_nan_linear(values: np.ndarray, axis: int) -> np.ndarray:
    """Linearly interpolate NaNs along ``axis`` (edge NaNs take the nearest finite value)."""
    moved = np.moveaxis(values, axis, 0)
    flat = moved.reshape(moved.shape[0], -1).copy()
    idx = np.arange(flat.shape[0])
    for j in range(flat.shape[1]):
        col = flat[:, j]
        ok = np.isfinite(col)
        if ok.all() or not ok.any():
            continue
        flat[:, j] = np.interp(idx, idx[ok], col[ok])
    return np.moveaxis(flat.reshape(moved.shape), 0, axis)


def dff(
    traces: xr.DataArray,
    baseline: str = "percentile",
    window: float | None = None,
    percentile: float = 8.0,
    dim: str = TIME,
) -> xr.DataArray:
    """Relative fluorescence change ``(F - F0) / F0`` with a (running) baseline ``F0``.

    Parameters
    ----------
    traces : xarray.DataArray
        Raw fluorescence with a ``dim`` (time) axis and any other dims (typically ``roi``).
    baseline : {"percentile", "median", "mean"}
        How ``F0`` is computed per trace: the ``percentile``-th percentile, the median, or the mean.
    window : float, optional
        Running-baseline window in seconds (centred; a whole multiple of the sample spacing, taken
        from the ``dim`` coordinate, with borders by nearest-value extension). ``None`` uses one
        baseline for the whole trace.
    percentile : float
        Percentile in [0, 100] for ``baseline="percentile"``.
    dim : str
        The time dimension.

    Returns
    -------
    xarray.DataArray
        dF/F (float64) with the input's dims, coords and attrs, named ``"dff"``; attrs gain
        ``dff_baseline``, ``dff_window`` and ``dff_percentile``.

    Notes
    -----
    A constant trace gives zeros. Where ``F0 <= 0`` or is NaN (e.g. an all-zero or all-NaN trace)
    dF/F is undefined and the output is NaN there. NaN samples stay NaN in the output; the global
    baseline ignores them (``nanpercentile``/``nanmean``), and a running baseline is computed after
    filling them by linear interpolation along time.

    Raises
    ------
    ValueError
        On an unknown ``baseline``, a ``percentile`` outside [0, 100], a non-positive window or one
        that is not a multiple of the sample spacing, or a missing/irregular time coordinate.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neuroana.preprocess import dff
    >>> f = xr.DataArray([[10.0], [10.0], [15.0], [10.0]], dims=("time", "roi"),
    ...                  coords={"time": [0.0, 0.1, 0.2, 0.3]})
    >>> dff(f, baseline="median").values.ravel().tolist()
    [0.0, 0.0, 0.5, 0.0]
    """
    check_dim(traces, dim, "traces")
    if baseline not in _BASELINES:
        raise ValueError(f"baseline={baseline!r} is not valid; expected one of {_BASELINES}")
    percentile = float(percentile)
    if baseline == "percentile" and not 0 <= percentile <= 100:
        raise ValueError(f"percentile={percentile!r} is not valid; expected a value in [0, 100]")
    q = 50.0 if baseline == "median" else percentile
    f = np.asarray(traces.values, dtype=np.float64)
    axis = traces.get_axis_num(dim)
    with np.errstate(all="ignore"):
        if window is None:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN traces -> NaN baseline
                if baseline == "mean":
                    f0 = np.nanmean(f, axis=axis, keepdims=True)
                else:
                    f0 = np.nanpercentile(f, q, axis=axis, keepdims=True)
        else:
            dt = sample_spacing(traces, dim, "traces")
            n = samples_in(window, dt, "window")
            filled = _fill_nan_linear(f, axis)
            if baseline == "mean":
                f0 = uniform_filter1d(filled, n, axis=axis, mode="nearest")
            else:
                size = [1] * f.ndim
                size[axis] = n
                f0 = percentile_filter(filled, q, size=size, mode="nearest")
        valid = np.isfinite(f0) & (f0 > 0)
        out = np.where(valid, (f - f0) / np.where(valid, f0, 1.0), np.nan)
    attrs = dict(traces.attrs)
    attrs.update(
        dff_baseline=baseline,
        dff_window=float("nan") if window is None else float(window),
        dff_percentile=q if baseline != "mean" else float("nan"),
    )
    return traces.copy(data=out).rename("dff").assign_attrs(attrs)
