"""Second-round seeds: nuclei the first round left uncovered.

The nuclei seeds (``seeds.nuclei_seeds``) are blobs judged against the plane's brightest
stain, so a plane with a few very bright (mitotic, saturated) nuclei leaves its dimmer ones,
clearly visible to a person, without a seed: DSB2018 ``img2d`` 20 of 125 nuclei, CTC HeLa
13-26 per frame. After the first round has been decoded, this module looks only where no
mask lies and judges each candidate against its **own surroundings** and the plane's
**noise**, not against the brightest nucleus.

Rule (``residual_seeds``), with ``d`` the diameter of the first round's median object (a
disc of its area; the plane's estimate when it found fewer than ``MIN_FOUND``):

1. Candidates: local maxima, at least ``d / 2`` apart, of the scale-normalised LoG response
   ``-s^2 LoG`` of the smoothed plane at ``s = d / (2 sqrt 2)`` (a disc of diameter ``d``
   answers most there) that lie inside the embryo and at least ``COVER_GAP`` x ``d`` from
   every first-round mask. The maxima are the whole plane's: maxima of the response cut to
   the uncovered pixels would sit on the glow around every nucleus already found.
2. Its **core** is the mean of the smoothed plane in a disc of radius ``d / 4`` at the peak,
   its **ring** the ``RING_QUANTILE`` quantile of the uncovered pixels ``0.75 d`` to
   ``1.25 d`` away, and the **background** the median of the pixels under the plane's
   lower threshold (``t_low``). A candidate is a nucleus when ``core - ring`` is at least
   ``NOISE_SIGMAS`` x the background's noise (it is seen at all; the noise is
   ``seeds.background``'s, and at least ``QUANTUM_NOISE`` grey levels in integer data) and
   at least
   ``STANDS_OUT`` of ``core - background`` (it stands out from its own surroundings: a dim
   nucleus on the dark coverslip does, texture on a bright cytoplasm does not).
3. Its box is the connected part, around the peak, of the uncovered pixels above ``ring +
   (core - ring) / 2``, when that part is one nucleus in size (``MIN_PART`` to
   ``ONE_NUCLEUS_AREA`` typical areas, at most 2 ``d`` wide); otherwise the peak +- ``d / 2``.
4. SAM's mask of a second-round seed is kept when SAM is sure of it, it is one nucleus in
   size (``MIN_PART`` to ``MAX_PART`` x the typical area) and it lies mostly off the first
   round's masks (``new_only``).

numpy/scipy/scikit-image only; SAM is reached through the ``decode`` callable given to
``second_round``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_devosam.automatic.pedestal import floor_free
from napari_devosam.automatic.seed_types import PlaneAnalysis, Seeds, _box_rows
from napari_devosam.automatic.seeds import ONE_NUCLEUS_AREA, background

COVER_GAP = 0.25  # diameters: a candidate this close to a first-round mask is not new
RING_QUANTILE = 0.5  # the median: on an embryo's rim, half the ring is the bright cytoplasm
NOISE_SIGMAS = 6.0
STANDS_OUT = 0.5
MIN_PART = 0.25  # typical nuclear areas
MAX_PART = 2.5  # typical nuclear areas: a larger second-round mask is not one nucleus
MIN_FOUND = 3  # first-round objects that set the typical nucleus (fewer: the diameter)
PEAK_FRACTION = 0.25  # of the lift rule 2 asks for: the LoG maxima looked at
# grey levels: the least noise believed in integer data. An 8-bit movie whose background is
# mostly 0 measures ~0.5 (DevoLearn nuclear frame 7), while its video-compression blocks
# stand 3-8 levels above it and passed as nuclei; its dim nuclei stand 24-44 levels above
# their rings, CTC HeLa's 50-160, DSB2018's 24
QUANTUM_NOISE = 1.5
MAX_OVERLAP = 0.2  # a second-round mask overlapping first-round ones more than this goes
# SAM's confidence a second-round mask needs (predicted IoU, stability score): it has no
# stain seed behind it. Measured with `embryo`: the new masks that matched a reference
# nucleus (DSB2018, CTC HeLa frames 0 and 10) all scored >= 0.67 / 0.68; those on the
# DevoLearn nuclear movie's compression blocks (frame 8) and CHO's rim under 0.66 / 0.61.
MIN_SCORE = 0.6
MIN_STABILITY = 0.65


def _disc_offsets(r0: float, r1: float) -> np.ndarray:
    """``(K, 2)`` int offsets ``(dr, dc)`` with ``r0 <= distance <= r1``."""
    n = int(np.ceil(r1))
    rr, cc = np.mgrid[-n:n + 1, -n:n + 1]
    dist = np.hypot(rr, cc)
    keep = (dist >= r0) & (dist <= r1)
    return np.stack([rr[keep], cc[keep]], axis=1)


def _values(image: np.ndarray, centre, offsets: np.ndarray, allowed: np.ndarray | None
            ) -> np.ndarray:
    pts = offsets + np.asarray(centre)
    h, w = image.shape
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < h) & (pts[:, 1] >= 0) & (pts[:, 1] < w)
    pts = pts[inside]
    if allowed is not None:
        pts = pts[allowed[pts[:, 0], pts[:, 1]]]
    return image[pts[:, 0], pts[:, 1]]


def _box(a: PlaneAnalysis, free: np.ndarray, peak, level: float, d: float) -> np.ndarray:
    """The inclusive box of the part around ``peak`` above ``level`` (rule 3)."""
    h, w = a.smooth.shape
    r, c = (int(v) for v in peak)
    half = int(np.ceil(d))
    r0, c0, r1, c1 = max(r - half, 0), max(c - half, 0), min(r + half + 1, h), \
        min(c + half + 1, w)
    part, _ = ndimage.label((a.smooth[r0:r1, c0:c1] >= level) & free[r0:r1, c0:c1])
    mine = part == part[r - r0, c - c0]
    typical = np.pi * (0.5 * d) ** 2
    area = int(mine.sum()) if part[r - r0, c - c0] else 0
    if MIN_PART * typical <= area <= ONE_NUCLEUS_AREA * typical:
        rows = np.flatnonzero(mine.any(axis=1))
        cols = np.flatnonzero(mine.any(axis=0))
        if rows[0] > 0 and cols[0] > 0 and rows[-1] < mine.shape[0] - 1 \
                and cols[-1] < mine.shape[1] - 1:  # the part ends inside its window
            return np.array([r0 + rows[0] - 2, c0 + cols[0] - 2, r0 + rows[-1] + 2,
                             c0 + cols[-1] + 2], dtype=np.float64)
    return np.array([r - 0.5 * d, c - 0.5 * d, r + 0.5 * d, c + 0.5 * d], dtype=np.float64)


def residual_seeds(a: PlaneAnalysis, covered: np.ndarray, diameter: float) -> Seeds:
    """Seeds of the nuclei that the first round's masks ``covered`` ``(H, W)`` bool leave
    out, by the rule of the module docstring; ``a``: the plane's analysis (nuclei stain),
    ``diameter``: the nuclei's diameter in pixels. Points and boxes in ``(row, col)``."""
    from skimage.feature import peak_local_max

    d = float(diameter)
    if a.smooth is None or a.t_low is None or d <= 0:
        return Seeds()
    sigma = d / (2 * np.sqrt(2))
    free = ~ndimage.binary_dilation(covered, iterations=max(1, int(round(COVER_GAP * d))))
    response = -sigma * sigma * ndimage.gaussian_laplace(floor_free(a.smooth), sigma)
    allowed = free & (a.embryo if a.embryo is not None else True)
    bg, noise = background(a.smooth, a.t_low)
    noise = max(noise, QUANTUM_NOISE * a.quantum)
    # a disc answers its scale with ~0.7 of its height: weaker maxima cannot pass rule 2, and
    # a flat region's float residue gave thousands (23,603 on a 2048 x 2048 padded plane)
    peaks = peak_local_max(response, min_distance=max(1, int(d / 2)),
                           threshold_abs=PEAK_FRACTION * NOISE_SIGMAS * noise,
                           exclude_border=False)
    peaks = peaks[allowed[peaks[:, 0], peaks[:, 1]]]
    core_at = _disc_offsets(0, max(1.5, 0.25 * d))
    ring_at = _disc_offsets(0.75 * d, 1.25 * d)
    uncovered = ~covered
    points, boxes = [], []
    for peak in peaks:
        ring = _values(a.smooth, peak, ring_at, uncovered)
        if ring.size < 8:
            continue
        core = float(_values(a.smooth, peak, core_at, None).mean())
        lift = core - float(np.quantile(ring, RING_QUANTILE))
        if lift < NOISE_SIGMAS * noise or lift < STANDS_OUT * (core - bg):
            continue
        points.append(peak.astype(np.float64))
        boxes.append(_box(a, free, peak, core - 0.5 * lift, d))
    if not points:
        return Seeds(diameter=d)
    return Seeds(np.asarray(points), _box_rows(np.asarray(boxes), a.smooth.shape),
                 ["residual"] * len(points), diameter=d)


def new_only(props: list, covered: np.ndarray, typical_area: float) -> list:
    """The second-round proposals that SAM is sure of (``MIN_SCORE``, ``MIN_STABILITY``),
    of one nucleus's size (``MIN_PART`` to ``MAX_PART`` x ``typical_area``, pixels) and
    overlapping the first round's masks ``covered`` by at most ``MAX_OVERLAP`` of their
    area: the second round adds nuclei, it never reshapes one the first round found."""
    out = []
    for q in props:
        area = q.area
        if q.score < MIN_SCORE or q.stability < MIN_STABILITY \
                or not MIN_PART * typical_area <= area <= MAX_PART * typical_area:
            continue
        r0, c0, r1, c1 = q.box
        if np.count_nonzero(q.mask & covered[r0:r1, c0:c1]) <= MAX_OVERLAP * area:
            out.append(q)
    return out


def second_round(props: list, a: PlaneAnalysis, diameter: float, decode) -> list:
    """The nuclei the first round's proposals ``props`` leave uncovered: seeds by
    ``residual_seeds``, decoded with ``decode`` (``Seeds`` -> proposals), kept by
    ``new_only`` and deduplicated. The typical nucleus is the first round's median object
    (``MIN_FOUND`` of them or more), else a disc ``diameter`` across: the objects SAM
    outlined are a surer size than the plane's estimate (DevoLearn nuclear frame 7: 27 px
    estimated for ~50 px nuclei, and its video-compression blocks of that size passed)."""
    from napari_devosam.automatic.postprocess import dedupe_nested

    covered = np.zeros(a.smooth.shape, dtype=bool)
    for q in props:
        r0, c0, r1, c1 = q.box
        covered[r0:r1, c0:c1] |= q.mask
    areas = [q.area for q in props if q.area]
    typical = float(np.median(areas)) if len(areas) >= MIN_FOUND \
        else np.pi * (0.5 * float(diameter)) ** 2
    d = 2 * np.sqrt(typical / np.pi)
    extra = residual_seeds(a, covered, d)
    if len(extra) == 0:
        return []
    return dedupe_nested(new_only(decode(extra), covered, typical), diameter=d)
