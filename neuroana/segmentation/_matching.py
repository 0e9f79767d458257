"""Matching rules of the FISBe metrics: greedy one-to-one and greedy many-to-many.

Both follow the official rules exactly (strict ``>`` against the threshold with float32
comparison for float32 matrices, ties broken by lower GT id then lower prediction id; the
many-to-many matching consumes skeleton voxels with a lazily invalidated priority queue).
The many-to-many version works on per-GT skeleton voxels only.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from itertools import count

import numpy as np

__all__ = ["greedy_one_to_one", "many_to_many", "SkeletonMembership"]


def greedy_one_to_one(loc: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching on ``loc`` (with background row/column 0); returns 1-based (gt, pred)."""
    fg = loc[1:, 1:]
    gi, pi = np.nonzero(fg > thresh)
    vals = fg[gi, pi]
    order = np.lexsort((pi, gi, -vals))
    used_g: set[int] = set()
    used_p: set[int] = set()
    out_g, out_p = [], []
    for g, p in zip(gi[order], pi[order], strict=True):
        if g in used_g or p in used_p:
            continue
        used_g.add(int(g))
        used_p.add(int(p))
        out_g.append(g)
        out_p.append(p)
    return np.asarray(out_g, dtype=np.int64) + 1, np.asarray(out_p, dtype=np.int64) + 1


@dataclass(frozen=True)
class SkeletonMembership:
    """For one GT skeleton: which GT and which predicted instances cover each skeleton voxel."""

    gt_ids: np.ndarray  # (n_gt_channels, n_skel) 1-based ids, 0 = none
    pred_ids: np.ndarray  # (n_pred_channels, n_skel)

    @property
    def size(self) -> int:
        return self.gt_ids.shape[1]

    def pred_mask(self, p: int) -> np.ndarray:
        return (self.pred_ids == p).any(axis=0)

    def gt_mask(self, g: int) -> np.ndarray:
        return (self.gt_ids == g).any(axis=0)


class _LazyQueue:
    """Min-heap with versioned keys; replicates the official queue's push/invalidate/pop."""

    def __init__(self) -> None:
        self._heap: list = []
        self._version: dict = {}
        self._tb = count()

    def push(self, key, priority) -> None:
        v = self._version.get(key, 0) + 1
        self._version[key] = v
        heapq.heappush(self._heap, (priority, next(self._tb), v, key))

    def invalidate(self, key) -> None:
        if key in self._version:
            self._version[key] = -1

    def pop(self):
        while self._heap:
            _, _, v, key = heapq.heappop(self._heap)
            if self._version.get(key) == v:
                del self._version[key]
                return key
        return None


def many_to_many(
    recall: np.ndarray,
    thresh: float,
    overlaps: bool,
    membership,
) -> dict[int, list[int]]:
    """Many-to-many matches ``{gt_id: [pred_id, ...]}`` (1-based) on the clRecall matrix.

    ``membership(g)`` returns the :class:`SkeletonMembership` of GT ``g`` (1-based); it is only
    called when ``overlaps`` is true.
    """
    fg = recall[1:, 1:]
    above = fg > thresh
    gi, pi = np.nonzero(above)
    if not overlaps:
        out: dict[int, list[int]] = {}
        for g, p in zip(gi, pi, strict=True):
            out.setdefault(int(g) + 1, []).append(int(p) + 1)
        return out
    if len(gi) == 0:
        return {}
    q = _LazyQueue()
    for g, p in zip(gi, pi, strict=True):
        q.push((int(g), int(p)), -fg[g, p])
    mem = {int(g): membership(int(g) + 1) for g in np.unique(gi)}
    gt_avail = {g: np.ones(m.size, dtype=bool) for g, m in mem.items()}
    removed_from_pred: dict[int, list[int]] = {}  # pred -> GTs whose masks were taken away
    matches: dict[int, list[int]] = {}

    def pred_avail_on(p: int, g2: int) -> np.ndarray:
        m = mem[g2]
        avail = m.pred_mask(p + 1)
        for r in removed_from_pred.get(p, ()):
            avail &= ~m.gt_mask(r + 1)
        return avail

    while True:
        key = q.pop()
        if key is None:
            break
        g, p = key
        matches.setdefault(g, []).append(p)
        gt_avail[g] &= ~mem[g].pred_mask(p + 1)
        removed_from_pred.setdefault(p, []).append(g)
        den = float(mem[g].size) or 1.0
        for o in np.nonzero(above[g, :])[0]:
            o = int(o)
            new = np.sum(gt_avail[g] & mem[g].pred_mask(o + 1)) / den
            if new > thresh:
                q.push((g, o), -new)
            else:
                q.invalidate((g, o))
        for o in np.nonzero(above[:, p])[0]:
            o = int(o)
            den2 = float(mem[o].size) or 1.0
            new = np.sum(pred_avail_on(p, o)) / den2
            if new > thresh:
                q.push((o, p), -new)
            else:
                q.invalidate((o, p))
    return {g + 1: [p + 1 for p in ps] for g, ps in matches.items()}


def split_merge_counts(matches: dict[int, list[int]], n_pred: int) -> tuple[int, int]:
    """(false merges, false splits) from many-to-many matches."""
    fs = sum(max(0, len(v) - 1) for v in matches.values())
    per_pred = np.zeros(n_pred + 1, dtype=np.int64)
    for v in matches.values():
        for p in v:
            per_pred[p] += 1
    fm = int(np.maximum(per_pred[1:] - 1, 0).sum())
    return fm, fs
