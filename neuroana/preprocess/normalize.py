"""Standardising along a dimension."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from neuroana.dims import TIME
from neuroana.preprocess._timeaxis import check_dim


def zscore(da: xr.DataArray, dim: str = TIME, *, ddof: int = 0) -> xr.DataArray:
    """Subtract the mean and divide by the standard deviation along ``dim``.

    Parameters
    ----------
    da : xarray.DataArray
        Input with dimension ``dim``.
    dim : str
        Dimension to standardise along (each other index is treated separately).
    ddof : int
        Delta degrees of freedom of the standard deviation.

    Returns
    -------
    xarray.DataArray
        float64 with the same dims, coords and attrs.

    Notes
    -----
    NaN samples are ignored in the mean and standard deviation and stay NaN. A constant slice
    (standard deviation 0) becomes all zeros rather than NaN; an all-NaN slice stays NaN.

    Examples
    --------
    >>> import xarray as xr
    >>> from neuroana.preprocess import zscore
    >>> zscore(xr.DataArray([1.0, 2.0, 3.0], dims="time")).values.tolist()
    [-1.224744871391589, 0.0, 1.224744871391589]
    """
    check_dim(da, dim, "da")
    x = np.asarray(da.values, dtype=np.float64)
    axis = da.get_axis_num(dim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mu = np.nanmean(x, axis=axis, keepdims=True)
        sd = np.nanstd(x, axis=axis, ddof=ddof, keepdims=True)
    centred = x - mu
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(
            sd > 0, centred / np.where(sd > 0, sd, 1.0), np.where(np.isnan(x), np.nan, 0.0)
        )
    return da.copy(data=out)
