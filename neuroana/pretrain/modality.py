"""Other modalities beside the spikes (stimulus features, behaviour): sampled streams, their
tokens inside each window, and behaviour targets at window ends."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from neuroana.dims import TIME
from neuroana.errors import TokenizeError
from neuroana.pretrain.tokenize import TokenConfig

__all__ = ["ModalityStream", "behaviour_targets", "modality_from_dataarray", "modality_tokens"]


@dataclass(frozen=True)
class ModalityStream:
    """A regularly or irregularly sampled modality (behaviour, stimulus features).

    Attributes
    ----------
    name : str
    times : (T,) float64 sorted sample times
    values : (T, d) float32
    """

    name: str
    times: np.ndarray
    values: np.ndarray


def modality_from_dataarray(da: xr.DataArray, name: str | None = None) -> ModalityStream:
    """Build a :class:`ModalityStream` from a ``(time,)`` or ``(time, feature)`` DataArray.

    Raises
    ------
    TokenizeError
        When there is no ``time`` coordinate or any value is NaN.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neuroana.pretrain.modality import modality_from_dataarray
    >>> da = xr.DataArray(np.arange(4.0), dims=["time"], coords={"time": np.arange(4) * 0.1})
    >>> modality_from_dataarray(da, "speed").values.shape
    (4, 1)
    """
    if not isinstance(da, xr.DataArray) or TIME not in da.dims or TIME not in da.coords:
        raise TokenizeError(
            f"modality {name!r} must be an xarray.DataArray with a 'time' dim and coordinate"
        )
    other = [d for d in da.dims if d != TIME]
    if len(other) > 1:
        raise TokenizeError(
            f"modality {name!r} has dims {da.dims}; expected (time,) or (time, feature)"
        )
    v = np.asarray(da.transpose(TIME, *other).values, dtype=np.float32).reshape(da.sizes[TIME], -1)
    t = np.asarray(da[TIME].values, dtype=np.float64)
    nan = ~np.isfinite(v).all(axis=1)
    if nan.any():
        raise TokenizeError(
            f"modality {name or da.name!r} has {int(nan.sum())} samples with NaN/inf (first at "
            f"t={t[nan][0]:.6g} s); drop or interpolate them before fitting"
        )
    order = np.argsort(t, kind="stable")
    return ModalityStream(str(name or da.name or "modality"), t[order], v[order])


def modality_tokens(
    stream: ModalityStream, t_end: np.ndarray, config: TokenConfig, max_tokens: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples of ``stream`` inside each window's span ``[t_end - past - cur, t_end)``.

    Returns ``(values (B, M, d), offset (B, M) from the current-window start, valid (B, M))``; with
    more than ``max_tokens`` samples the latest are kept.
    """
    cur0 = t_end - config.window_cur
    lo = np.searchsorted(stream.times, cur0 - config.window_past, side="left")
    hi = np.searchsorted(stream.times, t_end, side="left")
    lo = np.maximum(lo, hi - max_tokens)
    n = hi - lo
    B, d = t_end.size, stream.values.shape[1]
    vals = np.zeros((B, max_tokens, d), dtype=np.float32)
    off = np.zeros((B, max_tokens))
    valid = np.zeros((B, max_tokens), dtype=bool)
    win = np.repeat(np.arange(B), n)
    pos = np.arange(win.size) - np.repeat(np.cumsum(n) - n, n)
    flat = np.repeat(lo, n) + pos
    vals[win, pos] = stream.values[flat]
    off[win, pos] = stream.times[flat] - cur0[win]
    valid[win, pos] = True
    return vals, off, valid


def behaviour_targets(stream: ModalityStream, t_end: np.ndarray) -> np.ndarray:
    """The behaviour value at each window end (linear interpolation), ``(B, d)``.

    Raises
    ------
    TokenizeError
        When a window end lies outside the behaviour's time range.
    """
    t = stream.times
    if (t_end < t[0] - 1e-9).any() or (t_end > t[-1] + 1e-9).any():
        raise TokenizeError(
            f"behaviour {stream.name!r} covers [{t[0]:.6g}, {t[-1]:.6g}] s but windows end in "
            f"[{t_end.min():.6g}, {t_end.max():.6g}] s"
        )
    return np.stack(
        [np.interp(t_end, t, stream.values[:, j]) for j in range(stream.values.shape[1])], axis=1
    ).astype(np.float32)
