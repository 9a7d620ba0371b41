"""Grid mode: SAM's automatic mask generator, made fast.

Algorithm: ``segment_anything/automatic_mask_generator.py`` (``SamAutomaticMaskGenerator``,
SAM paper section 7.5 / appendix): a regular grid of ``points_per_side``**2 single-point
prompts, three masks each; keep masks whose predicted IoU exceeds ``pred_iou_thresh`` and
whose stability score (IoU of the masks thresholded at +-``stability_score_offset``) is at
least ``stability_score_thresh``; remove duplicates by box NMS (``box_nms_thresh``, scores =
predicted IoU); optionally remove small islands and holes (``min_mask_region_area``) and
rerun NMS preferring unchanged masks.

What we changed (why it is faster): prompts are decoded ``points_per_batch`` at a time with
the fast decoder; the predicted-IoU and stability filters run on the **low-res** logits
(``4h x 4w``, 256 x 256 for the official models; restricted to the part that maps onto the
image) instead of every mask upsampled to the plane; only the surviving masks are upsampled,
straight to the plane's size (one sparse linear map per axis, equal to
``Sam.postprocess_masks``), and kept as crops. Only one crop layer (``crop_n_layers=0``).
Consequence: the stability score is measured at low resolution (area ratios agree to about
a percent), so a mask whose stock stability is within that margin of the threshold can be
kept by one and dropped by the other; predicted IoU, boxes and NMS are stock's. The islands
and holes step uses scikit-image instead of OpenCV (same connectivity, 8). Parity is
measured in ``tests/automatic/test_grid_parity.py`` and ``benchmarks/bench_automatic.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_devosam.automatic.decoding import PromptDecoder, Proposal, crop_proposals


@dataclass(frozen=True)
class GridParams:
    """``SamAutomaticMaskGenerator``'s parameters (same names and defaults, no crops)."""

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    min_mask_region_area: int = 0


def point_grid_rc(n_per_side: int, shape) -> np.ndarray:
    """``(n*n, 2)`` (row, col) prompts of SAM's grid (``amg.build_point_grid``) on ``shape``
    ``(H, W)``: cell centres of an n x n division of the plane, x fastest."""
    offset = 1 / (2 * n_per_side)
    side = np.linspace(offset, 1 - offset, n_per_side)
    rows, cols = np.meshgrid(side * shape[0], side * shape[1], indexing="ij")
    return np.stack([rows.ravel(), cols.ravel()], axis=1)


def _filtered_batch(dec: PromptDecoder, pts: np.ndarray, p: GridParams):
    from napari_devosam.automatic.decoding import stability_scores

    low, iou = dec.decode(pts[:, None, :], None, multimask=True)
    low, iou = low.flatten(0, 1), iou.flatten(0, 1)
    point_of = np.repeat(np.arange(len(pts)), 3)
    keep = iou > p.pred_iou_thresh if p.pred_iou_thresh > 0 else iou == iou
    vh, vw = dec.valid
    stab = stability_scores(low[:, :vh, :vw], dec.threshold, p.stability_score_offset)
    if p.stability_score_thresh > 0:
        keep &= stab >= p.stability_score_thresh
    idx = keep.nonzero()[:, 0]
    return low[idx], iou[idx].float().cpu().numpy(), stab[idx].float().cpu().numpy(), \
        point_of[idx.cpu().numpy()]


def grid_proposals(dec: PromptDecoder, params: GridParams | None = None) -> list[Proposal]:
    """Masks of SAM's automatic mask generator on ``dec``'s plane, as crops (see module).

    Returns proposals after NMS (and small-region removal), best predicted IoU first.
    """
    p = params or GridParams()
    pts = point_grid_rc(p.points_per_side, dec.plane_shape)
    props: list[Proposal] = []
    for start in range(0, len(pts), p.points_per_batch):
        batch = pts[start:start + p.points_per_batch]
        low, iou, stab, owner = _filtered_batch(dec, batch, p)
        prompts = [{"point": [float(v) for v in batch[i]], "box": None, "source": "grid"}
                   for i in owner]
        props += crop_proposals(dec, low, iou, stab, prompts)
    props = box_nms(props, [q.score for q in props], p.box_nms_thresh)
    if p.min_mask_region_area > 0:
        props = remove_small_regions(props, p.min_mask_region_area, p.box_nms_thresh)
    return props


def box_nms(props: list[Proposal], scores, iou_thresh: float) -> list[Proposal]:
    """``torchvision.ops.batched_nms`` on the proposals' mask boxes (as stock)."""
    import torch
    from torchvision.ops import batched_nms

    if not props:
        return []
    boxes = torch.tensor([q.tight_xyxy() for q in props], dtype=torch.float32)
    s = torch.as_tensor(np.asarray(scores, dtype=np.float32))
    keep = batched_nms(boxes, s, torch.zeros(len(props), dtype=torch.int64), iou_thresh)
    return [props[int(i)] for i in keep]


def remove_small_regions(props: list[Proposal], min_area: int, nms_thresh: float):
    """Stock ``postprocess_small_regions``: fill holes, then drop islands, smaller than
    ``min_area`` pixels; rerun box NMS preferring masks that did not change."""
    from skimage.morphology import remove_small_holes, remove_small_objects

    changed_flags = []
    for q in props:
        m = remove_small_holes(q.mask, area_threshold=min_area, connectivity=2)
        m = remove_small_objects(m, min_size=min_area, connectivity=2) if m.any() else m
        changed_flags.append(not np.array_equal(m, q.mask))
        q.mask = m
    props2 = [q for q in props if q.mask.any()]
    scores = [0.0 if c else 1.0 for q, c in zip(props, changed_flags, strict=True)
              if q.mask.any()]
    return box_nms(props2, scores, nms_thresh)
