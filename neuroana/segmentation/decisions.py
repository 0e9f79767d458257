"""What the FISBe matcher decided for each instance (TP, FN, FP, false split, false merge).

:func:`instance_decisions` runs the same evaluation as
:func:`~neuroana.segmentation.evaluate_instances` (one pre-processing and skeletonisation pass) and
also returns the per-instance outcome behind its counts, for display (the napari view) and error
analysis. Nothing here changes a number: the counts it implies equal the result's.

- TP / FN / FP at one localisation threshold (default 0.5, the ``TP_05`` threshold): the greedy
  one-to-one clDice matching; FP follows the labelling rule (completely: every unmatched prediction;
  partly: an unmatched prediction whose skeleton lies mostly inside a GT instance).
- false split / false merge: the many-to-many clRecall matching behind ``FS`` (threshold 0.05) and
  ``FM`` (threshold 0.1): a GT matched to several predictions is split, a prediction matched to
  several GT instances is a merge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neuroana.segmentation._matching import greedy_one_to_one, many_to_many
from neuroana.segmentation.errors import FisbeInputError
from neuroana.segmentation.metrics import (
    FM_THRESH,
    FS_THRESH,
    THRESHOLDS,
    _evaluate,
    _prepare,
    _th_name,
)

__all__ = ["InstanceDecisions", "instance_decisions"]


@dataclass(frozen=True)
class InstanceDecisions:
    """Per-instance outcome of one FISBe evaluation (GT ids ``1..n_gt``, prediction ids
    ``1..n_pred`` after the official size filter and relabelling).

    Attributes
    ----------
    shape : (Z, Y, X)
    threshold : float
        Localisation threshold of the TP / FN / FP decisions.
    result : dict
        The full metrics dict, identical to ``evaluate_instances`` on the same input.
    gt_voxels, pred_voxels : tuple of ndarray
        Flat voxel indices of each instance (``np.unravel_index(v, shape)``).
    gt_skeletons, pred_skeletons : tuple of (z, y, x) arrays
        Skeleton voxel coordinates of each instance.
    gt_match : ndarray (n_gt,)
        Prediction id matched one-to-one at ``threshold`` (0: none, i.e. a false negative).
    pred_match : ndarray (n_pred,)
        GT id matched at ``threshold`` (0: none).
    pred_false_positive : ndarray of bool (n_pred,)
        Counted as a false positive at ``threshold``.
    splits : dict {gt id: [pred ids]}
        GT instances matched to several predictions (false split); ``FS`` is the sum of
        ``len - 1``.
    merges : dict {pred id: [gt ids]}
        Predictions matched to several GT instances (false merge); ``FM`` is the sum of ``len - 1``.
    """

    shape: tuple[int, int, int]
    threshold: float
    result: dict
    gt_voxels: tuple[np.ndarray, ...]
    pred_voxels: tuple[np.ndarray, ...]
    gt_skeletons: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]
    pred_skeletons: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]
    gt_match: np.ndarray
    pred_match: np.ndarray
    pred_false_positive: np.ndarray
    splits: dict
    merges: dict

    def ids(self) -> dict[str, list[int]]:
        """Instance ids per category: ``TP`` (predictions), ``FN`` (GT), ``FP``,
        ``false split`` and ``false merge`` (predictions)."""
        return {
            "TP": [int(i) + 1 for i in np.flatnonzero(self.pred_match)],
            "FN": [int(i) + 1 for i in np.flatnonzero(self.gt_match == 0)],
            "FP": [int(i) + 1 for i in np.flatnonzero(self.pred_false_positive)],
            "false split": sorted({p for ps in self.splits.values() for p in ps}),
            "false merge": sorted(self.merges),
        }

    def counts(self) -> dict[str, int]:
        """``TP``, ``FN``, ``FP`` at ``threshold`` and ``FS``, ``FM`` implied by the decisions."""
        return {
            "TP": int(np.count_nonzero(self.pred_match)),
            "FN": int(np.count_nonzero(self.gt_match == 0)),
            "FP": int(np.count_nonzero(self.pred_false_positive)),
            "FS": sum(len(v) - 1 for v in self.splits.values()),
            "FM": sum(len(v) - 1 for v in self.merges.values()),
        }


def instance_decisions(
    gt,
    pred,
    labeling: str = "completely",
    dim_neurons: Sequence[int] = (),
    threshold: float = 0.5,
) -> InstanceDecisions:
    """Evaluate like :func:`~neuroana.segmentation.evaluate_instances` and keep per-instance
    decisions.

    Parameters
    ----------
    gt, pred, labeling, dim_neurons
        As for :func:`~neuroana.segmentation.evaluate_instances` (lazy inputs work the same way).
    threshold : float
        Localisation threshold of the TP / FN / FP decisions; one of ``THRESHOLDS``.

    Returns
    -------
    InstanceDecisions
        ``counts()`` equals the result's ``AP_TP``/``AP_FN``/``AP_FP`` at ``threshold`` and its
        ``FS``/``FM``.

    Raises
    ------
    FisbeInputError
        A threshold the official code does not evaluate, or any bad input.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((2, 12, 12, 80), np.uint8)  # two 5 x 5 x 76 tubes
    >>> gt[0, 1:6, 1:6, 2:78] = 1; gt[1, 6:11, 6:11, 2:78] = 2
    >>> pred = gt[:1].copy()  # GT 1 found, GT 2 missed
    >>> d = instance_decisions(gt, pred)
    >>> d.ids()["TP"], d.ids()["FN"], d.counts()["FN"]
    ([1], [2], 1)
    """
    if float(threshold) not in THRESHOLDS:
        raise FisbeInputError(f"threshold={threshold!r}; expected one of {THRESHOLDS}")
    s, dim_rel = _prepare(gt, pred, labeling, dim_neurons)
    partly = labeling == "partly"
    result = _evaluate(s, partly, dim_rel, labeling)
    ng, npred = s.ng, s.np_
    gt_match = np.zeros(ng, dtype=np.int64)
    pred_match = np.zeros(npred, dtype=np.int64)
    if min(ng, npred) > 0 and np.max(s.loc) > threshold:
        gi, pi = greedy_one_to_one(s.loc, threshold)
        gt_match[gi - 1] = pi
        pred_match[pi - 1] = gi
    unmatched = pred_match == 0
    if partly:
        fp = np.zeros(npred, dtype=bool)
        un = np.flatnonzero(unmatched) + 1
        if len(un):
            fp[un[np.argmax(s.prec[:, un], axis=0) > 0] - 1] = True
    else:
        fp = unmatched
    overlaps = s.gt.has_overlap or s.pred.has_overlap
    fs_m = many_to_many(s.recall, FS_THRESH, overlaps, s.membership)
    fm_m = many_to_many(s.recall, FM_THRESH, overlaps, s.membership)
    per_pred: dict[int, list[int]] = {}
    for g, ps in sorted(fm_m.items()):
        for p in ps:
            per_pred.setdefault(p, []).append(g)
    decisions = InstanceDecisions(
        shape=s.gt.shape,
        threshold=float(threshold),
        result=result,
        gt_voxels=s.gt.flat,
        pred_voxels=s.pred.flat,
        gt_skeletons=tuple(s.gt_skel),
        pred_skeletons=tuple(s.pred_skel),
        gt_match=gt_match,
        pred_match=pred_match,
        pred_false_positive=fp,
        splits={g: sorted(ps) for g, ps in fs_m.items() if len(ps) > 1},
        merges={p: gs for p, gs in per_pred.items() if len(gs) > 1},
    )
    _check_counts(decisions, _th_name(float(threshold)))
    return decisions


def _check_counts(d: InstanceDecisions, th: str) -> None:
    """Internal consistency: the decisions reproduce the result's counts (a bug if not)."""
    cm, gen, c = d.result["confusion_matrix"][th], d.result["general"], d.counts()
    got = (c["TP"], c["FN"], c["FP"], c["FS"], c["FM"])
    want = (cm["AP_TP"], cm["AP_FN"], cm["AP_FP"], gen["FS"], gen["FM"])
    if got != want:  # pragma: no cover - would mean the decisions drifted from the metrics
        raise RuntimeError(f"instance decisions {got} disagree with the metrics {want}")
