"""Window ends and train/val/test splits of time with guard gaps, so no spike is seen by two
splits (the window geometry is :class:`~neuroana.pretrain.tokenize.TokenConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroana.errors import TokenizeError
from neuroana.pretrain.tokenize import TokenConfig

__all__ = ["Split", "split_windows", "window_ends"]


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
    >>> from neuroana.pretrain import TokenConfig, window_ends
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
    >>> from neuroana.pretrain import TokenConfig, split_windows
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
