"""FISBe benchmark metrics (Mais et al., CVPR 2024), identical to the official evaluation code.

The official code is ``evalinstseg`` (Kainmueller-Lab/evaluate-instance-segmentation, commit
cc34f4d) with its ``--app flylight`` preset: clDice localisation, greedy matching, size filter
``<= 800`` voxels on the prediction, FM/FS by many-to-many matching at clRecall 0.1/0.05,
coverage, dim and overlap sub-metrics. This module returns the same per-sample dict (keys
``general`` and ``confusion_matrix``, same names and values, float32 quantities as the float64
value of the float32) and aggregates like ``summarize.aggregate_and_report``, but skeletonises
each instance once, visiting only its own voxels (the same Lee thinning as ``skeletonize``), and
works on skeleton voxels: no relabelled copy of the volume and no full-volume pass per instance.

Deviations, only where the official code cannot produce a result: a ground truth without any
instance raises :class:`EmptyGroundTruthError` (official: ZeroDivisionError); GT and prediction
with different spatial shapes raise :class:`FisbeInputError` (official: centre-crops the larger);
a multi-channel prediction whose channels are all empty after the size filter counts as an empty
prediction (official: ValueError on an empty array); an overlapping GT with an empty prediction
gives ``TP_05_overlap = 0`` (official: ValueError).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from neuroana.backend.cores import usable_cores
from neuroana.segmentation._instances import (
    Instances,
    LazyChannels,
    as_label_channels,
    build_instances,
    is_lazy,
)
from neuroana.segmentation._matching import (
    SkeletonMembership,
    greedy_one_to_one,
    many_to_many,
    split_merge_counts,
)
from neuroana.segmentation._skeleton import skeleton_of_flat, submit_skeletons
from neuroana.segmentation.errors import EmptyGroundTruthError, FisbeInputError

__all__ = ["THRESHOLDS", "evaluate_instances", "key_metrics"]

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.55, 0.65, 0.75, 0.85, 0.95)
MIN_SIZE = 800
FM_THRESH = 0.1
FS_THRESH = 0.05


def _th_name(th: float) -> str:
    return "th_" + str(th).replace(".", "_")


def _py(obj):
    """numpy scalars/arrays to Python types, as the official toml writer does."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, dict):
        return {k: _py(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_py(v) for v in obj]
    return obj


class _Sample:
    """Skeletons and localisation matrices of one sample, computed once."""

    def __init__(self, gt: Instances, pred: Instances, gt_skel: list, pred_skel: list) -> None:
        self.gt, self.pred = gt, pred
        self.ng, self.np_ = gt.n, pred.n
        self.gt_skel, self.pred_skel = gt_skel, pred_skel
        self._gt_mem: dict[int, SkeletonMembership] = {}
        self.recall = np.zeros((self.ng + 1, self.np_ + 1), dtype=np.float32)
        self.prec = np.zeros((self.ng + 1, self.np_ + 1), dtype=np.float32)
        self.pred_gt_ids = []  # per pred: GT ids at its skeleton voxels
        for g, sk in enumerate(self.gt_skel, start=1):
            self.recall[g] = _row(self.membership(g).pred_ids, len(sk[0]), self.np_)
        for p, sk in enumerate(self.pred_skel, start=1):
            ids = gt.ids_at(sk)
            self.pred_gt_ids.append(ids)
            self.prec[:, p] = _row(ids, len(sk[0]), self.ng)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.loc = np.nan_to_num(2 * self.prec * self.recall / (self.prec + self.recall))

    def membership(self, g: int) -> SkeletonMembership:
        if g not in self._gt_mem:
            sk = self.gt_skel[g - 1]
            self._gt_mem[g] = SkeletonMembership(self.gt.ids_at(sk), self.pred.ids_at(sk))
        return self._gt_mem[g]

    def recall_without_gt_overlap(self) -> np.ndarray:
        """clRecall with GT-overlap voxels removed from GT and prediction (old FM counter)."""
        out = self.recall.copy()
        for g in range(1, self.ng + 1):
            ov = self.gt.overlap_voxels[g - 1]
            if len(ov) == 0:
                continue
            rest = np.setdiff1d(self.gt.flat[g - 1], ov, assume_unique=True)
            sk = skeleton_of_flat(rest, self.gt.shape)
            out[g] = 0
            if len(rest):
                out[g] = _row(self.pred.ids_at(sk), len(sk[0]), self.np_)
        return out


def _row(ids: np.ndarray, n_skel: int, n_other: int) -> np.ndarray:
    """Fractions of ``n_skel`` skeleton voxels covered by each id (col 0: by none), as float32."""
    row = np.zeros(n_other + 1, dtype=np.float32)
    if n_skel == 0:
        return row
    cnt = np.bincount(ids[ids > 0], minlength=n_other + 1)
    cnt[0] = int(np.count_nonzero(~(ids > 0).any(axis=0)))
    present = np.flatnonzero(cnt)
    row[present] = cnt[present] / float(n_skel)
    return row


def _coverage(
    s: _Sample,
    members: Sequence[int],
    prec: np.ndarray,
    recall_rows: np.ndarray,
    gt_overlap: bool,
) -> list:
    """Per-GT skeleton coverage (official ``get_gt_coverage``) for GT ids ``members``.

    ``prec`` is the (len(members)+1, nPred+1) clPrecision matrix of this GT subset and
    ``recall_rows`` the matching clRecall rows (row 0 = background).
    """
    max_gt = np.argmax(prec, axis=0)
    covs: list = []
    if gt_overlap and s.pred.has_overlap:
        assigned = np.unique(max_gt[max_gt > 0])
        for i, g in enumerate(members, start=1):
            if i not in assigned:
                covs.append(0.0)
                continue
            preds = np.flatnonzero(max_gt == i)
            pid = s.membership(g).pred_ids
            inside = np.isin(pid, preds).any(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                covs.append(np.float64(np.count_nonzero(inside)) / np.float64(len(inside)))
    else:
        for i in range(1, recall_rows.shape[0]):
            covs.append(np.sum(recall_rows[i, max_gt == i]))
    return covs


def _subset_metrics(s: _Sample, rel_ids: Sequence[int], require_pred: bool):
    """GT_x, TP_05_x, TP_05_rel_x, gt_covs_x, avg_gt_cov_x for a GT subset (dim / overlap)."""
    k = len(rel_ids)
    if k == 0 or (require_pred and s.np_ == 0):
        return k, 0, 0.0, [], 0
    n_ch = len(s.gt.channels)
    channels = []
    for g in rel_ids:
        if not 0 <= g - 1 < n_ch:
            raise FisbeInputError(
                f"GT instance id {g} has no channel {g - 1}; the official dim/overlap metrics "
                f"expect one GT instance per channel ({n_ch} channels)"
            )
        channels.append(g - 1)
    members: list[int] = []  # original GT ids of the sequentially relabelled subset
    for c in channels:
        members.extend(int(i) + 1 for i in np.flatnonzero(s.gt.channel_of == c))
    prec = np.zeros((len(members) + 1, s.np_ + 1), dtype=np.float32)
    # subset label per (subset channel position, original id)
    pos = 0
    lut = []
    for c in channels:
        ids_c = [int(i) + 1 for i in np.flatnonzero(s.gt.channel_of == c)]
        lut.append({g: pos + j + 1 for j, g in enumerate(ids_c)})
        pos += len(ids_c)
    for p in range(1, s.np_ + 1):
        gids = s.pred_gt_ids[p - 1]
        n_skel = gids.shape[1]
        if n_skel == 0:
            continue
        sub = np.zeros((len(channels), n_skel), dtype=np.int64)
        for r, (c, m) in enumerate(zip(channels, lut, strict=True)):
            row = gids[c]
            for g, new in m.items():
                sub[r][row == g] = new
        prec[:, p] = _row(sub, n_skel, len(members))
    flats = [s.gt.flat[g - 1] for g in members]
    if len(flats) > 1:
        allf = np.concatenate(flats)
        sub_overlap = len(np.unique(allf)) < len(allf)
    else:
        sub_overlap = False
    rows = [0] + list(rel_ids)
    covs = _coverage(s, members, prec, s.recall[rows], sub_overlap)
    avg = np.mean(covs)
    loc_sub = s.loc[rows]
    tp = 0
    if loc_sub[1:, 1:].size and np.max(loc_sub[1:, 1:]) > 0.5:
        tp = len(greedy_one_to_one(loc_sub, 0.5)[0])
    return k, tp, tp / float(k), covs, avg


def _prepare(gt, pred, labeling: str, dim_neurons: Sequence[int]) -> tuple[_Sample, list[int]]:
    """Validate, pre-process both sides and skeletonise: the shared start of every evaluation."""
    if labeling not in ("completely", "partly"):
        raise FisbeInputError(f"labeling={labeling!r}; expected 'completely' or 'partly'")
    g = LazyChannels(gt, "gt") if is_lazy(gt) else as_label_channels(gt, "gt")
    p = LazyChannels(pred, "pred") if is_lazy(pred) else as_label_channels(pred, "pred")
    if g.shape[1:] != p.shape[1:]:
        raise FisbeInputError(
            f"gt spatial shape {g.shape[1:]} differs from pred spatial shape {p.shape[1:]}; "
            "expected the same (Z, Y, X)"
        )
    gi = build_instances(g, None)
    if gi.n == 0:
        raise EmptyGroundTruthError(
            f"gt of shape {g.shape} holds no instance (all zero); expected at least one "
            "(the official code raises ZeroDivisionError here)"
        )
    dim_rel = []
    for v in dim_neurons:
        hit = np.flatnonzero(gi.fw_values == int(v))
        if len(hit) == 0:
            raise FisbeInputError(
                f"dim_neurons value {v} is not a GT label; GT labels are {gi.fw_values.tolist()}"
            )
        dim_rel.append(int(gi.fw_ids[hit[0]]))
    # GT instances are thinned (GIL released) while the prediction is read
    with ThreadPoolExecutor(max_workers=usable_cores()) as pool:
        gt_fut = submit_skeletons(pool, gi.flat, gi.shape)
        try:
            pi = build_instances(p, MIN_SIZE)
        except BaseException:
            for f in gt_fut:
                f.cancel()
            raise
        pred_fut = submit_skeletons(pool, pi.flat, pi.shape)
        gt_skel = [f.result() for f in gt_fut]
        pred_skel = [f.result() for f in pred_fut]
    return _Sample(gi, pi, gt_skel, pred_skel), dim_rel


def evaluate_instances(
    gt,
    pred,
    labeling: str = "completely",
    dim_neurons: Sequence[int] = (),
) -> dict:
    """FISBe metrics of one sample, exactly as the official evaluation computes them.

    Parameters
    ----------
    gt : array-like of int, shape (N, Z, Y, X) or (Z, Y, X)
        Ground-truth instances, FISBe layout (one neuron per channel, value ``i + 1``); a
        DataArray with dims ``("instance", "z", "y", "x")`` works too. Lazy arrays (zarr, dask,
        h5py, numpy memmap, dask-backed DataArray) are read one channel at a time, so peak memory
        is about one dense channel plus the non-zero voxels; in-memory arrays are used in place.
    pred : array-like of int, shape (M, Z, Y, X) or (Z, Y, X)
        Predicted instances: one per channel, a label map, packed channels or binary masks.
    labeling : {"completely", "partly"}
        Partly labelled samples count an unmatched prediction as false positive only when its
        skeleton lies mostly inside a GT instance.
    dim_neurons : sequence of int
        GT label values flagged as dim (the ``dim_neurons`` attribute of FISBe GT).

    Returns
    -------
    dict
        ``{"labeling", "general", "confusion_matrix"}``; ``general`` and ``confusion_matrix`` hold
        the official per-sample keys (``Num GT``, ``TP_05_cldice``, ``gt_skel_coverage``,
        ``avg_f1_cov_score`` (S), ``FM``, ``FS``, ...; ``th_0_1`` ... with ``AP_TP``, ``AP_FP``,
        ``AP_FN``, ``fscore``, ...). Use :func:`key_metrics` for the leaderboard quantities.

    Raises
    ------
    FisbeInputError
        Non-integer or negative ids, mismatched spatial shapes, a wrong number of axes.
    EmptyGroundTruthError
        The ground truth has no instance.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((1, 8, 8, 40), np.uint8)
    >>> gt[0, 2:7, 2:7, 2:38] = 1  # a 5 x 5 x 36 tube (900 voxels: above the size filter)
    >>> r = evaluate_instances(gt, gt.copy())
    >>> r["general"]["Num GT"], r["general"]["avg_f1_cov_score"]
    (1, 1.0)
    """
    s, dim_rel = _prepare(gt, pred, labeling, dim_neurons)
    return _evaluate(s, labeling == "partly", dim_rel, labeling)


def _evaluate(s: _Sample, partly: bool, dim_rel: list[int], labeling: str) -> dict:
    ng, npred = s.ng, s.np_
    loc, prec, recall = s.loc, s.prec, s.recall
    overlaps = s.gt.has_overlap or s.pred.has_overlap
    general: dict = {"Num GT": ng, "Num Pred": npred}
    cm: dict = {}
    recall_wo = s.recall_without_gt_overlap() if (partly and overlaps) else recall
    aps, fscores = [], []
    tp_05, tp_05_cldice = 0, []
    num_matches = min(ng, npred)
    for th in THRESHOLDS:
        if num_matches > 0 and np.max(loc) > th:
            gt_ind, pred_ind = greedy_one_to_one(loc, th)
            tp = len(gt_ind)
        else:
            gt_ind = pred_ind = np.zeros(0, dtype=np.int64)
            tp = 0
        tbl: dict = {}
        if partly:
            allp = np.arange(1, npred + 1)
            un = allp[np.isin(allp, pred_ind, invert=True)]
            fs_ind = un[np.argmax(prec[:, un], axis=0) > 0]
            fp = len(fs_ind)
            loc_mask = (recall[1:, 1:] > th) & (recall_wo[1:, 1:] > th)
            fm_count = int(np.sum(np.maximum(0, np.sum(loc_mask, axis=0) - 1)))
        else:
            fp = npred - tp
        fn = ng - tp
        tbl["AP_TP"], tbl["AP_FP"], tbl["AP_FN"] = tp, fp, fn
        precision = 1.0 * tp / max(1, tp + fp)
        rec = 1.0 * tp / max(1, tp + fn)
        ap = precision * rec
        aps.append(ap)
        fscore = (2.0 * precision * rec) / (precision + rec) if (precision + rec) > 0 else 0.0
        fscores.append(fscore)
        tbl.update(precision=precision, recall=rec, AP=ap, fscore=fscore)
        if partly:
            tbl["false_split"] = len(fs_ind)
            tbl["false_merge"] = fm_count
        cm[_th_name(th)] = tbl
        if th == 0.5:
            tp_05 = tp
            tp_05_cldice = list(loc[gt_ind, pred_ind])
    av_f19 = np.mean(fscores[:-5])
    cm["avAP"] = np.mean(aps[4:])
    cm["avAP59"] = np.mean(aps[4:])
    cm["avAP19"] = np.mean(aps[:-5])
    cm["avFscore"] = av_f19
    cm["avFscore59"] = np.mean(fscores[4:])
    cm["avFscore19"] = av_f19

    general["TP_05"] = tp_05
    general["TP_05_rel"] = tp_05 / float(ng)
    general["TP_05_cldice"] = tp_05_cldice
    general["avg_TP_05_cldice"] = np.mean(tp_05_cldice) if tp_05_cldice else 0.0
    all_gt = list(range(1, ng + 1))
    gt_cov = _coverage(s, all_gt, prec, recall, s.gt.has_overlap)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cov = np.mean(gt_cov)
    general["gt_skel_coverage"] = gt_cov
    general["avg_gt_skel_coverage"] = cov
    general["avg_f1_cov_score"] = 0.5 * av_f19 + 0.5 * cov
    fm = split_merge_counts(many_to_many(recall, FM_THRESH, overlaps, s.membership), npred)[0]
    fs = split_merge_counts(many_to_many(recall, FS_THRESH, overlaps, s.membership), npred)[1]
    general["FM"], general["FS"] = fm, fs
    d = _subset_metrics(s, dim_rel, require_pred=True)
    for key, v in zip(
        ("GT_dim", "TP_05_dim", "TP_05_rel_dim", "gt_covs_dim", "avg_gt_cov_dim"), d, strict=True
    ):
        general[key] = v
    ovl = [g for g in all_gt if len(s.gt.overlap_voxels[g - 1])]
    o = _subset_metrics(s, ovl, require_pred=False)
    keys = ("GT_overlap", "TP_05_overlap", "TP_05_rel_overlap", "gt_covs_overlap")
    for key, v in zip(keys + ("avg_gt_cov_overlap",), o, strict=True):
        general[key] = v
    return {"labeling": labeling, "general": _py(general), "confusion_matrix": _py(cm)}


def key_metrics(result: dict) -> dict:
    """Leaderboard quantities of one sample (official single-sample aggregation).

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((1, 8, 8, 40), np.uint8)
    >>> gt[0, 2:7, 2:7, 2:38] = 1
    >>> key_metrics(evaluate_instances(gt, gt.copy()))["TP"][0]
    1
    """
    from neuroana.segmentation.aggregate import aggregate

    return aggregate([result])["summary"][result["labeling"]]
