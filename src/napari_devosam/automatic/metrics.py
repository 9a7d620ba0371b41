"""Instance-segmentation scores of a label image against ground truth.

Objects are matched one-to-one by the Hungarian algorithm (``scipy.optimize.
linear_sum_assignment``) on their IoU; a match counts when IoU >= ``threshold``. F1 =
2 TP / (2 TP + FP + FN) (as in the StarDist / Cellpose papers' "F1 at IoU 0.5").
"""

from __future__ import annotations

import numpy as np


def iou_table(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``(n_pred, n_true)`` IoU of every pair of objects of two ``(H, W)`` label images (ids
    need not be consecutive; rows/cols follow the sorted non-zero ids)."""
    p_ids, p = np.unique(pred, return_inverse=True)
    t_ids, t = np.unique(truth, return_inverse=True)
    joint = np.bincount(p.ravel() * len(t_ids) + t.ravel(),
                        minlength=len(p_ids) * len(t_ids)).reshape(len(p_ids), len(t_ids))
    inter = joint[p_ids != 0][:, t_ids != 0].astype(np.float64)
    area_p = joint.sum(axis=1)[p_ids != 0][:, None]
    area_t = joint.sum(axis=0)[t_ids != 0][None, :]
    union = area_p + area_t - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_scores(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict:
    """``{"tp", "fp", "fn", "f1", "precision", "recall", "mean_iou"}``; ``mean_iou`` is the
    mean IoU of the matched pairs (NaN with none). Both empty: F1 = 1."""
    from scipy.optimize import linear_sum_assignment

    iou = iou_table(np.asarray(pred), np.asarray(truth))
    n_p, n_t = iou.shape
    rows, cols = linear_sum_assignment(-iou) if iou.size else (np.zeros(0, int),) * 2
    good = iou[rows, cols] >= threshold
    tp = int(good.sum())
    fp, fn = n_p - tp, n_t - tp
    f1 = 1.0 if n_p == n_t == 0 else 2 * tp / (2 * tp + fp + fn)
    return {"tp": tp, "fp": fp, "fn": fn, "f1": f1,
            "precision": tp / n_p if n_p else float(n_t == 0),
            "recall": tp / n_t if n_t else 1.0,
            "mean_iou": float(iou[rows, cols][good].mean()) if tp else float("nan")}
