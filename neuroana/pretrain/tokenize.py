"""Spike events -> (neuron, time-offset) tokens in current/past windows, vectorised.

A *window* ending at ``t_end`` has a current part ``[t_end - window_cur, t_end)`` (the tokens the model
predicts) and a past part ``[t_end - window_cur - window_past, t_end - window_cur)`` (the memory it
attends to). Every spike becomes one token: its unit's vocabulary index and its continuous offset from
the start of the current window (negative in the past window). Current tokens are in canonical order
(time bin, then unit, then time), so a token sequence is in one-to-one correspondence with the window's
count matrix at ``resolution``.

Everything here is NumPy: one ``searchsorted`` per window edge and flat gathers, no per-token Python
loop.
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
    arrays = [np.asarray(spike_times[u], dtype=np.float64).ravel() for u in ids]
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
    da = as_dataarray(counts, (TIME, UNIT), name="counts")
    c = np.asarray(da.values, dtype=np.float64)
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
    tbin = np.minimum(np.floor(off / config.resolution + 1e-9).astype(np.int64), config.n_dt - 1)
    tbin = np.maximum(tbin, 0)
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


def window_ends(
    t_start: float, t_stop: float, config: TokenConfig, stride: float | None = None
) -> np.ndarray:
    """Ends of consecutive windows covering ``[t_start, t_stop]`` (stride = ``window_cur``).

    Raises
    ------
    TokenizeError
        When one window (past + current) is longer than the interval.

    Examples
    --------
    >>> from neuroana.pretrain.tokenize import TokenConfig, window_ends
    >>> window_ends(0.0, 0.3, TokenConfig(window_cur=0.05, window_past=0.1)).round(3).tolist()
    [0.15, 0.2, 0.25, 0.3]
    """
    stride = config.window_cur if stride is None else float(stride)
    first = t_start + config.window_past + config.window_cur
    if first > t_stop + 1e-9:
        raise TokenizeError(
            f"a window needs window_past + window_cur = {config.window_past + config.window_cur} s "
            f"but the data cover only {t_stop - t_start:.6g} s ([{t_start}, {t_stop}])"
        )
    n = int(np.floor((t_stop - first) / stride + 1e-9)) + 1
    return first + stride * np.arange(n)


@dataclass(frozen=True)
class Split:
    """Window ends of each split and the guard intervals that separate them."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    blocks: dict


def split_windows(
    t_start: float,
    t_stop: float,
    config: TokenConfig,
    *,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    n_blocks: int = 1,
    trials: np.ndarray | None = None,
    gap: float | None = None,
    stride: float | None = None,
    random_state: int | None = 0,
) -> Split:
    """Split time into train/val/test by contiguous blocks (or whole trials) with guard gaps.

    Each split is a set of intervals; a window belongs to an interval when its *whole* span (past and
    current) lies inside it. Intervals of different splits are separated by ``gap`` (default: the past
    window plus the current window, at least the past window), so no spike is seen by two splits.

    Parameters
    ----------
    fractions : (train, val, test)
        Share of the time of each split.
    n_blocks : int
        Time is cut into ``n_blocks`` chunks and each chunk into train/val/test parts (interleaving
        for non-stationary recordings). Ignored with ``trials``.
    trials : array (n_trials, 2), optional
        Trial ``[start, stop)`` intervals; whole trials are assigned to splits at random.
    gap : float, optional
        Guard gap in seconds; must be ``>= window_past``.

    Raises
    ------
    TokenizeError
        When ``gap < window_past``, fractions are invalid, or a split gets no window.

    Examples
    --------
    >>> from neuroana.pretrain.tokenize import TokenConfig, split_windows
    >>> s = split_windows(0, 100, TokenConfig())
    >>> bool(s.train.max() < s.val.min() - 0.2)
    True
    """
    fr = np.asarray(fractions, dtype=float)
    if fr.shape != (3,) or (fr < 0).any() or not np.isclose(fr.sum(), 1.0):
        raise TokenizeError(
            f"fractions must be three non-negative numbers summing to 1, got {fractions}"
        )
    span = config.window_past + config.window_cur
    gap = span if gap is None else float(gap)
    if gap < config.window_past:
        raise TokenizeError(
            f"gap={gap} s is shorter than window_past={config.window_past} s: past windows would "
            "leak spikes across splits"
        )
    blocks: dict[str, list[tuple[float, float]]] = {"train": [], "val": [], "test": []}
    names = ("train", "val", "test")
    if trials is not None:
        tr = np.asarray(trials, dtype=float).reshape(-1, 2)
        rng = np.random.default_rng(random_state)
        perm = rng.permutation(len(tr))
        cuts = np.round(np.cumsum(fr)[:-1] * len(tr)).astype(int)
        for name, part in zip(names, np.split(perm, cuts), strict=True):
            blocks[name] = [(float(a), float(b)) for a, b in tr[np.sort(part)]]
    else:
        if n_blocks < 1:
            raise TokenizeError(f"n_blocks must be >= 1, got {n_blocks}")
        edges = np.linspace(t_start, t_stop, n_blocks + 1)
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            inner = np.concatenate([[a], a + np.cumsum(fr) * (b - a)])
            for k, name in enumerate(names):
                lo = inner[k] + (gap if k > 0 else 0.0)
                hi = inner[k + 1]
                if fr[k] > 0 and hi > lo:
                    blocks[name].append((float(lo), float(hi)))
    out = {}
    for name in names:
        ends = []
        for lo, hi in blocks[name]:
            if hi - lo >= span - 1e-9:
                ends.append(window_ends(lo, hi, config, stride))
        out[name] = np.concatenate(ends) if ends else np.zeros(0)
        if fr[names.index(name)] > 0 and out[name].size == 0:
            raise TokenizeError(
                f"the {name} split gets no window: its blocks {blocks[name]} are shorter than "
                f"window_past + window_cur = {span} s"
            )
    return Split(out["train"], out["val"], out["test"], blocks)


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
    >>> from neuroana.pretrain.tokenize import modality_from_dataarray
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
