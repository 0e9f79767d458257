"""Spike events -> (neuron, time-offset) tokens in current/past windows, vectorised.

A *window* ending at ``t_end`` has a current part ``[t_end - window_cur, t_end)`` (the tokens the model
predicts) and a past part ``[t_end - window_cur - window_past, t_end - window_cur)`` (the memory it
attends to). Every spike becomes one token: its unit's vocabulary index and its continuous offset from
the start of the current window (negative in the past window). Current tokens are in canonical order
(time bin, then unit, then time), so a token sequence is in one-to-one correspondence with the window's
count matrix at ``resolution``.

Everything here is NumPy: one ``searchsorted`` per window edge and flat gathers, no per-token Python
loop. Time bins follow the package's one binning rule (:func:`neuroana.preprocess.bin_spike_times`):
left-closed bins, a spike exactly on an edge belongs to the bin that starts there. Window ends and
splits are in :mod:`neuroana.pretrain.splits`, other modalities in :mod:`neuroana.pretrain.modality`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from neuroana.dims import TIME, UNIT, as_dataarray
from neuroana.errors import TokenizeError, UnknownUnitError

OVERFLOW_POLICIES = ("drop_oldest", "drop_random", "error")


@dataclass(frozen=True)
class SpikeEvents:
    """Sorted spike events of one session.

    Attributes
    ----------
    times : float64 array (S,)
        Spike times in seconds, sorted ascending.
    unit : int64 array (S,)
        Index into ``unit_ids`` of each spike.
    unit_ids : tuple
        The session's unit labels.
    session : str
        Session name, used to build global vocabulary keys ``"session/unit"``.
    t_start, t_stop : float
        The recorded interval (spikes lie in ``[t_start, t_stop)``).
    """

    times: np.ndarray
    unit: np.ndarray
    unit_ids: tuple
    session: str
    t_start: float
    t_stop: float

    @property
    def keys(self) -> list[str]:
        """Global vocabulary keys ``"session/unit"`` of this session's units."""
        return [f"{self.session}/{u}" for u in self.unit_ids]


def events_from_spike_times(
    spike_times: Mapping | SpikeEvents,
    *,
    session: str = "session0",
    t_start: float | None = None,
    t_stop: float | None = None,
) -> SpikeEvents:
    """Merge a ``{unit: times}`` dict into sorted :class:`SpikeEvents`.

    Parameters
    ----------
    spike_times : mapping of unit label -> array of spike times (s)
        What ``neuroana.io.read_spike_times`` returns. A ``SpikeEvents`` is returned unchanged.
    session : str
        Session name for the vocabulary keys.
    t_start, t_stop : float, optional
        The recorded interval; default: first spike and just after the last spike.

    Raises
    ------
    TokenizeError
        When there are no units, no spikes, or non-finite spike times.

    Examples
    --------
    >>> from neuroana.pretrain.tokenize import events_from_spike_times
    >>> ev = events_from_spike_times({"a": [0.3, 0.1], "b": [0.2]})
    >>> ev.times.tolist(), ev.unit.tolist(), ev.unit_ids
    ([0.1, 0.2, 0.3], [0, 1, 0], ('a', 'b'))
    """
    if isinstance(spike_times, SpikeEvents):
        return spike_times
    if not isinstance(spike_times, Mapping) or len(spike_times) == 0:
        raise TokenizeError(
            f"spike_times must be a non-empty mapping unit -> times, got {type(spike_times).__name__}"
        )
    ids = tuple(spike_times)
    arrays = [_times_of(u, spike_times[u]) for u in ids]
    times = np.concatenate(arrays)
    unit = np.repeat(np.arange(len(ids), dtype=np.int64), [len(a) for a in arrays])
    if times.size == 0:
        raise TokenizeError(f"spike_times has {len(ids)} units but no spikes at all")
    bad = ~np.isfinite(times)
    if bad.any():
        raise TokenizeError(f"spike_times holds {int(bad.sum())} non-finite spike times (NaN/inf)")
    order = np.argsort(times, kind="stable")
    times, unit = times[order], unit[order]
    t0 = float(times[0]) if t_start is None else float(t_start)
    t1 = float(np.nextafter(times[-1], np.inf)) if t_stop is None else float(t_stop)
    if t1 <= t0:
        raise TokenizeError(f"t_stop={t1} must be after t_start={t0}")
    keep = (times >= t0) & (times < t1)
    return SpikeEvents(times[keep], unit[keep], ids, str(session), t0, t1)


def _times_of(unit, times) -> np.ndarray:
    """One unit's spike times as a 1-D float64 array; a :class:`TokenizeError` otherwise."""
    a = np.asarray(times)
    if a.dtype.kind not in "iuf":
        raise TokenizeError(
            f"unit {unit!r}: spike times have dtype {a.dtype}; expected real numbers (seconds)"
        )
    if a.ndim > 1 and sum(n > 1 for n in a.shape) > 1:
        raise TokenizeError(
            f"unit {unit!r}: spike times have shape {a.shape}; expected a 1-D array of seconds"
        )
    return a.astype(np.float64).ravel()


def events_from_binned(
    counts: xr.DataArray | np.ndarray, *, dt: float | None = None, session: str = "session0"
) -> SpikeEvents:
    """Turn a binned count matrix ``(time, unit)`` into events at the bin starts.

    A count ``c`` in a bin gives ``c`` spikes at the bin's start time. Times come from the ``time``
    coordinate when present (bin starts), else ``arange(n_bins) * dt``.

    Raises
    ------
    TokenizeError
        When counts are negative, non-integer or NaN, or no time step is known.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.pretrain.tokenize import events_from_binned
    >>> ev = events_from_binned(np.array([[0, 2], [1, 0]]), dt=0.01)
    >>> ev.times.tolist(), ev.unit.tolist()
    ([0.0, 0.0, 0.01], [1, 1, 0])
    """
    try:
        da = as_dataarray(counts, (TIME, UNIT), name="counts")
    except ValueError as err:
        raise TokenizeError(f"binned counts: {err}") from err
    if da.dtype.kind not in "biuf":
        raise TokenizeError(f"binned counts have dtype {da.dtype}; expected spike counts")
    c = np.asarray(da.values, dtype=np.float64)
    if c.size == 0:
        raise TokenizeError(f"binned counts are empty (shape {c.shape})")
    if not np.all(np.isfinite(c)) or np.any(c < 0) or np.any(c != np.round(c)):
        raise TokenizeError("counts must be finite non-negative integers (spike counts per bin)")
    if TIME in da.coords:
        t = np.asarray(da[TIME].values, dtype=np.float64)
        step = float(np.median(np.diff(t))) if t.size > 1 else float(dt or 0)
    elif dt is not None:
        t = np.arange(c.shape[0]) * float(dt)
        step = float(dt)
    else:
        raise TokenizeError("counts has no 'time' coordinate; pass dt= (bin width in s)")
    if step <= 0:
        raise TokenizeError(f"bin width must be > 0, got {step}")
    ids = tuple(da[UNIT].values.tolist()) if UNIT in da.coords else tuple(range(c.shape[1]))
    ci = c.astype(np.int64)
    tb, ub = np.nonzero(ci)
    rep = ci[tb, ub]
    times = np.repeat(t[tb], rep)
    unit = np.repeat(ub.astype(np.int64), rep)
    order = np.lexsort((unit, times))
    return SpikeEvents(
        times[order], unit[order], ids, str(session), float(t[0]), float(t[-1] + step)
    )


class UnitVocab:
    """A growable vocabulary of global unit keys (``"session/unit"``) -> embedding rows.

    New sessions add rows at fine-tune time; the model grows its unit embedding and id head to match
    (:meth:`neuroana.pretrain.nn.SpikeTransformer.grow_units`).

    Examples
    --------
    >>> from neuroana.pretrain.tokenize import UnitVocab
    >>> v = UnitVocab(["s0/a", "s0/b"])
    >>> v.extend(["s1/a", "s0/a"]), len(v)
    ([2, 0], 3)
    """

    def __init__(self, keys: Sequence[str] = ()):
        self.keys: list[str] = []
        self._index: dict[str, int] = {}
        self.extend(keys)

    def __len__(self) -> int:
        return len(self.keys)

    def extend(self, keys: Sequence[str]) -> list[int]:
        """Add unseen keys; return the index of every key."""
        out = []
        for k in keys:
            k = str(k)
            if k not in self._index:
                self._index[k] = len(self.keys)
                self.keys.append(k)
            out.append(self._index[k])
        return out

    def lookup(self, keys: Sequence[str]) -> np.ndarray:
        """Indices of known keys; raise :class:`UnknownUnitError` naming the unknown ones."""
        missing = [str(k) for k in keys if str(k) not in self._index]
        if missing:
            raise UnknownUnitError(
                f"{len(missing)} unit(s) not in the vocabulary: {missing[:5]}"
                f"{' ...' if len(missing) > 5 else ''}; the model knows {len(self)} units. "
                "Fine-tune with a new session (grow the vocabulary) before predicting on them."
            )
        return np.array([self._index[str(k)] for k in keys], dtype=np.int64)

    def __eq__(self, other) -> bool:
        return isinstance(other, UnitVocab) and self.keys == other.keys

    __hash__ = None

    def __getstate__(self):
        return {"keys": list(self.keys)}

    def __setstate__(self, state):
        self.keys, self._index = [], {}
        self.extend(state["keys"])


@dataclass(frozen=True)
class TokenConfig:
    """Window lengths, resolution and capacity of the tokenizer.

    Attributes
    ----------
    window_cur, window_past, resolution : float
        Seconds; paper defaults 0.05, 0.15 and 0.01.
    max_tokens_cur, max_tokens_past : int
        Capacity of the current / past streams (the current one excludes the end-of-window token).
    overflow : {"drop_oldest", "drop_random", "error"}
        What to do with windows holding more spikes than the capacity.
    """

    window_cur: float = 0.05
    window_past: float = 0.15
    resolution: float = 0.01
    max_tokens_cur: int = 64
    max_tokens_past: int = 192
    overflow: str = "drop_oldest"

    def __post_init__(self):
        for name in ("window_cur", "resolution"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise TokenizeError(f"{name} must be a positive number of seconds, got {v!r}")
        if not (np.isfinite(self.window_past) and self.window_past >= 0):
            raise TokenizeError(f"window_past must be >= 0 s, got {self.window_past!r}")
        if self.resolution > self.window_cur:
            raise TokenizeError(
                f"resolution={self.resolution} s is longer than window_cur={self.window_cur} s"
            )
        if self.max_tokens_cur < 1 or self.max_tokens_past < 0:
            raise TokenizeError(
                f"max_tokens_cur must be >= 1 and max_tokens_past >= 0, got "
                f"{self.max_tokens_cur}, {self.max_tokens_past}"
            )
        if self.overflow not in OVERFLOW_POLICIES:
            raise TokenizeError(f"overflow={self.overflow!r}; expected one of {OVERFLOW_POLICIES}")

    @property
    def n_dt(self) -> int:
        """Number of time-bin classes of the current window (the end token is one more)."""
        return int(np.ceil(self.window_cur / self.resolution - 1e-9))


@dataclass(frozen=True)
class TokenWindows:
    """Padded token arrays for ``B`` windows (NumPy; converted to tensors per batch).

    Attributes
    ----------
    t_end : (B,) float64
    cur_unit : (B, Lc) int64, -1 = padding
    cur_offset : (B, Lc) float64 seconds from the current window start (exact, see ``detokenize``)
    cur_bin : (B, Lc) int64 time-bin class
    cur_len : (B,) int64
    past_unit, past_offset, past_len : same for the past window (offsets negative)
    n_dropped : (B,) int64 spikes dropped by the overflow policy (both streams)
    """

    t_end: np.ndarray
    cur_unit: np.ndarray
    cur_offset: np.ndarray
    cur_bin: np.ndarray
    cur_len: np.ndarray
    past_unit: np.ndarray
    past_offset: np.ndarray
    past_len: np.ndarray
    n_dropped: np.ndarray

    def __len__(self) -> int:
        return int(self.t_end.shape[0])

    def subset(self, idx) -> TokenWindows:
        idx = np.asarray(idx)
        return TokenWindows(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))


def _exact_offsets(times: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """``times - origin``, nudged so that ``origin + offset == times`` exactly in float64."""
    off = times - origin
    for _ in range(4):  # one nudge suffices in practice; a bounded loop over *all* tokens at once
        bad = origin + off != times
        if not bad.any():
            return off
        direction = np.where(origin[bad] + off[bad] < times[bad], np.inf, -np.inf)
        off[bad] = np.nextafter(off[bad], direction)
    return off


def _gather(
    times: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    cap: int,
    policy: str,
    rng: np.random.Generator | None,
    stream: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event indices of ``[lo, hi)`` ranges, capped at ``cap`` per window.

    Returns ``(flat_event_index, window_of_each, count_dropped)``; flat entries are grouped by window
    in time order.
    """
    n = hi - lo
    over = n > cap
    if over.any() and policy == "error":
        w = int(np.flatnonzero(over)[0])
        raise TokenizeError(
            f"window {w} holds {int(n[w])} {stream} spikes, more than max_tokens_{stream}={cap} "
            "(overflow='error'); raise the capacity or choose overflow='drop_oldest'/'drop_random'"
        )
    win = np.repeat(np.arange(n.size), n)
    pos = np.arange(win.size) - np.repeat(np.cumsum(n) - n, n)
    flat = np.repeat(lo, n) + pos
    dropped = np.maximum(n - cap, 0)
    if over.any():
        if policy == "drop_oldest":
            keep = pos >= np.repeat(dropped, n)
        else:  # drop_random: random keys, keep the cap smallest per window, preserve time order
            key = (rng or np.random.default_rng(0)).random(win.size)
            order = np.lexsort((key, win))
            rank = np.empty(win.size, dtype=np.int64)
            rank[order] = np.arange(win.size) - np.repeat(np.cumsum(n) - n, n)
            keep = rank < cap
        flat, win = flat[keep], win[keep]
    return flat, win, dropped


def tokenize(
    events: SpikeEvents,
    t_end: np.ndarray,
    config: TokenConfig,
    unit_index: np.ndarray | None = None,
    *,
    rng: np.random.Generator | None = None,
) -> TokenWindows:
    """Tokenize the windows ending at ``t_end``.

    Parameters
    ----------
    events : SpikeEvents
    t_end : array (B,)
        Window ends (s). Every window must lie inside ``[events.t_start, events.t_stop]``.
    config : TokenConfig
    unit_index : int array (n_units,), optional
        Vocabulary index of each of the session's units (default: ``arange``).
    rng : numpy Generator, optional
        For ``overflow="drop_random"``.

    Raises
    ------
    TokenizeError
        When a window starts before ``t_start`` or ends after ``t_stop``, or on overflow with
        ``overflow="error"``.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.pretrain.tokenize import TokenConfig, events_from_spike_times, tokenize
    >>> ev = events_from_spike_times({0: [0.012, 0.061], 1: [0.064]}, t_start=0.0, t_stop=1.0)
    >>> tw = tokenize(ev, np.array([0.1]), TokenConfig(window_cur=0.05, window_past=0.05))
    >>> tw.cur_unit[0, :2].tolist(), tw.cur_bin[0, :2].tolist(), tw.past_unit[0, :1].tolist()
    ([0, 1], [1, 1], [0])
    """
    t_end = np.atleast_1d(np.asarray(t_end, dtype=np.float64))
    if t_end.size == 0:
        raise TokenizeError("no windows to tokenize (t_end is empty)")
    cur0 = t_end - config.window_cur
    past0 = cur0 - config.window_past
    eps = 1e-9
    if (past0 < events.t_start - eps).any() or (t_end > events.t_stop + eps).any():
        raise TokenizeError(
            f"windows span [{past0.min():.6g}, {t_end.max():.6g}] s but the data cover "
            f"[{events.t_start:.6g}, {events.t_stop:.6g}] s (window_past + window_cur = "
            f"{config.window_past + config.window_cur} s per window)"
        )
    if unit_index is None:
        unit_index = np.arange(len(events.unit_ids), dtype=np.int64)
    times = events.times
    i_past = np.searchsorted(times, past0, side="left")
    i_cur = np.searchsorted(times, cur0, side="left")
    i_end = np.searchsorted(times, t_end, side="left")
    B = t_end.size

    # current stream: canonical order (bin, unit, time) within each window
    flat, win, drop_c = _gather(
        times, i_cur, i_end, config.max_tokens_cur, config.overflow, rng, "cur"
    )
    off = _exact_offsets(times[flat], cur0[win])
    # left-closed bins [k * resolution, (k + 1) * resolution) of the offset; the last class also
    # takes a remainder shorter than one bin
    inner = config.resolution * np.arange(1, config.n_dt)
    tbin = np.searchsorted(inner, off, side="right").astype(np.int64)
    u = unit_index[events.unit[flat]]
    order = np.lexsort((off, u, tbin, win))
    flat, win, off, tbin, u = flat[order], win[order], off[order], tbin[order], u[order]
    cur_len = np.bincount(win, minlength=B).astype(np.int64)
    pos = np.arange(win.size) - np.repeat(np.cumsum(cur_len) - cur_len, cur_len)
    Lc = config.max_tokens_cur
    cur_unit = np.full((B, Lc), -1, dtype=np.int64)
    cur_offset = np.zeros((B, Lc))
    cur_bin = np.zeros((B, Lc), dtype=np.int64)
    cur_unit[win, pos] = u
    cur_offset[win, pos] = off
    cur_bin[win, pos] = tbin

    # past stream: time order, offsets relative to the current window start (negative)
    Lp = config.max_tokens_past
    past_unit = np.full((B, Lp), -1, dtype=np.int64)
    past_offset = np.zeros((B, Lp))
    past_len = np.zeros(B, dtype=np.int64)
    drop_p = np.zeros(B, dtype=np.int64)
    if Lp > 0 and config.window_past > 0:
        flat, win, drop_p = _gather(times, i_past, i_cur, Lp, config.overflow, rng, "past")
        past_len = np.bincount(win, minlength=B).astype(np.int64)
        pos = np.arange(win.size) - np.repeat(np.cumsum(past_len) - past_len, past_len)
        past_unit[win, pos] = unit_index[events.unit[flat]]
        past_offset[win, pos] = _exact_offsets(times[flat], cur0[win])
    return TokenWindows(
        t_end,
        cur_unit,
        cur_offset,
        cur_bin,
        cur_len,
        past_unit,
        past_offset,
        past_len,
        drop_c + drop_p,
    )


def detokenize(tokens: TokenWindows, config: TokenConfig, stream: str = "cur") -> tuple:
    """Recover ``(times, unit_index)`` of the tokens of one stream, sorted by time then unit.

    ``times = window_start + offset`` reproduces the original float64 spike times exactly.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.pretrain.tokenize import (TokenConfig, detokenize,
    ...     events_from_spike_times, tokenize)
    >>> ev = events_from_spike_times({0: [0.0123, 0.0771], 1: [0.0456]}, t_start=0, t_stop=1)
    >>> cfg = TokenConfig(window_cur=0.05, window_past=0.0)
    >>> t, u = detokenize(tokenize(ev, np.array([0.05, 0.1]), cfg), cfg)
    >>> t.tolist() == [0.0123, 0.0456, 0.0771], u.tolist()
    (True, [0, 1, 0])
    """
    if stream not in ("cur", "past"):
        raise ValueError(f"stream={stream!r}; expected 'cur' or 'past'")
    unit = getattr(tokens, f"{stream}_unit")
    off = getattr(tokens, f"{stream}_offset")
    valid = unit >= 0
    origin = np.broadcast_to((tokens.t_end - config.window_cur)[:, None], unit.shape)
    times = origin[valid] + off[valid]
    u = unit[valid]
    order = np.lexsort((u, times))
    return times[order], u[order]
