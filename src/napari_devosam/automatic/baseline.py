"""A classical baseline without SAM: seeded watershed (scikit-image) from the same seeds.

Membrane stain: ``skimage.segmentation.watershed`` of the smoothed plane (membranes are the
ridges) from the seed points, inside the embryo mask. Nuclei stain: watershed of the negated
distance transform of the bright (nucleus) class, from the seed points, inside that class.
Seeds and masks come from ``seeds.analyse_plane`` / ``seeds.stain_seeds``, so the baseline
and seeded SAM start from the same detections. Small objects and ids as ``postprocess``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_devosam.automatic.postprocess import MIN_AREA


def watershed_labels(plane, stain: str = "auto", min_area: int = MIN_AREA) -> np.ndarray:
    """``(H, W)`` int32 labels of ``plane`` by seeded watershed (zeros when no embryo)."""
    from skimage.segmentation import watershed

    from napari_devosam.automatic.seeds import analyse_plane, stain_seeds

    a = analyse_plane(plane, stain, min_area)
    shape = np.asarray(plane).shape[:2]
    seeds = stain_seeds(a, min_area)
    if not a.found or len(seeds) == 0:
        return np.zeros(shape, dtype=np.int32)
    markers = np.zeros(shape, dtype=np.int32)
    rc = np.round(seeds.points).astype(np.int64)
    markers[rc[:, 0], rc[:, 1]] = np.arange(1, len(rc) + 1)
    if a.stain == "membrane":
        labels = watershed(a.smooth, markers, mask=a.embryo)
    else:
        bright = ndimage.binary_fill_holes(a.smooth >= a.t_high) & a.embryo
        labels = watershed(-ndimage.distance_transform_edt(bright), markers, mask=bright)
    sizes = np.bincount(labels.ravel(), minlength=len(rc) + 1)
    labels[sizes[labels] < min_area] = 0
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(shape).astype(np.int32)
