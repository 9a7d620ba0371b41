"""Division detection: a new mask that falls apart into two substantial parts.

When a cell divides between two planes, SAM prompted with the mother's box (and its logits)
tends to return both daughters: one mask of two separate blobs. Such a mask is split into two
daughters when the two largest 8-connected components each hold at least
``division_min_fraction`` of the area and ``division_min_area`` pixels, and lie within
``division_max_gap_px`` of each other (further apart, the smaller part is a leak into another
object, not a daughter). Small fragments are dropped in every case. This criterion is a
simple heuristic of this package (not from a publication); its thresholds are in
``PropagationParams``. Divisions found this way are scored with the Cell Tracking Challenge's
measures (Ulman et al. 2017, Nat. Methods 14:1141) in ``benchmarks/bench_tracking.py``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_devosam.tracking.params import PropagationParams
from napari_devosam.tracking.records import Crop

EIGHT = np.ones((3, 3), dtype=bool)


def _part(crop: Crop, labels: np.ndarray, index: int) -> Crop:
    sub = labels == index
    rows = np.flatnonzero(sub.any(axis=1))
    cols = np.flatnonzero(sub.any(axis=0))
    data = sub[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].copy()
    return Crop((crop.offset[0] + int(rows[0]), crop.offset[1] + int(cols[0])), data, crop.shape)


def split_mask(crop: Crop, params: PropagationParams, detect: bool = True) -> list[Crop]:
    """The object(s) in a new mask: ``[crop]`` cleaned of fragments, two daughters for a
    division (only when ``detect`` and ``params.detect_divisions``), or ``[]`` when empty."""
    if crop.data.size == 0 or not crop.data.any():
        return []
    labels, n = ndimage.label(crop.data, structure=EIGHT)
    if n == 1:
        return [crop]
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(-sizes, kind="stable")
    first, second = int(order[0]) + 1, int(order[1]) + 1
    total = int(sizes.sum())
    big = sizes[order[1]] >= max(params.division_min_fraction * total, params.division_min_area)
    if detect and params.detect_divisions and big:
        dist = ndimage.distance_transform_edt(labels != first)
        gap = float(dist[labels == second].min())
        if gap <= params.division_max_gap_px + 1:
            return [_part(crop, labels, first), _part(crop, labels, second)]
    return [_part(crop, labels, first)]
