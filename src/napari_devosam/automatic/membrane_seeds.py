"""Membrane seeds: one seed per cell enclosed by membranes, with its box
(``membrane_seeds``; the rule is in ``automatic.seeds``' module docstring and
docs/automatic.md, "Seeded mode", step 3). Split from ``automatic.seeds``."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_devosam.automatic.seed_types import (
    PlaneAnalysis,
    Seeds,
)

DOME_DEPTH = 0.3


def _dome_peaks(surface: np.ndarray, labels: np.ndarray, h: float, floor: float
                ) -> np.ndarray:
    """``(N, 2)`` int (row, col): one point per h-dome of ``surface`` ``(H, W)`` float (a
    regional maximum standing at least ``h`` above the saddle to any higher one) inside
    ``labels`` > 0, at least ``floor`` high; the point is the dome's highest pixel. The
    domes are found on ``surface`` max-pooled in blocks of ``h / 6`` px (at least 1; a
    distance transform changes by at most 1 per pixel, so pooling raises a saddle by at most
    ``sqrt(2) h / 6``, under a quarter of ``h``: large cells only, for speed), each point
    then at its block's highest pixel."""
    from skimage.morphology import h_maxima

    surface = np.where(labels > 0, surface, 0.0)
    if float(surface.max()) <= 0:
        return np.zeros((0, 2), dtype=np.int64)
    f = max(1, int(h / 6))
    hh, ww = -(-surface.shape[0] // f) * f, -(-surface.shape[1] // f) * f
    pooled = np.pad(surface, ((0, hh - surface.shape[0]), (0, ww - surface.shape[1])))
    pooled = pooled.reshape(hh // f, f, ww // f, f).max(axis=(1, 3))
    tops, n = ndimage.label(h_maxima(pooled, max(float(h), 1e-6)), structure=np.ones((3, 3)))
    if n == 0:
        return np.zeros((0, 2), dtype=np.int64)
    coarse = np.asarray(ndimage.maximum_position(pooled, tops, np.arange(1, n + 1)),
                        dtype=np.int64).reshape(-1, 2)
    peaks = np.zeros_like(coarse)
    for i, (r, c) in enumerate(coarse):
        block = surface[r * f:(r + 1) * f, c * f:(c + 1) * f]
        dr, dc = np.unravel_index(int(np.argmax(block)), block.shape)
        peaks[i] = (r * f + dr, c * f + dc)
    return peaks[surface[peaks[:, 0], peaks[:, 1]] >= floor]


def _sparse_embryo(smooth: np.ndarray, membrane: np.ndarray, sigma: float,
                  min_area: int) -> np.ndarray:
    """Where the cells are on a membrane plane whose embryo the analysis did not find (the
    sparse path, e.g. a dim embryo in strong pixel noise): the regions, holes filled, above
    Otsu's threshold of the plane smoothed at 4 ``sigma`` (membranes and cytoplasm against
    the background), together with what the membranes, closed over gaps of up to 4
    ``sigma``, enclose; regions under ``min_area`` px go. The whole plane when nothing is."""
    from skimage.filters import threshold_otsu

    pad = int(np.ceil(2 * sigma)) + 1
    closed = ndimage.binary_closing(np.pad(membrane, pad), iterations=pad)[pad:-pad, pad:-pad]
    blurred = ndimage.gaussian_filter(np.asarray(smooth, dtype=np.float64), 4 * sigma)
    found = ndimage.binary_fill_holes(closed | (blurred > threshold_otsu(blurred)))
    lab, n = ndimage.label(found)
    if n == 0:
        return np.ones(membrane.shape, dtype=bool)
    keep = np.bincount(lab.ravel(), minlength=n + 1) >= min_area
    keep[0] = False
    found = keep[lab]
    return found if found.any() and not found.all() else np.ones(membrane.shape, dtype=bool)


def membrane_seeds(a: PlaneAnalysis, min_area: int = 30, diameter: float | None = None
                   ) -> Seeds:
    """Seeds of a membrane-stained plane (see the module docstring); ``diameter``: the
    cells' diameter in pixels (None: estimated, ``Seeds.diameter``)."""
    from skimage.segmentation import watershed

    from napari_devosam.automatic.scale import interior_radius
    from napari_devosam.automatic.stain import membrane_map

    region = a.region if a.region is not None and a.region.any() else a.embryo
    ridge, membrane, sigma = membrane_map(a.smooth, region, within=a.embryo)
    embryo = a.embryo
    if a.sparse:  # the embryo was not found: where the cells are, then their membranes there
        embryo = _sparse_embryo(a.smooth, membrane, sigma, min_area)
        inner = ndimage.binary_erosion(embryo, iterations=3)
        ridge, membrane, sigma = membrane_map(a.smooth, inner if inner.any() else embryo,
                                              within=embryo)
    interior = ndimage.binary_opening(embryo & ~membrane)
    dist = ndimage.distance_transform_edt(interior)
    lab, n = ndimage.label(interior)
    if n == 0:
        return Seeds()
    if diameter is not None:
        r_typ, source = 0.5 * float(diameter), "given"
    else:
        r_typ, source = interior_radius(lab, dist, min_area), "estimated"
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    lab[(sizes < min_area)[lab]] = 0
    depth = ndimage.gaussian_filter(dist, 1.0)
    peaks = _dome_peaks(depth, lab, DOME_DEPTH * r_typ, max(1.5, r_typ / 3))
    if len(peaks) == 0:
        return Seeds(diameter=2 * r_typ, diameter_source=source)
    markers = np.zeros(lab.shape, dtype=np.int32)
    markers[peaks[:, 0], peaks[:, 1]] = np.arange(1, len(peaks) + 1)
    # flood the interiors first, down their distance transform (split at its saddles), then
    # the membranes by ridge strength (neighbours meet on the crest); a ridge flood alone
    # lets a bright speck near a seed wall it in (a basin of one pixel, a useless box)
    height = np.where(membrane, ridge, -depth)
    basins = watershed(height, markers, mask=embryo)
    boxes = np.full((len(peaks), 4), np.nan)
    for i, sl in enumerate(ndimage.find_objects(basins, max_label=len(peaks))):
        if sl is not None:
            boxes[i] = (sl[0].start, sl[1].start, sl[0].stop - 1, sl[1].stop - 1)
    return Seeds(peaks.astype(np.float64), boxes, ["membrane"] * len(peaks),
                 diameter=2 * r_typ, diameter_source=source)
