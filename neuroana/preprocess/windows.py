"""Sliding windows along time, as a new ``window`` dimension."""

from __future__ import annotations

import numpy as np
import xarray as xr

from neuroana.dims import TIME, WINDOW
from neuroana.preprocess._timeaxis import sample_spacing, samples_in


def sliding_windows(da: xr.DataArray, window: float, step: float, dim: str = TIME) -> xr.DataArray:
    """Cut ``da`` into windows of ``window`` seconds every ``step`` seconds along ``dim``.

    Window ``k`` holds samples ``[k*s, k*s + w)`` where ``w`` and ``s`` are ``window`` and ``step``
    in samples (both must be whole multiples of the sample spacing read from the ``dim``
    coordinate). Only complete windows are returned; trailing samples that do not fill one are
    dropped. The data are a read-only strided view, not a copy.

    Parameters
    ----------
    da : xarray.DataArray
        Input with a regularly spaced ``dim`` coordinate in seconds.
    window, step : float
        Window length and hop in seconds (> 0).
    dim : str
        Dimension to window along.

    Returns
    -------
    xarray.DataArray
        Dims ``("window", *da.dims)``. Coordinate ``window`` holds each window's centre time (the
        mean of its sample times) and ``window_start`` its first sample time; inside a window the
        ``dim`` coordinate is the offset from the window's first sample (``0, dt, ...``). Other
        coordinates and attrs are kept; attrs gain ``window`` and ``step`` (seconds).

    Raises
    ------
    ValueError
        If ``window`` or ``step`` is not positive or not a multiple of the sample spacing, the
        window is longer than the data, or ``dim`` is missing or irregular.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neuroana.preprocess import sliding_windows
    >>> x = xr.DataArray(np.arange(6.0), dims="time", coords={"time": np.arange(6) * 0.5})
    >>> w = sliding_windows(x, window=1.0, step=1.0)
    >>> w.values.tolist(), w.window.values.tolist()
    ([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], [0.25, 1.25, 2.25])
    """
    dt = sample_spacing(da, dim, "da")
    w = samples_in(window, dt, "window")
    s = samples_in(step, dt, "step")
    n_time = da.sizes[dim]
    if w > n_time:
        raise ValueError(
            f"window={window!r} s ({w} samples) is longer than the data ({n_time} samples along "
            f"{dim!r}); expected a shorter window"
        )
    axis = da.get_axis_num(dim)
    view = np.lib.stride_tricks.sliding_window_view(np.asarray(da.values), w, axis=axis)
    # view: dims of da with `dim` -> start index, plus a trailing in-window axis
    view = np.take(view, np.arange(0, n_time - w + 1, s), axis=axis)
    view = np.moveaxis(view, axis, 0)  # window first
    view = np.moveaxis(view, -1, axis + 1)  # in-window samples back where `dim` was
    t = np.asarray(da[dim].values, dtype=np.float64)
    starts = np.arange(0, n_time - w + 1, s)
    centres = (t[starts] + t[starts + w - 1]) / 2
    coords = {name: c for name, c in da.coords.items() if dim not in c.dims}
    coords[WINDOW] = centres
    coords["window_start"] = (WINDOW, t[starts])
    coords[dim] = np.arange(w) * dt
    attrs = dict(da.attrs)
    attrs.update(window=w * dt, step=s * dt)
    return xr.DataArray(view, dims=(WINDOW, *da.dims), coords=coords, name=da.name, attrs=attrs)
