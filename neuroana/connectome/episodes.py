"""Components per episode of an epochs table, and the communities of each episode's component group.

A component belongs to the episode that holds at least ``threshold`` of its time-factor mass (the
sum of its window factor over the windows whose centre lies inside the episode, divided by the sum
over all windows). An episode that no component reaches this way (a short episode: its component
keeps some mass elsewhere, as every factor has a floor) takes the component with the largest share
in it, provided that share is at least 1.5 times the episode's share of the windows and that component
belongs to no other episode. The episode's *group affinity* is the sum of its components' pair factors, each
weighted by its CP weight, its time mass inside the episode and its mean animal factor; the
communities of that ROI x ROI matrix are the episode's communities.

Two per-animal numbers per episode, both divided by their largest value over animals:

``animal_factor``
    The same weighted sum of the group's CP animal factors.
``animal_loading``
    How strongly the animal expresses the group's pair pattern: the least-squares slope (with an
    intercept) of the animal's affinities, averaged over the episode's windows, on the group
    affinity, over the pairs observed in that animal (clipped at 0). The intercept takes the
    *noise floor* of clipped correlations, which every pair of every animal has (about 0.4 noise
    standard deviations; for 30-s windows of calcium traces at a few Hz it is as large as the
    community signal). An animal without the episode's structure has only that floor, so its CP
    animal factor stays high (a component that fits the floor of the others) while its slope is
    near 0. This is the number to read for "does this animal take part in the episode".
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from neuroana.errors import ConnectomeInputError


class Epochs(NamedTuple):
    """Validated episodes: ``start``, ``stop`` (s) and ``name`` arrays."""

    start: np.ndarray
    stop: np.ndarray
    name: np.ndarray


def _names(df: pd.DataFrame) -> np.ndarray:
    for col in ("name", "stimulus", "label", "epoch"):
        if col in df.columns:
            return np.asarray([str(v) for v in df[col]])
    if "tags" in df.columns and all(isinstance(t, list | tuple) and t for t in df["tags"]):
        names = np.asarray([str(t[0]) for t in df["tags"]])
        if len(set(names)) == len(names):
            return names
    return np.asarray([str(i) for i in df.index])


def as_epochs(epochs, t_first: float, t_last: float, tolerance: float = 0.0) -> Epochs:
    """Check an epochs table against the recording ``[t_first, t_last]`` (seconds).

    ``epochs`` is a DataFrame with ``start_time``/``stop_time`` (as
    :func:`neuroana.io.read_intervals` returns) or ``start``/``stop`` columns, a sequence of
    ``(start, stop)`` or ``(start, stop, name)`` rows. Names come from a ``name``, ``stimulus``,
    ``label`` or ``epoch`` column, else the first tag, else the row index.

    Raises
    ------
    ConnectomeInputError
        Missing columns, an empty table, non-finite times, ``stop <= start``, or an episode that
        reaches outside the recording (by more than ``tolerance`` seconds).

    Examples
    --------
    >>> from neuroana.connectome.episodes import as_epochs
    >>> as_epochs([(0, 10, "a"), (10, 20, "b")], 0.0, 20.0).name.tolist()
    ['a', 'b']
    """
    if isinstance(epochs, pd.DataFrame):
        df = epochs
    else:
        rows = [tuple(r) for r in epochs]
        if rows and all(len(r) == 3 for r in rows):
            df = pd.DataFrame(rows, columns=["start_time", "stop_time", "name"])
        elif rows and all(len(r) == 2 for r in rows):
            df = pd.DataFrame(rows, columns=["start_time", "stop_time"])
        else:
            raise ConnectomeInputError(
                f"epochs={epochs!r}; expected a DataFrame with start_time/stop_time columns or "
                "(start, stop[, name]) rows"
            )
    cols = ("start_time", "stop_time") if "start_time" in df.columns else ("start", "stop")
    if not set(cols) <= set(df.columns):
        raise ConnectomeInputError(
            f"epochs table has columns {list(df.columns)}; expected start_time and stop_time"
        )
    if len(df) == 0:
        raise ConnectomeInputError("epochs table is empty; expected at least one episode")
    start = np.asarray(df[cols[0]], dtype=float)
    stop = np.asarray(df[cols[1]], dtype=float)
    names = _names(df)
    if not (np.isfinite(start).all() and np.isfinite(stop).all()):
        raise ConnectomeInputError("epochs table has non-finite start or stop times")
    bad = np.flatnonzero(stop <= start)
    if bad.size:
        k = int(bad[0])
        raise ConnectomeInputError(
            f"episode {names[k]!r} has stop {stop[k]} <= start {start[k]}; expected stop > start"
        )
    out = np.flatnonzero((start < t_first - tolerance) | (stop > t_last + tolerance))
    if out.size:
        k = int(out[0])
        raise ConnectomeInputError(
            f"episode {names[k]!r} [{start[k]}, {stop[k]}] s lies outside the recording "
            f"[{t_first}, {t_last}] s; expected epochs on the traces' time axis"
        )
    return Epochs(start, stop, names)


class EpisodeGroups(NamedTuple):
    """Result of :func:`episode_groups` (``E`` episodes, ``R`` components)."""

    share: np.ndarray  # (E, R) share of each component's time mass inside each episode
    members: np.ndarray  # (E, R) bool: the component belongs to the episode
    pair_affinity: np.ndarray  # (E, P) group affinity per pair (0 where the group is empty)
    animal_factor: np.ndarray  # (E, A) weighted CP animal factor, max 1 (NaN: empty group)
    animal_loading: np.ndarray  # (E, A) slope on the group pattern, max 1 (NaN: empty group)


def episode_groups(
    pair_factor: np.ndarray,
    window_factor: np.ndarray,
    animal_factor: np.ndarray,
    weights: np.ndarray,
    window_time: np.ndarray,
    epochs: Epochs,
    threshold: float = 0.5,
    affinity: np.ndarray | None = None,
) -> EpisodeGroups:
    """Group components by episode (see the module docstring).

    ``affinity`` is the ``(pair, window, animal)`` tensor the factors were fitted to (NaN where
    unobserved); without it ``animal_loading`` is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.connectome.episodes import Epochs, episode_groups
    >>> wf = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
    >>> g = episode_groups(np.ones((3, 2)), wf, np.ones((2, 2)), np.ones(2), np.array([1, 2, 3]),
    ...                    Epochs(np.array([0, 2.5]), np.array([2.5, 4]), np.array(["a", "b"])))
    >>> g.members.tolist()
    [[True, False], [False, True]]
    """
    if not 0 < threshold <= 1:
        raise ConnectomeInputError(f"episode_threshold={threshold}; expected in (0, 1]")
    t = np.asarray(window_time, dtype=float)
    inside = (t[None, :] >= epochs.start[:, None]) & (t[None, :] < epochs.stop[:, None])  # (E, W)
    total = window_factor.sum(0)
    mass = inside.astype(float) @ window_factor  # (E, R)
    share = mass / np.where(total > 0, total, 1.0)
    members = share >= threshold
    frac = inside.mean(1)  # (E,) the episode's share of the windows
    for e in np.flatnonzero(~members.any(1)):
        free = ~members.any(0)
        if not free.any():
            continue
        r = int(np.flatnonzero(free)[np.argmax(share[e, free])])
        if share[e, r] >= 1.5 * frac[e] and frac[e] > 0:
            members[e, r] = True
    n_ep = inside.shape[0]
    pair = np.zeros((n_ep, pair_factor.shape[0]))
    fac = np.full((n_ep, animal_factor.shape[0]), np.nan)
    load = np.full_like(fac, np.nan)
    for e in range(n_ep):
        grp = np.flatnonzero(members[e])
        if grp.size == 0:
            continue
        wts = weights[grp] * mass[e, grp]
        pair[e] = pair_factor[:, grp] @ (wts * animal_factor[:, grp].mean(0))
        per_animal = animal_factor[:, grp] @ (wts * pair_factor[:, grp].mean(0))
        fac[e] = per_animal / max(float(per_animal.max()), 1e-300)
        if affinity is not None and inside[e].any():
            load[e] = _slopes(affinity[:, inside[e], :], pair[e])
    return EpisodeGroups(share, members, pair, fac, load)


def _slopes(x: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """Per animal: slope (with intercept) of the window-mean affinity on ``pattern``, max 1."""
    cnt = np.isfinite(x).sum(1)
    mean = np.where(cnt > 0, np.nansum(x, axis=1) / np.maximum(cnt, 1), np.nan)  # (P, A)
    out = np.full(x.shape[2], np.nan)
    for a in range(x.shape[2]):
        ok = np.isfinite(mean[:, a])
        if ok.sum() < 3:
            continue
        p = pattern[ok] - pattern[ok].mean()
        var = float((p * p).sum())
        if var > 0:
            out[a] = max(float((p * (mean[ok, a] - mean[ok, a].mean())).sum()) / var, 0.0)
    top = np.nanmax(out) if np.isfinite(out).any() else np.nan
    return out / top if top and top > 0 else out
