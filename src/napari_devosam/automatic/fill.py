"""Fill: the constant pixels a registration, rotation or padding put around the image.

A registered or rotated plane is padded with one value (0 mostly, or the lowest or highest
value of the data) where the camera saw nothing. To the seed finder that fill is a region of
its own: a CTC HeLa crop (values 33,000-35,000) padded with 0 became one bright "embryo" whose
straight edges read as membranes (stain membrane, 1 object instead of 40), and the corners
of a zero-padded plane became "nuclei" in the second round (a new-user trial).

``fill_mask`` finds it: the pixels equal to the value most common on the plane's border
when that value is the plane's lowest or highest, holds at least ``BORDER_SHARE`` of the
border, and its parts touching the border (4-connected) cover at least ``MIN_SHARE`` of the
plane, leaving data that fill their convex hull (``CONVEX``: padding and rotation leave a
rectangle, while the DevoLearn movies' backgrounds, clipped at 0 in video-compression
blocks, are 30-60 % zeros around the embryo and its speckle); a fill that leaves less than
``MIN_DATA`` of the plane is not one. ``without_fill``
gives the fill, and the ``EDGE_PX`` pixels of data a rotation blended with it, the median
of the data within ``BAND_PX`` pixels beyond (the image's own edge, background in
microscopy), so the seeds see one background across the edge.

numpy/scipy/scikit-image only.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

BORDER_SHARE = 0.3
MIN_SHARE = 0.02
MIN_DATA = 0.25
BAND_PX = 5
EDGE_PX = 2  # the data's pixels next to the fill that a rotation blended with it
CONVEX = 0.97  # of its convex hull: the data a padding or rotation leaves is convex


def fill_mask(plane: np.ndarray) -> np.ndarray | None:
    """``(H, W)`` bool: the fill of a ``(H, W)`` plane by the rule of the module docstring,
    or None when it has none."""
    data = np.asarray(plane)
    border = np.concatenate([data[0], data[-1], data[1:-1, 0], data[1:-1, -1]])
    values, counts = np.unique(border, return_counts=True)
    value = values[int(np.argmax(counts))]
    if counts.max() < BORDER_SHARE * border.size:
        return None
    if value != data.min() and value != data.max():
        return None
    same = data == value
    parts, _ = ndimage.label(same)
    edge = np.unique(np.concatenate([parts[0], parts[-1], parts[:, 0], parts[:, -1]]))
    fill = np.isin(parts, edge[edge > 0])
    share = fill.mean()
    if share < MIN_SHARE or share > 1 - MIN_DATA:
        return None
    from skimage.morphology import convex_hull_image

    data_part = ~fill
    if data_part.sum() < CONVEX * convex_hull_image(data_part).sum():
        return None  # the data is no (rotated) rectangle: a background clipped at 0
    return fill


def without_fill(plane: np.ndarray) -> np.ndarray:
    """``plane`` (float ``(H, W)``) with its fill (``fill_mask``) and the ``EDGE_PX``
    pixels next to it set to the median of the data within ``BAND_PX`` pixels beyond; the
    plane itself when it has no fill."""
    fill = fill_mask(plane)
    if fill is None:
        return plane
    fill = ndimage.binary_dilation(fill, iterations=EDGE_PX)
    band = ndimage.binary_dilation(fill, iterations=BAND_PX) & ~fill
    out = np.array(plane, dtype=np.float32, copy=True)
    out[fill] = float(np.median(out[band])) if band.any() else float(np.median(out[~fill]))
    return out
