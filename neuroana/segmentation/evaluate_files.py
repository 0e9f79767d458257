"""File-level FISBe evaluation (what ``neuroana fisbe evaluate`` runs)."""

from __future__ import annotations

from neuroana.segmentation.errors import FisbeInputError
from neuroana.segmentation.metrics import evaluate_instances, key_metrics

__all__ = ["evaluate_files"]

PRED_KEYS = ("volumes/pred_instances", "volumes/gt_instances")


def evaluate_files(gt_path, pred_path, split_file=None, labeling: str | None = None) -> dict:
    """Evaluate a predicted FISBe sample against its ground truth (zarr directories).

    Parameters
    ----------
    gt_path : str or Path
        FISBe sample with ``volumes/gt_instances`` (its ``dim_neurons`` attribute is used).
    pred_path : str or Path
        Zarr with ``volumes/pred_instances`` (or, failing that, ``volumes/gt_instances``).
    split_file : str or Path, optional
        Official split list; decides completely/partly from the GT sample name.
    labeling : {"completely", "partly"}, optional
        Overrides the split file; default ``"completely"`` when neither is given.

    Returns
    -------
    dict
        ``sample``, ``labeling``, ``gt_path``, ``pred_path``, ``summary`` (S, avF1, C, clDice_TP,
        tp, FS, FM, counts, TP/FP/FN per threshold) and ``metrics`` (the official per-sample dict).

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> from neuroana.io.fisbe import write_fisbe
    >>> gt = np.zeros((1, 8, 8, 40), np.uint8); gt[0, 2:7, 2:7, 2:38] = 1
    >>> d = tempfile.mkdtemp()
    >>> write_fisbe(os.path.join(d, "a.zarr"), gt=gt)
    >>> write_fisbe(os.path.join(d, "a_pred.zarr"), pred=gt)
    >>> evaluate_files(os.path.join(d, "a.zarr"), os.path.join(d, "a_pred.zarr"))["summary"]["S"]
    1.0
    """
    from neuroana.io.fisbe import GT_KEY, PRED_KEY, open_fisbe_labels, read_fisbe

    if labeling not in (None, "completely", "partly"):
        raise FisbeInputError(f"labeling={labeling!r}; expected 'completely', 'partly' or None")
    g = read_fisbe(gt_path, split_file=split_file)
    if "gt" not in g:
        raise FisbeInputError(f"{gt_path} has no 'volumes/gt_instances'; expected a GT sample")
    p = read_fisbe(pred_path)
    pred = p["pred"] if "pred" in p else p.get("gt")
    if pred is None:
        raise FisbeInputError(
            f"{pred_path} has neither of {PRED_KEYS}; expected a predicted instance array"
        )
    if labeling is None:
        labeling = g.attrs["labeling"] if g.attrs["labeling"] != "unknown" else "completely"
    # evaluate_instances reads one channel at a time (never both volumes at once), from the
    # stored chunks only
    gt_arr = open_fisbe_labels(gt_path, GT_KEY)
    pred_arr = open_fisbe_labels(pred_path, PRED_KEY if "pred" in p else GT_KEY)
    result = evaluate_instances(gt_arr, pred_arr, labeling, g.attrs["dim_neurons"])
    return {
        "sample": g.attrs["sample"],
        "labeling": labeling,
        "split": g.attrs["split"],
        "gt_path": str(gt_path),
        "pred_path": str(pred_path),
        "summary": key_metrics(result),
        "metrics": result,
    }
