"""Gaussian smoothing along a time axis, with the width in seconds."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter1d

from neuroana.dims import TIME
from neuroana.preprocess._timeaxis import sample_spacing


def smooth(
    da: xr.DataArray, sigma: float, dim: str = TIME, *, truncate: float = 4.0
) -> xr.DataArray:
    """Convolve with a Gaussian of standard deviation ``sigma`` seconds along ``dim``.

    The sample spacing comes from the ``dim`` coordinate, which must be regular. The kernel is
    normalised, so a constant signal stays constant; borders are handled by reflection
    (``scipy.ndimage`` mode ``"reflect"``). NaN samples are ignored (normalised convolution): each
    output is the weighted mean of the finite samples under the kernel, and is NaN only where no
    finite sample lies within ``truncate * sigma``. Coordinates, dims order, name and attrs are kept;
    the result is float64 (float32 input stays float32).

    Parameters
    ----------
    da : xarray.DataArray
        Input with a regularly spaced ``dim`` coordinate in seconds.
    sigma : float
        Gaussian standard deviation in seconds (>= 0; 0 returns a float copy).
    dim : str
        Dimension to smooth along.
    truncate : float
        Kernel half-width in standard deviations.

    Returns
    -------
    xarray.DataArray

    Raises
    ------
    ValueError
        If ``sigma`` is negative or not finite, ``dim`` is missing or irregular.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neuroana.preprocess import smooth
    >>> x = xr.DataArray(np.r_[np.zeros(50), 1.0, np.zeros(50)], dims="time",
    ...                  coords={"time": np.arange(101) * 0.01})
    >>> y = smooth(x, 0.05)
    >>> round(float(y.sum()), 6), int(y.argmax("time"))
    (1.0, 50)
    """
    sigma = float(sigma)
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma={sigma!r} is not valid; expected a non-negative number of seconds")
    dt = sample_spacing(da, dim, "da")
    values = np.asarray(da.values)
    out_dtype = np.float32 if values.dtype == np.float32 else np.float64
    values = values.astype(np.float64)
    if sigma == 0:
        return da.copy(data=values.astype(out_dtype))
    axis = da.get_axis_num(dim)
    s = sigma / dt
    finite = np.isfinite(values)
    if finite.all():
        out = gaussian_filter1d(values, s, axis=axis, mode="reflect", truncate=truncate)
    else:
        num = gaussian_filter1d(
            np.where(finite, values, 0.0), s, axis=axis, mode="reflect", truncate=truncate
        )
        den = gaussian_filter1d(
            finite.astype(np.float64), s, axis=axis, mode="reflect", truncate=truncate
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(den > 1e-12, num / np.where(den > 1e-12, den, 1.0), np.nan)
    return da.copy(data=out.astype(out_dtype))
