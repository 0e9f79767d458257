"""Aggregation of per-sample FISBe results over a split, as the official ``summarize`` module does.

*completely* and *partly* samples are aggregated separately (F1 per threshold from pooled counts,
C = float32 mean of the pooled per-GT coverages, clDice_TP = float32 mean of the pooled TP clDice
values); *combined* averages the two split values of S, avF1, C and each F1, pools tp, and sums
FS, FM and the counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neuroana.segmentation.errors import FisbeInputError

__all__ = ["aggregate"]

_TH9 = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _th(t: float) -> str:
    return "th_" + str(t).replace(".", "_")


def _split(results: Sequence[dict]) -> tuple[float, dict]:
    """Official ``average_flylight_score_over_instances``."""
    gt_covs: list = []
    tp = {t: [] for t in _TH9}
    fp = {t: [] for t in _TH9}
    fn = {t: [] for t in _TH9}
    fm, fs, num_gt, num_pred, tp_05, tp_05_cldice = [], [], [], [], [], []
    gt_dim, gt_covs_dim, tp_05_dim = [], [], []
    gt_ovlp, gt_covs_ovlp, tp_05_ovlp = [], [], []
    for r in results:
        g = r["general"]
        gt_covs += list(np.array(g["gt_skel_coverage"], dtype=np.float32))
        num_gt.append(g["Num GT"])
        num_pred.append(g["Num Pred"])
        fm.append(g["FM"])
        fs.append(g["FS"])
        tp_05.append(g["TP_05"])
        tp_05_cldice += list(np.array(g["TP_05_cldice"], dtype=np.float32))
        gt_dim.append(g["GT_dim"])
        tp_05_dim.append(g["TP_05_dim"])
        gt_covs_dim += list(np.array(g["gt_covs_dim"], dtype=np.float32))
        gt_ovlp.append(g["GT_overlap"])
        tp_05_ovlp.append(g["TP_05_overlap"])
        gt_covs_ovlp += list(np.array(g["gt_covs_overlap"], dtype=np.float32))
        for t in _TH9:
            c = r["confusion_matrix"][_th(t)]
            tp[t].append(c["AP_TP"])
            fp[t].append(c["AP_FP"])
            fn[t].append(c["AP_FN"])
    fscores = []
    for t in _TH9:
        den = 2 * np.sum(tp[t]) + np.sum(fp[t]) + np.sum(fn[t])
        fscores.append(2 * np.sum(tp[t]) / den if den > 0 else 0.0)
    cov = np.mean(gt_covs) if gt_covs else 0.0
    av_s = 0.5 * np.mean(fscores) + 0.5 * cov
    n_gt = np.sum(num_gt)
    general = {
        "Num GT": n_gt,
        "Num Pred": np.sum(num_pred),
        "avg_gt_skel_coverage": cov,
        "avg_f1_cov_score": av_s,
        "avFscore": np.mean(fscores),
        "FM": np.sum(fm),
        "FS": np.sum(fs),
        "TP_05": np.sum(tp_05),
        "TP_05_rel": (np.sum(tp_05) / float(n_gt)) if n_gt > 0 else 0.0,
        "TP_05_cldice": tp_05_cldice,
        "avg_TP_05_cldice": np.mean(tp_05_cldice) if np.sum(tp_05) > 0 else 0.0,
        "GT_dim": np.sum(gt_dim),
        "TP_05_dim": np.sum(tp_05_dim),
        "TP_05_rel_dim": (np.sum(tp_05_dim) / float(np.sum(gt_dim))) if np.sum(gt_dim) > 0 else 0.0,
        "avg_gt_cov_dim": np.mean(gt_covs_dim) if gt_covs_dim else 0.0,
        "GT_overlap": np.sum(gt_ovlp),
        "TP_05_overlap": np.sum(tp_05_ovlp),
        "TP_05_rel_overlap": (np.sum(tp_05_ovlp) / float(np.sum(gt_ovlp)))
        if np.sum(gt_ovlp) > 0
        else 0.0,
        "avg_gt_cov_overlap": np.mean(gt_covs_ovlp) if gt_covs_ovlp else 0.0,
    }
    cm: dict = {"avFscore": np.mean(fscores)}
    for i, t in enumerate(_TH9):
        cm[_th(t)] = {"fscore": fscores[i]}
    cm["th_0_5"].update(AP_TP=np.sum(tp[0.5]), AP_FP=np.sum(fp[0.5]), AP_FN=np.sum(fn[0.5]))
    counts = {
        "general": general,
        "confusion_matrix": cm,
        "gt_covs": gt_covs,
        "tp": [np.sum(tp[t]) for t in _TH9],
        "fp": [np.sum(fp[t]) for t in _TH9],
        "fn": [np.sum(fn[t]) for t in _TH9],
    }
    return av_s, counts


def _sets(acc_a: float, a: dict, acc_b: float, b: dict) -> tuple[float, dict]:
    """Official ``average_sets`` (completely + partly)."""
    acc = np.mean([acc_a, acc_b])
    fscore = np.mean([a["general"]["avFscore"], b["general"]["avFscore"]])
    num_gt = a["general"]["Num GT"] + b["general"]["Num GT"]
    tp_05 = a["general"]["TP_05"] + b["general"]["TP_05"]
    cl = list(a["general"]["TP_05_cldice"]) + list(b["general"]["TP_05_cldice"])
    general = {
        "Num GT": num_gt,
        "Num Pred": a["general"]["Num Pred"] + b["general"]["Num Pred"],
        "avg_gt_skel_coverage": np.mean(
            [a["general"]["avg_gt_skel_coverage"], b["general"]["avg_gt_skel_coverage"]]
        ),
        "avg_f1_cov_score": acc,
        "avFscore": fscore,
        "FM": a["general"]["FM"] + b["general"]["FM"],
        "FS": a["general"]["FS"] + b["general"]["FS"],
        "TP_05": tp_05,
        "TP_05_rel": tp_05 / float(num_gt),
        "avg_TP_05_cldice": np.mean(cl),
    }
    cm: dict = {"avFscore": fscore}
    for t in _TH9:
        ca, cb = a["confusion_matrix"][_th(t)], b["confusion_matrix"][_th(t)]
        cm[_th(t)] = {"fscore": np.mean([ca["fscore"], cb["fscore"]])}
    for k in ("AP_TP", "AP_FP", "AP_FN"):
        cm["th_0_5"][k] = a["confusion_matrix"]["th_0_5"][k] + b["confusion_matrix"]["th_0_5"][k]
    counts = {
        "general": general,
        "confusion_matrix": cm,
        "gt_covs": list(a["gt_covs"]) + list(b["gt_covs"]),
        "tp": [x + y for x, y in zip(a["tp"], b["tp"], strict=True)],
        "fp": [x + y for x, y in zip(a["fp"], b["fp"], strict=True)],
        "fn": [x + y for x, y in zip(a["fn"], b["fn"], strict=True)],
    }
    return acc, counts


def _summary(acc, c: dict, cldice_tp=None) -> dict:
    g = c["general"]
    return {
        "S": float(acc),
        "avF1": float(g["avFscore"]),
        "C": float(g["avg_gt_skel_coverage"]),
        "clDice_TP": float(g["avg_TP_05_cldice"] if cldice_tp is None else cldice_tp),
        "tp": float(g["TP_05_rel"]),
        "FS": int(g["FS"]),
        "FM": int(g["FM"]),
        "nGT": int(g["Num GT"]),
        "nPred": int(g["Num Pred"]),
        "thresholds": list(_TH9),
        "TP": [int(x) for x in c["tp"]],
        "FP": [int(x) for x in c["fp"]],
        "FN": [int(x) for x in c["fn"]],
        "F1_per_threshold": [float(c["confusion_matrix"][_th(t)]["fscore"]) for t in _TH9],
    }


def _py(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, dict):
        return {k: _py(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_py(v) for v in obj]
    return obj


def aggregate(
    results: Sequence[dict],
    names: Sequence[str] | None = None,
    cldice_tp_combined: str = "pooled",
) -> dict:
    """Aggregate per-sample results over completely, partly and combined, as the official code.

    Parameters
    ----------
    results : sequence of dict
        Outputs of :func:`neuroana.segmentation.evaluate_instances` (each carries its
        ``labeling``).
    names : sequence of str, optional
        Sample names, reported under ``cases``.
    cldice_tp_combined : {"pooled", "mean_of_splits"}
        Combined clDice_TP in ``summary``: the official code pools the TP lists of both splits;
        the 2024 leaderboard shows the mean of the two split values.

    Returns
    -------
    dict
        ``completely``, ``partly``, ``combined``: each ``None`` when it has no sample, else
        ``{"cases", "avS", "per_instance_counts"}`` with the official keys; ``summary``: per split
        ``S, avF1, C, clDice_TP, tp, FS, FM, nGT, nPred, TP/FP/FN, F1_per_threshold``.
        With only one kind of sample, ``combined`` equals that split (the official behaviour).

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.segmentation import evaluate_instances
    >>> gt = np.zeros((1, 8, 8, 40), np.uint8)
    >>> gt[0, 2:7, 2:7, 2:38] = 1
    >>> aggregate([evaluate_instances(gt, gt.copy())])["summary"]["combined"]["S"]
    1.0
    """
    if cldice_tp_combined not in ("pooled", "mean_of_splits"):
        raise FisbeInputError(
            f"cldice_tp_combined={cldice_tp_combined!r}; expected 'pooled' or 'mean_of_splits'"
        )
    if len(results) == 0:
        raise FisbeInputError("results is empty; expected at least one evaluated sample")
    names = list(names) if names is not None else [f"sample_{i}" for i in range(len(results))]
    if len(names) != len(results):
        raise FisbeInputError(f"{len(names)} names for {len(results)} results; expected equal")
    out: dict = {"completely": None, "partly": None, "combined": None, "summary": {}}
    parts = {}
    for split in ("completely", "partly"):
        sel = [i for i, r in enumerate(results) if r.get("labeling", "completely") == split]
        if sel:
            acc, c = _split([results[i] for i in sel])
            parts[split] = (acc, c)
            out[split] = {"cases": [names[i] for i in sel], "avS": acc, "per_instance_counts": c}
            out["summary"][split] = _summary(acc, c)
    if len(parts) == 2:
        (aa, ca), (ab, cb) = parts["completely"], parts["partly"]
        acc, c = _sets(aa, ca, ab, cb)
        out["combined"] = {"cases": list(names), "avS": acc, "per_instance_counts": c}
        cl = None
        if cldice_tp_combined == "mean_of_splits":
            cl = np.mean([ca["general"]["avg_TP_05_cldice"], cb["general"]["avg_TP_05_cldice"]])
        out["summary"]["combined"] = _summary(acc, c, cl)
    else:
        (split,) = parts
        out["combined"] = out[split]
        out["summary"]["combined"] = out["summary"][split]
    return _py(out)
