"""Prompts for the next plane from an object's mask on the current one.

- a box: the mask's bounding box, moved by the object's recent motion (constant velocity
  from the last two centroids) and grown by a margin;
- a positive point: the mask's interior maximum, the pixel farthest from the mask's border
  by the Euclidean distance transform (a robust "centre" also for concave shapes;
  Maurer et al. 2003, as ``scipy.ndimage.distance_transform_edt``), moved likewise.

All coordinates are napari's ``(row, col)`` pixel coordinates.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_devosam.tracking.records import Crop


def interior_point(crop: Crop) -> tuple[float, float]:
    """``(row, col)`` of the mask's pixel farthest from its border (first on ties)."""
    if crop.data.size == 0:
        raise ValueError("an empty mask has no interior point")
    padded = np.pad(crop.data, 1)
    dist = ndimage.distance_transform_edt(padded)
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return (float(r - 1 + crop.offset[0]), float(c - 1 + crop.offset[1]))


def bbox(crop: Crop) -> np.ndarray:
    """``(row0, col0, row1, col1)`` of the mask's pixel centres, float64."""
    h, w = crop.data.shape
    r, c = crop.offset
    return np.array([r, c, r + h - 1, c + w - 1], dtype=np.float64)


def grown_box(box: np.ndarray, margin: float, margin_px: float) -> np.ndarray:
    """``box`` grown on each side by ``margin`` times its size plus ``margin_px`` pixels."""
    h, w = box[2] - box[0] + 1, box[3] - box[1] + 1
    grow = np.array([-margin * h, -margin * w, margin * h, margin * w])
    return box + grow + np.array([-margin_px, -margin_px, margin_px, margin_px])


def inside_fraction(box: np.ndarray, shape: tuple[int, int]) -> float:
    """Fraction of ``box``'s area that lies inside a plane of ``shape`` (pixel-centre frame)."""
    h, w = shape
    area = max(box[2] - box[0], 1e-9) * max(box[3] - box[1], 1e-9)
    dr = max(0.0, min(box[2], h - 1) - max(box[0], 0))
    dc = max(0.0, min(box[3], w - 1) - max(box[1], 0))
    return float(min(1.0, dr * dc / area))


def clip_to_plane(box: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    return np.array([max(box[0], 0), max(box[1], 0), min(box[2], h - 1), min(box[3], w - 1)])


def shift_crop(crop: Crop, shift: tuple[float, float]) -> Crop:
    """``crop`` moved by ``shift`` (row, col), rounded to pixels; parts outside are kept
    (IoU against it then counts them as missed)."""
    dr, dc = (int(round(s)) for s in shift)
    return Crop((crop.offset[0] + dr, crop.offset[1] + dc), crop.data, crop.shape)


def crop_iou(a: Crop, b: Crop) -> float:
    """Intersection over union of two cropped masks (0 when both are empty)."""
    (ar, ac), (br, bc) = a.offset, b.offset
    r0, c0 = min(ar, br), min(ac, bc)
    r1 = max(ar + a.data.shape[0], br + b.data.shape[0])
    c1 = max(ac + a.data.shape[1], bc + b.data.shape[1])
    canvas = np.zeros((2, r1 - r0, c1 - c0), dtype=bool)
    canvas[0, ar - r0:ar - r0 + a.data.shape[0], ac - c0:ac - c0 + a.data.shape[1]] = a.data
    canvas[1, br - r0:br - r0 + b.data.shape[0], bc - c0:bc - c0 + b.data.shape[1]] = b.data
    union = np.count_nonzero(canvas[0] | canvas[1])
    return float(np.count_nonzero(canvas[0] & canvas[1]) / union) if union else 0.0


def velocity(centroids: list[tuple[float, float]], factor: float) -> tuple[float, float]:
    """Last centroid displacement times ``factor`` ((0, 0) with fewer than two centroids)."""
    if len(centroids) < 2 or factor == 0:
        return (0.0, 0.0)
    (r0, c0), (r1, c1) = centroids[-2], centroids[-1]
    return (factor * (r1 - r0), factor * (c1 - c0))
