"""The division steps of one propagation plane (private to tracking).

After the plane's objects are decoded and made exclusive (``tracking.exclusion``):

1. ``propose_splits``: a single mask holding two stain seeds is cut between them, and a track
   that would end (``end_reason``: the mother's prompt often lands on the new membrane between
   the daughters, and SAM's answer fails the checks) is offered the two free seeds nearest to
   it as daughters (``tracking.divisions.stain_seeds``);
2. ``refine_daughters``: every pair of daughters, from ``tracking.divisions.split.split_mask``
   or from step 1, is decoded again with a box and a point per daughter, in one batch. A pair from
   step 1 stands only when SAM outlines the two halves as two cells (their masks overlap less
   than ``division_max_overlap``); otherwise the object(s) found before step 1 come back.
3. ``redetect``: a track about to end that found no daughters asks SAM about the free stain
   seed nearest to it, and goes on with that cell (held to the looser
   ``division_min_iou_prev``: the cell moved or changed shape, which is why it was lost).
"""

from __future__ import annotations

import numpy as np

from napari_devosam.tracking import prompts as pr
from napari_devosam.tracking.divisions.free_cells import along
from napari_devosam.tracking.divisions.split import split_mask
from napari_devosam.tracking.divisions.stain_seeds import (
    seed_near,
    seed_points,
    sisters_near,
    split_by_seeds,
)
from napari_devosam.tracking.exclusion import exclusive, overlap, owned
from napari_devosam.tracking.params import PropagationParams
from napari_devosam.tracking.records import Crop


def end_reason(parts: list[Crop], previous_area: int, shifted: Crop,
               params: PropagationParams, loose: bool = False) -> tuple[str | None, float]:
    """Why ``parts`` (the new object, or two daughters) end a track, or None, with their IoU
    with the motion-shifted previous mask ``shifted`` (NaN when not reached).

    The reasons, in order: "vanished" (nothing, or fewer than ``min_area`` pixels), "shrank"
    (below ``min_area_fraction`` of ``previous_area``), "IoU with previous 0.xx" (below
    ``min_iou_prev``; daughters, and a cell found again (``loose``), are held to
    ``division_min_iou_prev``). Two daughters that fail that floor still stand when they
    flank their mother (``flank_mother``): daughters that moved apart and grew overlap their
    mother little (on held-out lineage phantoms, union IoU 0.06-0.10 for divisions SAM found
    right).
    """
    area = sum(c.area for c in parts)
    if not parts or area < params.min_area:
        return "vanished", float("nan")
    if area < params.min_area_fraction * previous_area:
        return "shrank", float("nan")
    union = parts[0] if len(parts) == 1 else Crop.from_mask(parts[0].full() | parts[1].full())
    iou_prev = pr.crop_iou(union, shifted)
    floor = params.division_min_iou_prev if len(parts) == 2 or loose else params.min_iou_prev
    if iou_prev < floor and not (len(parts) == 2 and flank_mother(parts, shifted, params)):
        return f"IoU with previous {iou_prev:.2f}", iou_prev
    return None, iou_prev


def flank_mother(daughters: list[Crop], mother: Crop, params: PropagationParams) -> bool:
    """True when two daughters lie on either side of their (motion-shifted) mother: each
    centroid within ``division_search_radius`` equivalent radii (``sqrt(area / pi)``) of the
    mother's centroid, and the mother's centroid projects onto the segment between the
    daughters' centroids (within a quarter of its length beyond either end)."""
    if mother.area == 0:
        return False
    m = np.asarray(mother.centroid(), dtype=float)
    a, b = (np.asarray(d.centroid(), dtype=float) for d in daughters)
    reach = params.division_search_radius * np.sqrt(mother.area / np.pi)
    if max(np.linalg.norm(a - m), np.linalg.norm(b - m)) > reach:
        return False
    return -0.25 <= along(m, a, b) <= 1.25  # False for NaN (coinciding daughters)


def _blocked(owner: np.ndarray, index: int, locked) -> np.ndarray:
    """Pixels object ``index`` may not take: other objects' (``owner``) and ``locked`` ones."""
    blocked = (owner != 0) & (owner != index + 1)
    if locked is not None:
        blocked |= np.asarray(locked, dtype=bool)
    return blocked


def propose_splits(found: list[list[Crop]], shifted: list[Crop], ending: set[int],
                   seeds, owner: np.ndarray, params: PropagationParams
                   ) -> dict[int, list[Crop]]:
    """Replace entries of ``found`` by two seed halves or sisters (step 1); returns
    ``{index: what was there before}`` for the entries replaced."""
    before = {}
    points = seed_points(seeds)
    for i, parts in enumerate(found):
        if i in ending:
            free = (owner == 0) | (owner == i + 1)
            halves = sisters_near(seeds, shifted[i], free, params)
        elif len(parts) == 1:
            halves = split_by_seeds(parts[0], points, params)
        else:
            continue
        if halves:
            before[i] = parts
            found[i] = halves
    return before


def refine_daughters(decoder, params: PropagationParams, found: list[list[Crop]],
                     owner: np.ndarray, locked, before: dict[int, list[Crop]]) -> None:
    """Decode each daughter of every pair in ``found`` on its own (step 2), in place. Each pair
    shares its pixels by logit; pixels ``owner`` gives to other objects, and ``locked`` ones,
    stay out. A pair is replaced only when both refined daughters keep
    ``division_min_area`` pixels."""
    p = params
    pairs = [i for i, parts in enumerate(found) if len(parts) == 2]
    if not pairs:
        return
    crops = [c for i in pairs for c in found[i]]
    boxes = np.array([pr.clip_to_plane(pr.grown_box(pr.bbox(c), p.box_margin, p.box_margin_px),
                                       owner.shape) for c in crops])
    points = np.array([pr.interior_point(c) for c in crops])
    logits, _, _ = decoder.decode(boxes, points, [None] * len(crops))
    threshold = float(getattr(decoder.sam, "mask_threshold", 0.0))
    for j, i in enumerate(pairs):
        pair = slice(2 * j, 2 * j + 2)
        if i in before and overlap(logits[pair], threshold) > p.division_max_overlap:
            found[i] = before[i]  # SAM sees one cell: no division
            continue
        sub = exclusive(logits[pair], boxes[pair], _blocked(owner, i, locked), p.clip_margin_px,
                        threshold)
        refined = [split_mask(owned(sub, k + 1, boxes[2 * j + k], p.clip_margin_px), p,
                              detect=False) for k in range(2)]
        if all(r and r[0].area >= p.division_min_area for r in refined):
            found[i] = [r[0] for r in refined]
        elif i in before:
            found[i] = before[i]  # a half SAM does not outline is no daughter


def redetect(decoder, params: PropagationParams, lost: dict[int, Crop], seeds,
             owner: np.ndarray, locked) -> dict[int, tuple[Crop, float, object]]:
    """Find lost cells again (step 3): for each ``{index: motion-shifted previous mask}`` of
    a track about to end with no division, SAM prompted with the box and point of the nearest
    free stain seed (``stain_seeds.seed_near``), all in one batch. Returns ``{index:
    (mask, predicted IoU, low-res logits)}`` for those that give an object of at least
    ``min_area`` pixels on free pixels."""
    p = params
    asks = {}
    for i, shifted in lost.items():
        crop = seed_near(seeds, shifted, (owner == 0) | (owner == i + 1), p)
        if crop is not None:
            asks[i] = crop
    if not asks:
        return {}
    order = list(asks)
    boxes = np.array([pr.clip_to_plane(pr.grown_box(pr.bbox(asks[i]), p.box_margin,
                                                    p.box_margin_px), owner.shape)
                      for i in order])
    points = np.array([pr.interior_point(asks[i]) for i in order])
    logits, low_res, iou = decoder.decode(boxes, points, [None] * len(order))
    threshold = float(getattr(decoder.sam, "mask_threshold", 0.0))
    out = {}
    for j, i in enumerate(order):
        sub = exclusive(logits[j:j + 1], boxes[j:j + 1], _blocked(owner, i, locked),
                        p.clip_margin_px, threshold)
        parts = split_mask(owned(sub, 1, boxes[j], p.clip_margin_px), p, detect=False)
        if parts and parts[0].area >= p.min_area:
            out[i] = (parts[0], float(iou[j]), low_res[j])
    return out
