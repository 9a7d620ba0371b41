"""Which stain a plane shows (membranes or nuclei), decided from its pixels, with the reason.

The rule is scale-free and needs no global threshold (real membrane movies have a bright,
textured cytoplasm that a three-class threshold puts in the "bright" class):

1. **Width of the bright structures** (``bright_width``): a grey-level granulometry. The
   smoothed plane is opened (``scipy.ndimage.grey_opening``, square footprints of half-size
   ``r`` = 1, 2, ... up to ``MAX_WIDTH_PX``); the bright excess removed, summed over the
   region, grows with ``r``; the width is the smallest ``r`` that removes half of what the
   largest removes. Membranes: their half-width (phantoms 3 px, real movies 7-15 px);
   nuclei: about their radius.
2. **Ridge score** (``ridge_score``): the Hessian of the plane at sigma = half that width;
   at the pixels where the most negative eigenvalue ``l1`` is strongest (top quarter inside
   the region) the anisotropy ``(|l1| - |l2-|) / (|l1| + |l2-|)`` (``l2-``: the other
   eigenvalue where negative), weighted by ``|l1|``. A bright line (membrane) gives ~1, a
   bright blob (nucleus) ~0.
3. ``score >= RIDGE_MEMBRANE`` -> membrane, ``score <= RIDGE_NUCLEI`` -> nuclei; in between
   the stain is **undecided**: the nearer side is used and the note says so (pass
   ``stain=`` to choose). Measured while writing this (``0.5 x width``, top quarter):
   membrane planes 0.86-0.98 (phantoms 0.96-0.97; the real DevoLearn membrane movie frames
   0, 30, 60, 300: 0.86-0.90; the team's membrane image 0.90); nuclear planes 0.12-0.71
   (phantoms 0.12-0.15; the DevoLearn nuclear movie 0.63-0.71; the team's nuclear image
   0.52).
4. **Dark gaps** (``valley_score``, checked on an embryo when rule 3 does not say nuclei):
   membranes are narrow bright lines around wide dark interiors; nuclei packed in an embryo
   are wide bright blobs between narrow dark gaps. Packed nuclei whose stain saturates score
   as bright lines too (DevoLearn nuclear frames 30-48 at 3x gain: ridge 0.77-0.81, read as
   membrane), but their dark structures are narrower than their bright ones (rule 1 on the
   negated plane: half-width 12 px against 18-27) and score as lines at least as much
   (valley score, rule 2 on the negated plane: 0.80-0.84). A plane with both is nuclei.
   Measured while writing this: every DevoLearn membrane frame, and 150 px crops of them,
   has dark structures wider than its bright ones (crops: 8-24 px against 6-11; whole
   frames 27 against 8-12), and whole frames' valley scores are well under their ridge
   scores (ridge minus valley 0.18-0.38; 0.03-0.41 under 2x gain and gamma 0.5 or 2).
   The DevoLearn nuclear movie's frame 54, a late embryo blurred into one mass (half-widths
   18 bright, 27 dark), still reads as membrane on its own.

**Where the membranes are** (``membrane_map``, for the membrane seeds): the Hessian at sigma
= the membranes' half-width (``membrane_width``: the radius where the granulometry of rule 1
removes the most bright excess per pixel of radius, the peak of its pattern spectrum; rule
1's half-of-the-total width is pulled up by cells whose cytoplasm is bright, the peak is
not: real DevoLearn frames 3-4 px, the team's membrane image 3, phantoms 2); the ridge
strength is ``max(-l1, 0)``, the
membranes the pixels above a hysteresis threshold of it inside the region (high: Otsu's
threshold of the strength there; low: half of that, so a membrane stays connected where it
fades), pieces shorter than ``MEMBRANE_MIN_LENGTH`` sigmas dropped. A brightness threshold
does not do this: on real movies the textured cytoplasm of some cells is as bright as the
membranes of others, while it has no ridge shape (DevoLearn membrane movie frame 0: 46 % of
the embryo above the bright threshold, whole cells among it).

Pure numpy/scipy/scikit-image; no SAM, no Qt.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_devosam.automatic.pedestal import floor_free

RIDGE_MEMBRANE = 0.80
RIDGE_NUCLEI = 0.74
MAX_WIDTH_PX = 40
MEMBRANE_MIN_LENGTH = 3.0
WIDTH_WINDOW_PX = 512
SOLID_OBJECTS = 0.8  # weighted median solidity: separate nuclei 0.91-0.97, membrane bits <= 0.67
# the same rule inside an embryo (its bright parts): membrane pieces cut by a crop reached 0.86
SOLID_IN_EMBRYO = 0.9
WARN_MARGIN = 0.05  # ridge score beyond the undecided band for a given stain to be warned of
HOLES_MEMBRANE = 0.1  # enclosed interior per signal pixel below which separate objects are blobs


class StainDecision(str):
    """The stain, ``"membrane"`` or ``"nuclei"`` (the object *is* that string, so it compares
    and prints as one), with why: ``decided`` (False when the score fell in the undecided
    band: the stain is then the nearer side, or the default), ``score`` (the ridge score; NaN
    when none) and ``note``, one line for the user, e.g. ``"stain: membrane (decided from the
    image, ridge score 0.89 ...; --stain to override)"``."""

    decided: bool
    score: float
    note: str
    contradicted: bool = False  # given with --stain against a decided reading (``given``)

    def __new__(cls, stain: str, decided: bool, score: float, note: str):
        obj = super().__new__(cls, stain)
        obj.decided, obj.score, obj.note = decided, float(score), note
        return obj

    def __getnewargs__(self):  # pickles (dask workers return results): __dict__ follows
        return str(self), self.decided, self.score, self.note

    @property
    def stain(self) -> str:
        return str(self)


def given(stain: str, reading: StainDecision | None = None, what: str = "image"
          ) -> StainDecision:
    """The decision for a stain the caller chose. ``reading``: what the ``what`` ("image",
    or "stack") reads as by itself; when it was decided and names the other stain, the note
    says so and ``contradicted`` is True, so that a wrong ``--stain`` does not pass unsaid
    (a new-user trial forced the wrong stain on a real movie and got no word of it). An
    uncertain reading, or one near the band (``_clear``), says nothing: the user's choice is
    what the ``--stain`` is for."""
    note = f"stain: {stain} (given with --stain)"
    against = reading is not None and str(reading) != stain and _clear(reading)
    if against:
        note = (f"stain: {stain} (given with --stain, but the {what} reads as {reading}: "
                f"{_reason(reading.note)}; check --stain)")
    decision = StainDecision(stain, True, float("nan"), note)
    decision.contradicted = bool(against)
    return decision


def _clear(reading: StainDecision) -> bool:
    """Whether ``reading`` is clear enough to say that a given stain is not it: decided, and
    a ridge score ``WARN_MARGIN`` beyond the undecided band, or nuclei by a rule whose
    evidence is not the score (dark gaps, separate objects: a score above the band). Trial 18
    had right stains warned on small crops scoring 0.69 and 0.80, and on 60 x 60 px of pure
    background (0.82)."""
    if not reading.decided:
        return False
    score = reading.score
    if str(reading) == "membrane":
        return bool(score >= RIDGE_MEMBRANE + WARN_MARGIN)
    return bool(score <= RIDGE_NUCLEI - WARN_MARGIN or score > RIDGE_NUCLEI)


def _reason(note: str) -> str:
    """The why of a decision's ``note``: ``"stain: nuclei (decided ..., score 0.62; --stain to
    override)"`` -> ``"decided ..., score 0.62"``."""
    inner = note.split("(", 1)[-1].rsplit(")", 1)[0].rsplit("; --stain", 1)[0]
    for lead in ("decided from the image: ", "decided from the image, ",
                 "decided for the whole stack on "):
        inner = inner.removeprefix(lead)
    return inner


def bright_width(smooth: np.ndarray, region: np.ndarray, max_px: int = MAX_WIDTH_PX) -> int:
    """The half-width in pixels of the bright structures of ``smooth`` ``(H, W)`` float
    inside ``region`` ``(H, W)`` bool (rule 1 of the module docstring); at least 1."""
    if not region.any():
        return 1
    ys, xs = np.nonzero(region)
    size = min(ys.max() - ys.min(), xs.max() - xs.min()) + 1
    top = int(max(2, min(max_px, size // 4)))
    radii = np.unique(np.round(np.geomspace(1, top, 10)).astype(int))
    removed = np.array([float((smooth - ndimage.grey_opening(smooth, size=(2 * r + 1,) * 2))
                              [region].sum()) for r in radii])
    if removed[-1] <= 0:
        return 1
    return int(radii[int(np.argmax(removed >= 0.5 * removed[-1]))])


def _window(shape, centre, side: int) -> tuple[slice, slice]:
    """The ``side`` x ``side`` window of a plane of ``shape`` around ``centre`` (row, col),
    moved inside the plane (the whole plane along an axis shorter than ``side``)."""
    out = []
    for n, c in zip(shape, centre, strict=True):
        start = int(np.clip(c - side // 2, 0, max(n - side, 0)))
        out.append(slice(start, start + side))
    return out[0], out[1]


def membrane_width(smooth: np.ndarray, region: np.ndarray, max_px: int = MAX_WIDTH_PX
                   ) -> int:
    """The half-width in pixels of the membranes of ``smooth`` ``(H, W)`` float inside
    ``region`` ``(H, W)`` bool: the peak of the pattern spectrum (module docstring); at
    least 1. Larger planes are measured in the ``WIDTH_WINDOW_PX`` square window around the
    region's median pixel (the width is the same everywhere; this bounds the time)."""
    if not region.any():
        return 1
    ys, xs = np.nonzero(region)
    size = min(ys.max() - ys.min(), xs.max() - xs.min()) + 1
    top = int(max(2, min(max_px, size // 4)))
    window = _window(region.shape, (int(np.median(ys)), int(np.median(xs))), WIDTH_WINDOW_PX)
    smooth, region = smooth[window], region[window]
    radii = np.unique(np.concatenate([np.arange(1, min(top, 8) + 1),
                                      np.round(np.geomspace(8, top, 8)).astype(int)]))
    removed = np.array([float((smooth - ndimage.grey_opening(smooth, size=(2 * r + 1,) * 2))
                              [region].sum()) for r in radii])
    spectrum = np.diff(removed, prepend=0.0) / np.diff(radii, prepend=0)
    return int(radii[int(np.argmax(spectrum))]) if spectrum.max() > 0 else 1


def _hessian_eigvals(smooth: np.ndarray, sigma: float) -> np.ndarray:
    """The Hessian eigenvalues ``(2, H, W)`` (``[0] >= [1]``) of ``smooth`` at ``sigma``
    (at least 1 px), less its floor (``pedestal.floor_free``)."""
    from skimage.feature import hessian_matrix, hessian_matrix_eigvals

    h = hessian_matrix(floor_free(smooth), sigma=max(sigma, 1.0), order="rc",
                       use_gaussian_derivatives=False)
    return hessian_matrix_eigvals(h)


def _hessian_l1(smooth: np.ndarray, sigma: float) -> np.ndarray:
    """The most negative Hessian eigenvalue ``l1`` ``(H, W)`` of ``smooth`` at ``sigma``."""
    return _hessian_eigvals(smooth, sigma)[1]


def membrane_map(smooth: np.ndarray, region: np.ndarray, within: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, float]:
    """``(ridge, membrane, sigma)`` of a membrane-stained plane: ``ridge`` ``(H, W)`` float64,
    the ridge strength ``max(-l1, 0)`` at ``sigma`` px; ``membrane`` ``(H, W)`` bool, the
    membranes inside ``within`` (default ``region``), by the rule of the module docstring.
    ``smooth``: the analysed plane; ``region`` ``(H, W)`` bool: where the bright width and
    the threshold are judged (the embryo less its rim)."""
    from skimage.filters import apply_hysteresis_threshold, threshold_otsu

    within = region if within is None else within
    if not region.any():
        region = within if within.any() else np.ones(smooth.shape, dtype=bool)
    sigma = float(membrane_width(smooth, region))
    ridge = np.maximum(-_hessian_l1(np.asarray(smooth, dtype=np.float64), sigma), 0.0)
    values = ridge[region]
    if values.size == 0 or float(values.max()) <= float(values.min()):
        return ridge, np.zeros(smooth.shape, dtype=bool), sigma
    high = float(threshold_otsu(values))
    membrane = apply_hysteresis_threshold(ridge, 0.5 * high, high) & within
    lab, n = ndimage.label(membrane, structure=np.ones((3, 3)))
    if n:  # short pieces are texture (a speck's ridge is about 2 sigma long)
        extent = np.zeros(n + 1)
        for i, sl in enumerate(ndimage.find_objects(lab), start=1):
            extent[i] = max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start)
        extent[0] = np.inf
        membrane &= (extent >= MEMBRANE_MIN_LENGTH * sigma)[lab]
    return ridge, membrane, sigma


def ridge_score(smooth: np.ndarray, region: np.ndarray, sigma: float) -> float:
    """Rule 2 of the module docstring, in [0, 1]; NaN when the region has no bright
    curvature at all."""
    ev = _hessian_eigvals(smooth, sigma)  # ev[0] >= ev[1]
    l1, l2 = ev[1], ev[0]
    m = region & (l1 < 0)
    if not m.any():
        return float("nan")
    strong = m & (-l1 >= np.percentile(-l1[m], 75))
    a1, a2 = -l1[strong], np.abs(np.minimum(l2[strong], 0))
    aniso = (a1 - a2) / np.maximum(a1 + a2, 1e-12)
    return float(np.sum(aniso * a1) / max(float(np.sum(a1)), 1e-12))


def valley_score(smooth: np.ndarray, region: np.ndarray, width: int | None = None) -> float:
    """Rule 4 of the module docstring: the ridge score of the dark structures of ``smooth``
    ``(H, W)`` float inside ``region`` ``(H, W)`` bool (rules 1-2 on the negated plane;
    ``width``: their half-width when already measured), in [0, 1]; -inf when they have no
    curvature at all (then it never outvotes a ridge)."""
    negated = -np.asarray(smooth, dtype=np.float64)
    width = bright_width(negated, region) if width is None else width
    score = ridge_score(negated, region, 0.5 * width)
    return score if np.isfinite(score) else float("-inf")


def decide_stain(smooth: np.ndarray, region: np.ndarray, dark_lines: bool = True
                 ) -> StainDecision:
    """Membrane or nuclei for ``smooth`` ``(H, W)`` float inside ``region`` ``(H, W)`` bool
    (the embryo, or where the signal is), by the rules of the module docstring; rule 4 only
    with ``dark_lines`` (an embryo: not separate objects on a dark plane, whose smoothed
    background scores as perfect dark lines)."""
    region = region if region.any() else np.ones(smooth.shape, dtype=bool)
    width = bright_width(smooth, region)
    score = ridge_score(smooth, region, 0.5 * width)
    how = (f"ridge score {score:.2f}: membranes from {RIDGE_MEMBRANE:.2f}, nuclei up to "
           f"{RIDGE_NUCLEI:.2f}")
    if np.isnan(score):
        return StainDecision("membrane", False, score,
                             "stain: membrane (could not be decided: no bright structure; "
                             "the default; --stain to choose)")
    if dark_lines and score > RIDGE_NUCLEI:
        gap = bright_width(-np.asarray(smooth, dtype=np.float64), region)
        valley = valley_score(smooth, region, gap)
        if gap < width and valley >= score:
            return StainDecision("nuclei", True, score,
                                 f"stain: nuclei (decided from the image: narrow dark gaps "
                                 f"between wide bright parts, the gaps as line-like as the "
                                 f"bright parts, valley score {valley:.2f}, ridge score "
                                 f"{score:.2f}: packed nuclei, not membranes; --stain to "
                                 "override)")
    if score >= RIDGE_MEMBRANE or score <= RIDGE_NUCLEI:
        stain = "membrane" if score >= RIDGE_MEMBRANE else "nuclei"
        return StainDecision(stain, True, score,
                             f"stain: {stain} (decided from the image, {how}; --stain to "
                             "override)")
    stain = "membrane" if score >= 0.5 * (RIDGE_MEMBRANE + RIDGE_NUCLEI) else "nuclei"
    return StainDecision(stain, False, score,
                         f"stain: {stain} (uncertain, {how}: the nearer side; --stain to "
                         "choose)")


def solidity(signal: np.ndarray) -> float:
    """The area-weighted median solidity (area over convex hull area) of the connected
    objects of ``signal`` ``(H, W)`` bool: ~1 for filled blobs, low for thin curves."""
    from skimage.measure import label, regionprops

    props = regionprops(label(signal))
    if not props:
        return 0.0
    areas = np.array([q.area for q in props], dtype=np.float64)
    solid = np.array([q.solidity for q in props], dtype=np.float64)
    order = np.argsort(solid)
    cum = np.cumsum(areas[order])
    return float(solid[order][int(np.searchsorted(cum, 0.5 * cum[-1]))])


def separate_objects_rule(decision: StainDecision, signal: np.ndarray,
                          min_solidity: float = SOLID_OBJECTS) -> StainDecision:
    """For a plane of separate bright objects on a dark background (no embryo-sized
    foreground; ``signal`` ``(H, W)`` bool, the objects): membrane-stained cells show as rings
    around a dark interior, nuclei as filled blobs. A "membrane" decision whose objects enclose
    almost no interior (holes below ``HOLES_MEMBRANE`` of the signal's area) becomes "nuclei":
    the ridge score alone reads many small, rimmed nuclei as lines (CTC HeLa: 0.85, while
    their signal encloses no interior; five separate rings enclose 1.25 x their area). The
    objects must also be filled blobs: the area-weighted median solidity of the objects
    (``solidity``) at least ``SOLID_OBJECTS``. A noisy membrane embryo reaches this rule too
    (its pixel noise hides the embryo's contrast), and its signal is pieces of membrane that
    enclose no cell once noise breaks them, but thin and curved: the DevoLearn membrane movie
    with Gaussian noise of 10-40 grey levels, solidity 0.13-0.67, was read as nuclei; the
    nuclei of DSB2018, cells3d, CTC HeLa and CHO and DevoLearn nuclear frames: 0.91-0.97."""
    if str(decision) != "membrane" or not signal.any():
        return decision
    area = int(np.count_nonzero(signal))
    holes = int(np.count_nonzero(ndimage.binary_fill_holes(signal))) - area
    if holes >= HOLES_MEMBRANE * area or solidity(signal) < min_solidity:
        return decision
    return StainDecision("nuclei", True, decision.score,
                         f"stain: nuclei (decided from the image: separate filled objects "
                         f"enclosing no interior, {holes / area:.2f} of their area; ridge "
                         f"score {decision.score:.2f}; --stain to override)")


def bright_parts(smooth: np.ndarray, t_high: float, embryo: np.ndarray, min_area: int
                 ) -> tuple[np.ndarray, int]:
    """The bright stain of an embryo (``smooth >= t_high``, opened, inside ``embryo``) in
    parts of at least ``min_area`` px, and how many parts: what the separate-objects rule
    judges there."""
    lab, n = ndimage.label(ndimage.binary_opening(smooth >= t_high) & embryo)
    keep = np.flatnonzero(np.bincount(lab.ravel())[1:] >= max(min_area, 1)) + 1
    return np.isin(lab, keep), len(keep)
