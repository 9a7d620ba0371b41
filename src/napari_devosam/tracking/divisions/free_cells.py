"""A division whose second daughter nobody claimed (private to tracking).

When a cell divides, the mother's prompt often brings back one daughter only: the track goes
on as that daughter and the other is left to no one. After the other division steps of a
plane (``tracking.divisions.steps``), every stain seed (``tracking.divisions.stain_seeds``) that no
object covers is a cell nobody tracks. A free seed becomes the sister of the tracked cell that
it flanks with the track's previous (motion-shifted) mask between them: the mother's centroid
projects onto the middle of the segment joining the two cells' centroids
(``free_sister_between``), and the seed lies within ``division_search_radius`` equivalent
radii of it. SAM outlines the free cell (box and point of its seed basin, free pixels only),
and the track divides into the cell it kept and that one. A tracked cell that does not divide
stays where its mother was (projection near 0), so an untracked neighbour is not taken for a
daughter. This heuristic is this package's own.
"""

from __future__ import annotations

import numpy as np

from napari_devosam.tracking import prompts as pr
from napari_devosam.tracking.divisions.split import split_mask
from napari_devosam.tracking.divisions.stain_seeds import existed_before, seed_points
from napari_devosam.tracking.exclusion import exclusive, owned
from napari_devosam.tracking.params import PropagationParams
from napari_devosam.tracking.records import Crop


def along(mother, a, b) -> float:
    """Where point ``mother`` projects on the segment from ``a`` to ``b`` (0 at ``a``, 1 at
    ``b``); NaN when ``a`` and ``b`` coincide. Points are (row, col)."""
    m, a, b = (np.asarray(v, dtype=float) for v in (mother, a, b))
    axis = b - a
    length2 = float(axis @ axis)
    return float((m - a) @ axis) / length2 if length2 else float("nan")


def _occupied(found: list[list[Crop]], shape, locked) -> np.ndarray:
    taken = np.zeros(shape, dtype=bool) if locked is None else np.asarray(locked, bool).copy()
    for parts in found:
        for c in parts:
            r0, c0 = c.offset
            h, w = c.data.shape
            taken[r0:r0 + h, c0:c0 + w] |= c.data
    return taken


def _claims(found, shifted, mothers, candidates, seeds, previous_seeds, free, params
            ) -> dict[int, Crop]:
    """``{track index: free seed basin}``: each free seed to the one track it flanks best
    (smallest distance to the mother in her equivalent radii), one seed per track."""
    points = seed_points(seeds)
    h, w = free.shape
    claims, taken = {}, set()
    scored = []
    for k, (r, c) in enumerate(points):
        if not (0 <= r < h and 0 <= c < w) or not free[r, c] or np.isnan(seeds.boxes[k]).any():
            continue
        for i in candidates:
            mother = shifted[i]
            radius = np.sqrt(mother.area / np.pi)
            m = np.asarray(mother.centroid())
            dist = float(np.linalg.norm((r, c) - m)) / radius
            t = along(m, found[i][0].centroid(), (r, c))
            lo = params.free_sister_between
            if dist <= params.division_search_radius and lo <= t <= 1 - lo:
                scored.append((dist, k, i))
    previous = None
    for _, k, i in sorted(scored):
        if i in claims or k in taken:
            continue
        if previous is None:
            previous = seed_points(previous_seeds())
        radius = np.sqrt(shifted[i].area / np.pi)
        if existed_before(points[k], previous, mothers[i], 0.5 * radius):
            continue
        r0, c0, r1, c1 = (int(v) for v in seeds.boxes[k])
        basin = np.zeros((h, w), dtype=bool)
        basin[r0:r1 + 1, c0:c1 + 1] = free[r0:r1 + 1, c0:c1 + 1]
        if basin.sum() >= params.division_min_area:
            claims[i] = Crop.from_mask(basin)
            taken.add(k)
    return claims


def claim_free_sisters(decoder, params: PropagationParams, found: list[list[Crop]],
                       shifted: list[Crop], mothers: list[Crop], skip: set[int], seeds,
                       previous_seeds, locked) -> set[int]:
    """Give a track that went on as one cell the free cell it flanks as a second daughter.

    ``found``: per track index, its object(s) on this plane (changed in place: a track that
    divides gets ``[its cell, the free cell]``); ``shifted`` and ``mothers``: its previous
    masks, motion-shifted and as they were; ``skip``: indices not to consider (cells found
    again; a track about to end is considered: its one cell and a free sister that flank the
    mother are a division); ``seeds``: the plane's stain seeds; ``previous_seeds()``: those of
    the previous plane (called only when needed): a free cell that had a seed there, outside
    the mother, existed before and is nobody's daughter (an untracked neighbour);
    ``locked``: ``(H, W)`` bool pixels no object may take, or None. All free cells are
    decoded in one batch. Returns the indices that divided.
    """
    p = params
    candidates = [i for i, parts in enumerate(found)
                  if len(parts) == 1 and i not in skip and shifted[i].area > 0]
    if not candidates or seeds is None or len(seeds) == 0:
        return set()
    shape = found[candidates[0]][0].shape
    free = ~_occupied(found, shape, locked)
    claims = _claims(found, shifted, mothers, candidates, seeds, previous_seeds, free, p)
    if not claims:
        return set()
    order = list(claims)
    boxes = np.array([pr.clip_to_plane(pr.grown_box(pr.bbox(claims[i]), p.box_margin,
                                                    p.box_margin_px), shape) for i in order])
    points = np.array([pr.interior_point(claims[i]) for i in order])
    logits, _, iou = decoder.decode(boxes, points, [None] * len(order))
    threshold = float(getattr(decoder.sam, "mask_threshold", 0.0))
    divided = set()
    for j, i in enumerate(order):
        if p.min_pred_iou > 0 and float(iou[j]) < p.min_pred_iou:
            continue
        sub = exclusive(logits[j:j + 1], boxes[j:j + 1], ~free, p.clip_margin_px, threshold)
        parts = split_mask(owned(sub, 1, boxes[j], p.clip_margin_px), p, detect=False)
        if parts and parts[0].area >= p.division_min_area:
            found[i] = [found[i][0], parts[0]]
            free &= ~parts[0].full()
            divided.add(i)
    return divided
