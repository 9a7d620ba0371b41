"""Scores of labelled planes for ``bench_real.py`` and the floors of ``tests/test_real_data.py``.

Conventions: planes ``(H, W)`` of any real dtype; labels ``(H, W)`` int, 0 background; boxes
``(row0, col0, row1, col1)`` with the last row/col inclusive (napari / ``Predictor``).

- box IoU: SAM prompted with each truth object's tight box (``Predictor.predict_boxes``);
- one-point IoU: one positive point at the object's centre (the interior pixel furthest from
  its edge, which is inside even for a bent object), three candidates, the best-scored one;
- Gaussian + Otsu in the box (the classical reference): the box's pixels blurred (sigma 1 px),
  thresholded by Otsu (bright objects), holes filled, the largest connected part kept;
- automatic: ``tp``/``fp``/``fn`` at every IoU threshold 0.5:0.05:0.95 after one optimal
  one-to-one matching (for IoU > 0.5 the matching is unique); F1@0.5 = 2TP/(2TP+FP+FN) and
  mSA = mean over thresholds of TP/(TP+FP+FN), as micro-sam and Cellpose report.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)
MIN_TRUTH_AREA = 16  # truth objects below this many pixels (cut by the border) are not prompted


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


def centre_point(mask: np.ndarray) -> tuple[int, int]:
    """The interior pixel furthest from the object's edge, ``(row, col)``."""
    r0, c0, r1, c1 = bbox(mask)
    crop = np.pad(mask[r0:r1 + 1, c0:c1 + 1], 1)
    dist = ndimage.distance_transform_edt(crop)
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return r0 + r - 1, c0 + c - 1


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def pick_objects(labels: np.ndarray, cap: int | None) -> list[int]:
    """Truth ids of at least ``MIN_TRUTH_AREA`` pixels; at most ``cap`` of them, evenly spread
    over the sorted ids (deterministic)."""
    ids, areas = np.unique(labels, return_counts=True)
    ids = [int(i) for i, a in zip(ids, areas, strict=True) if i != 0 and a >= MIN_TRUTH_AREA]
    if cap is not None and len(ids) > cap:
        ids = [ids[i] for i in np.linspace(0, len(ids) - 1, cap).round().astype(int)]
    return ids


def otsu_in_box(plane: np.ndarray, box) -> np.ndarray:
    """``(H, W)`` bool: Gaussian (sigma 1) + Otsu inside ``box``, largest part, holes filled."""
    from skimage.filters import threshold_otsu

    r0, c0, r1, c1 = (int(v) for v in box)
    img = np.asarray(plane)
    m = 4  # blur with a margin, so the box's edge pixels see their neighbours
    a0, b0 = max(r0 - m, 0), max(c0 - m, 0)
    big = ndimage.gaussian_filter(img[a0:r1 + 1 + m, b0:c1 + 1 + m].astype(np.float64), 1.0)
    crop = big[r0 - a0:r1 + 1 - a0, c0 - b0:c1 + 1 - b0]
    out = np.zeros(img.shape[:2], dtype=bool)
    if crop.size < 4 or crop.min() == crop.max():
        return out
    fg = ndimage.binary_fill_holes(crop > threshold_otsu(crop))
    lab, n = ndimage.label(fg)
    if n:
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        out[r0:r1 + 1, c0:c1 + 1] = lab == int(np.argmax(sizes))
    return out


def otsu_labels(plane: np.ndarray) -> np.ndarray:
    """Automatic classical baseline: Gaussian (sigma 1) + global Otsu + connected parts."""
    from skimage.filters import threshold_otsu

    smooth = ndimage.gaussian_filter(np.asarray(plane, dtype=np.float64), 1.0)
    if smooth.min() == smooth.max():
        return np.zeros(smooth.shape, dtype=np.int32)
    fg = ndimage.binary_fill_holes(smooth > threshold_otsu(smooth))
    lab, _ = ndimage.label(fg)
    sizes = np.bincount(lab.ravel())
    lab[sizes[lab] < MIN_TRUTH_AREA] = 0
    return lab.astype(np.int32)


def otsu_box_ious(plane, labels, ids) -> list[float]:
    """Per-object IoU of Gaussian + Otsu inside each truth object's box."""
    return [mask_iou(otsu_in_box(plane, bbox(labels == i)), labels == i) for i in ids]


def box_ious(predictor, labels, ids) -> tuple[list[float], np.ndarray]:
    """Per-object IoU of SAM's mask from each truth object's box, and the masks ``(n, H, W)``
    bool. ``predictor``: a ``napari_devosam.Predictor`` with the plane set."""
    masks = [labels == i for i in ids]
    boxes = np.array([bbox(m) for m in masks], dtype=np.float64).reshape(-1, 4)
    pred, _ = predictor.predict_boxes(boxes)
    return [mask_iou(p, m) for p, m in zip(pred, masks, strict=True)], pred


def point_scores(predictor, labels, ids) -> list[float]:
    """Per-object IoU of the best-scored of three masks from one centre point."""
    out = []
    for i in ids:
        truth = labels == i
        masks, scores, _ = predictor.predict(points=np.array([centre_point(truth)]),
                                             multimask=True)
        out.append(mask_iou(masks[int(np.argmax(scores))], truth))
    return out


def match_counts(pred: np.ndarray, truth: np.ndarray) -> dict:
    """``{"tp": [...], "fp": [...], "fn": [...]}`` at each of ``THRESHOLDS``."""
    from scipy.optimize import linear_sum_assignment

    from napari_devosam.automatic.metrics import iou_table

    iou = iou_table(np.asarray(pred), np.asarray(truth))
    n_p, n_t = iou.shape
    if iou.size:
        rows, cols = linear_sum_assignment(-iou)
        matched = iou[rows, cols]
    else:
        matched = np.zeros(0)
    tp = [int(np.count_nonzero(matched >= t)) for t in THRESHOLDS]
    return {"tp": tp, "fp": [n_p - x for x in tp], "fn": [n_t - x for x in tp]}


def pooled(counts: list[dict]) -> dict:
    """F1@0.5 and mSA of several planes' ``match_counts`` (counts summed first)."""
    if not counts:
        return {"f1": float("nan"), "msa": float("nan")}
    tp, fp, fn = (np.sum([c[k] for c in counts], axis=0) for k in ("tp", "fp", "fn"))
    denom = np.maximum(tp + fp + fn, 1)
    f1 = 2 * tp[0] / max(2 * tp[0] + fp[0] + fn[0], 1)
    return {"f1": float(f1), "msa": float(np.mean(tp / denom)),
            "n_pred": int(tp[0] + fp[0]), "n_true": int(tp[0] + fn[0])}
