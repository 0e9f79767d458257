"""Components per episode of an epochs table, and the communities of each episode's component group.

A component belongs to the episode that holds at least ``threshold`` of its time-factor mass (the
sum of its window factor over the windows whose centre lies inside the episode, divided by the sum
over all windows). An episode that no component reaches this way (a short episode: its component
keeps some mass elsewhere, as every factor has a floor) takes the component with the largest share
in it, provided that share is at least 1.5 times the episode's share of the windows and that component
belongs to no other episode. The episode's *group affinity* is the sum of its components' pair factors, each
weighted by its CP weight, its time mass inside the episode and its mean animal factor; the
communities of that ROI x ROI matrix are the episode's communities.

One per-animal number per episode, ``animal_loading`` ("does this animal take part in the
episode"): the CP model's **animal mode refitted to the floor-free tensor** over the episode's
windows, summed over the group's components (each weighted by its refitted weight, its time mass
inside the episode and its mean pair factor) and divided by its largest value over animals.

Why a refit: the tensor the factorisation fits is the clipped correlation minus each
``(window, animal)`` slice's mean, clipped at 0 again (``baseline="mean"``; see
:mod:`neuroana.connectome.affinity`). Clipping keeps a positive *noise floor*: an animal without
the episode's structure still has the positive half of its noise, so the fitted CP animal factor
of the episode's component stays high for it (0.6 of the largest on
``../shared/cases/connectome_multi_animal``: the component fits the floor too). The refit keeps
the fitted pair and window factors and solves, for every animal, the non-negative least squares
of the *signed* floor-free tensor (the same values before the last clip, whose noise has mean 0)
on the components' pair x window patterns (:func:`neuroana.connectome.ntf.refit_factor`). An
animal that only has noise then gets a loading near 0, one that expresses the pattern its share
of it. This is the only animal loading the estimator reports; the CP ``animal_factor`` of
``result_`` is the fit to the clipped tensor and includes the floor.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from neuroana.connectome.ntf import refit_factor
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
    animal_loading: np.ndarray  # (E, A) weighted group animal factor, max 1 (NaN: empty group)


def episode_groups(
    pair_factor: np.ndarray,
    window_factor: np.ndarray,
    animal_factor: np.ndarray,
    weights: np.ndarray,
    window_time: np.ndarray,
    epochs: Epochs,
    threshold: float = 0.5,
    floor_free: np.ndarray | None = None,
) -> EpisodeGroups:
    """Group components by episode (see the module docstring).

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
    load = np.full((n_ep, animal_factor.shape[0]), np.nan)
    for e in range(n_ep):
        grp = np.flatnonzero(members[e])
        if grp.size == 0:
            continue
        wts = weights[grp] * mass[e, grp]
        pair[e] = pair_factor[:, grp] @ (wts * animal_factor[:, grp].mean(0))
        per_animal = animal_factor[:, grp] @ (wts * pair_factor[:, grp].mean(0))
        if floor_free is not None and inside[e].any():
            # the animal mode refitted on the episode's windows of the floor-free tensor
            facs = [pair_factor, window_factor[inside[e]], animal_factor]
            unit, new_w = refit_factor(floor_free[:, inside[e], :], facs, weights, mode=2)
            per_animal = unit[:, grp] @ (new_w[grp] * mass[e, grp] * pair_factor[:, grp].mean(0))
        load[e] = per_animal / max(float(per_animal.max()), 1e-300)
    return EpisodeGroups(share, members, pair, load)
