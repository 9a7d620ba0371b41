"""Cell size from the image: a diameter in pixels, as Cellpose estimates one.

``blob_scale`` looks at the plane through the scale-normalised Laplacian of Gaussian
``-sigma^2 LoG`` (bright blobs; ``dark=True``: ``+sigma^2 LoG``, dark blobs) at ``sigma`` =
1 px, 1.25 px, ... up to a sixth of the plane. At each scale the answer is the 99th
percentile of the (positive) response inside the region. The blobs' scale is the
**smallest scale whose answer is at least ``PEAK_FRACTION`` of the largest answer and where
the answer stops rising** (the next scale answers less than ``FLAT`` more: a peak, or a
shoulder): an embryo packed with nuclei is itself a bright blob, and at its own scale it can
answer more than its nuclei do (DevoLearn nuclear movie frame 30: the nuclei's peak 0.86 of
the embryo's; taking the largest gave a 201 px "nucleus"). A compressive display curve
(gamma 0.5, a log scale) flattens the nuclei's peak into a shoulder on the way to the
embryo's: frame 30 at gamma 0.5 answers 0.72, 0.75, 0.76, 0.77 of the largest at 27, 34, 42
and 53 px, and a strict peak alone gave 201 px and 3 objects (34 px with the shoulder). A
flat step at most ``PEAK_WITHIN`` scales before the largest answer, or one the answers climb
out of by ``RISE`` within as many scales, is no shoulder. A disc of
radius ``R`` answers most at ``sigma = R / sqrt(2)``, so the diameter is ``2 sqrt(2) sigma``. The
percentile (not the mean) keeps the texture and noise inside large nuclei, and the dark gaps
between sparse nuclei, from outvoting the nuclei. Measured while writing this: phantom nuclei
21.1 px (true median 21.1), the stardist ``img2d`` 22 px (true median 23.7), CTC HeLa 26 px,
the DevoLearn nuclear movie frames 0, 8, 30 and 45: 103, 53, 34 and 27 px (a person
measures ~105, ~55, ~25 and ~22: its planes are looked at downsampled by 2, so the smaller
sizes come out coarse). Planes wider than ``WORK_PX`` are looked at downsampled (block
means), and the result scaled back; there the nuclei's peak also flattens into a shoulder (a
4 x 4 tiling of frame 30, 2048 x 3008 px with 16 embryos: 55 px with a strict peak, 35 px
with the shoulder, ~34 px on one embryo).

``interior_radius`` is the membrane stain's cell size: the area-weighted median, over the
dark interiors enclosed by membranes, of each interior's largest inscribed radius (its
distance transform's maximum). Weighting by area keeps the slivers between membrane pieces
from dragging it down.

numpy/scipy/scikit-image only.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_devosam.automatic.limits import MIN_DIAMETER as MIN_DIAMETER_PX
from napari_devosam.automatic.pedestal import floor_free

WORK_PX = 384  # longest side looked at
PEAK_FRACTION = 0.5  # a smaller-scale peak wins when it answers at least this much
# the answer stops rising where the next scale adds less than this fraction of it: 0.02
# leaves every untransformed real plane's estimate as a strict peak gave it (bench planes:
# DSB2018, cells3d, CTC HeLa and CHO, DevoLearn nuclear frames 0-53, the team's image);
# 0.03 moved DevoLearn frame 30 from 34 to 27 px
FLAT = 0.02
# ... and the largest answer lies more than PEAK_WITHIN scales further: a dip of 0.3 % just
# before the peak is no shoulder (new-user trial 20: cells3d Z 30 under a slight ramp
# answered 0.951, 0.949, 1.000 at 26, 33, 41 px and came out 26 px, its nuclei in pieces,
# F1 0.905 -> 0.642). The DevoLearn frames' shoulders lie 5-9 scales before the embryo's
# peak. Nor is a step the answers climb out of by RISE within PEAK_WITHIN scales: large
# textured nuclei (cells3d Z 30 and CTC CHO frame 0 at twice their size, 92 and 134 px)
# rise 4.2 % there and came out 14 and 26 px (in pieces), now 82 and 124 px; the steepest
# kept shoulder, a gamma-compressed DevoLearn frame 40, rises 3.4 % (a thin margin, both
# sides measured 2026-12-08 on every sixth DevoLearn frame and the four labelled sources).
PEAK_WITHIN = 2
RISE = 0.04


def _downsample(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    f = max(1, int(np.ceil(max(image.shape) / WORK_PX)))
    if f == 1:
        return image, mask, 1
    h, w = (image.shape[0] // f) * f, (image.shape[1] // f) * f
    small = image[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    small_mask = mask[:h, :w].reshape(h // f, f, w // f, f).any(axis=(1, 3))
    return small, small_mask, f


def blob_scale(image: np.ndarray, region: np.ndarray, dark: bool = False) -> float | None:
    """The typical diameter in pixels of the bright (``dark=True``: dark) blobs of ``image``
    ``(H, W)`` float inside ``region`` ``(H, W)`` bool, by the rule of the module
    docstring; None when there is no blob."""
    if not region.any():
        return None
    img, mask, f = _downsample(floor_free(image), region)
    sign = 1.0 if dark else -1.0
    sigmas = 1.25 ** np.arange(0, 40)
    sigmas = sigmas[sigmas <= max(1.0, min(img.shape) / 6)]
    answer = [float(np.percentile(np.maximum(sign * s * s * ndimage.gaussian_laplace(img, s),
                                             0)[mask], 99)) for s in sigmas]
    top = max(answer)
    if top <= 0:
        return None
    best = int(np.argmax(answer))
    for i, a in enumerate(answer[:best]):
        if a >= PEAK_FRACTION * top and (i == 0 or a >= answer[i - 1]) \
                and answer[i + 1] < (1 + FLAT) * a and best - i > PEAK_WITHIN \
                and max(answer[i + 1:i + 1 + PEAK_WITHIN]) < (1 + RISE) * a:
            best = i
            break
    return max(MIN_DIAMETER_PX, 2 * np.sqrt(2) * float(sigmas[best]) * f)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The median of ``values`` (1D) where each counts ``weights`` (1D, >= 0) times."""
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][int(np.searchsorted(cum, 0.5 * cum[-1]))])


def interior_radius(labels: np.ndarray, dist: np.ndarray, min_area: int = 30) -> float | None:
    """The typical cell radius in pixels from membrane interiors (rule of the module
    docstring): ``labels`` ``(H, W)`` int, the connected interiors (0 elsewhere); ``dist``
    ``(H, W)`` float, their distance transform. Interiors under ``min_area`` px count only
    when there is no larger one; None when there is no interior."""
    n = int(labels.max())
    if n == 0:
        return None
    radii = np.asarray(ndimage.maximum(dist, labels, np.arange(1, n + 1)), dtype=np.float64)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(np.float64)
    big = sizes >= min_area
    if not big.any():
        return float(radii.max())
    return weighted_median(radii[big], sizes[big])
