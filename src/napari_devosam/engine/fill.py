"""Fill: the constant pixels a registration, rotation or padding put around the image.

A registered, rotated or padded plane holds one value (0 mostly, or the data's minimum or
mean) where the camera saw nothing. To the seed finder that fill was a region of its own:
a CTC HeLa crop (values 33,000-35,000) padded with 0 became one bright "embryo" whose
straight edges read as membranes (stain membrane, 1 object instead of 40); and to SAM it
squeezed the data into a few grey levels of the percentile stretch (the same crop's
outlines: F1 0.38 against 0.95 unpadded; two new-user trials).

``fill_mask`` finds it: the pixels equal to the value most common on the plane's border,
when that value holds at least ``BORDER_SHARE`` of the border, its parts touching the
border (4-connected) cover at least ``MIN_SHARE`` of the plane, and the data they leave
(at least ``MIN_DATA`` of the plane) is a rectangle, upright or rotated: at least
``RECTANGLE`` of its smallest enclosing rectangle (rotating calipers over its convex hull,
Toussaint 1983). Backgrounds clipped at 0, as in the DevoLearn movies, are as constant,
but the data they leave is an embryo with speckle, not a rectangle. ``without_fill`` gives
the fill, and the ``EDGE_PX`` pixels of data an interpolating rotation blended with it, the
median of the data within ``BAND_PX`` pixels beyond (the image's own edge, background in
microscopy): the seeds and SAM then see one background across the edge.

numpy/scipy only.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

BORDER_SHARE = 0.15  # one padded side of a square plane is a quarter of its border
MIN_SHARE = 0.04  # DevoLearn crops: 0-blocks at a border (2-3 %) left a notched rectangle
MIN_DATA = 0.25
RECTANGLE = 0.97
BAND_PX = 5
EDGE_PX = 2


def fill_mask(plane: np.ndarray) -> np.ndarray | None:
    """``(H, W)`` bool: the fill of a ``(H, W)`` plane (any real dtype; NaN is never fill)
    by the rule of the module docstring, or None when it has none."""
    data = np.asarray(plane)
    if data.ndim != 2 or min(data.shape) < 3:
        return None
    border = np.concatenate([data[0], data[-1], data[1:-1, 0], data[1:-1, -1]])
    values, counts = np.unique(border, return_counts=True)
    if counts.max() < BORDER_SHARE * border.size:
        return None
    parts, _ = ndimage.label(data == values[int(np.argmax(counts))])
    edge = np.unique(np.concatenate([parts[0], parts[-1], parts[:, 0], parts[:, -1]]))
    fill = np.isin(parts, edge[edge > 0])
    share = float(fill.mean())
    if share < MIN_SHARE or share > 1 - MIN_DATA:
        return None
    if not _is_rectangle(~fill):
        return None
    return fill


def _is_rectangle(region: np.ndarray) -> bool:
    """Whether ``region`` (bool) fills at least ``RECTANGLE`` of its smallest enclosing
    (rotated) rectangle."""
    from scipy.spatial import ConvexHull, QhullError

    rim = region & ~ndimage.binary_erosion(region)
    pts = np.argwhere(rim).astype(np.float64)
    try:
        hull = pts[ConvexHull(pts).vertices]
    except (QhullError, ValueError):
        return False
    best = np.inf
    for a, b in zip(hull, np.roll(hull, -1, axis=0), strict=True):
        along = b - a
        length = float(np.hypot(*along))
        if length == 0:
            continue
        u = along / length
        v = np.array([-u[1], u[0]])
        pu, pv = hull @ u, hull @ v
        best = min(best, (np.ptp(pu) + 1) * (np.ptp(pv) + 1))
    return bool(region.sum() >= RECTANGLE * best)


def without_fill(plane: np.ndarray) -> np.ndarray:
    """``plane`` (``(H, W)``) with its fill (``fill_mask``) and the ``EDGE_PX`` pixels next
    to it set to the median of the data within ``BAND_PX`` pixels beyond, as float32; the
    plane itself (same object) when it has none."""
    fill = fill_mask(plane)
    if fill is None:
        return plane
    fill = ndimage.binary_dilation(fill, iterations=EDGE_PX)
    band = ndimage.binary_dilation(fill, iterations=BAND_PX) & ~fill
    out = np.array(plane, dtype=np.float32, copy=True)
    finite = band & np.isfinite(out)
    rest = ~fill & np.isfinite(out)
    out[fill] = float(np.median(out[finite])) if finite.any() else float(np.median(out[rest]))
    return out
