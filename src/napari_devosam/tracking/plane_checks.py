"""Checks propagation makes on a plane and its objects (private to tracking): a blank plane
(an acquisition gap), the seeds' plane, whether an object left the embryo
(``PropagationParams.min_embryo_fraction``), masks cut back to it (``clip_to_embryo``) and
how bright an object is on a nuclear-stained plane (``brightness``)."""

from __future__ import annotations

import numpy as np

from napari_devosam.engine.image import blank  # noqa: F401 - the one rule, used by propagate
from napari_devosam.tracking.params import PropagationParams
from napari_devosam.tracking.records import Crop, Plane, Seed
from napari_devosam.utils.text import plane_name

BLANK = "blank plane (no finite value, or constant): skipped, tracks go on after it"


def check_seeds(seeds: list[Seed], lead: tuple[int, ...], plane_shape) -> Plane:
    if not seeds:
        raise ValueError("nothing to propagate: the seed plane has no objects")
    planes = {tuple(int(i) for i in s.plane) for s in seeds}
    if len(planes) != 1:
        raise ValueError(f"all seeds must lie on one plane, got {sorted(planes)}")
    plane = planes.pop()
    if len(plane) != len(lead) or any(not 0 <= i < n for i, n in zip(plane, lead, strict=True)):
        sizes = " x ".join(str(n) for n in lead) or "no"
        raise ValueError(f"the seed plane ({plane_name(plane)}) does not exist in a stack "
                         f"of {sizes} planes")
    tracks = [s.track for s in seeds]
    if len(set(tracks)) != len(tracks):
        raise ValueError("two seeds have the same track id")
    for s in seeds:
        mask = np.asarray(s.mask)
        if mask.shape != tuple(plane_shape):
            raise ValueError(f"seed mask of shape {mask.shape} does not fit planes {plane_shape}")
        if not mask.any():
            raise ValueError(f"the seed of track {s.track} is empty")
    return plane


def embryo_of(analysis, p: PropagationParams) -> np.ndarray | None:
    """The plane's embryo ``(H, W)`` bool for ``min_embryo_fraction``, or None when the check
    is off or the plane has no one embryo (separate objects on a dark plane, or no analysis
    made on this step)."""
    return None if p.min_embryo_fraction <= 0 else plane_embryo(analysis)


def plane_embryo(analysis) -> np.ndarray | None:
    """The plane's one embryo ``(H, W)`` bool from its analysis
    (``automatic.seeds.analyse_plane``), or None: no analysis, no embryo found, or separate
    objects on a dark plane (a sparse plane: the embryo's extent is unknown)."""
    if analysis is None or not getattr(analysis, "found", False):
        return None
    if getattr(analysis, "sparse", False) or analysis.embryo is None:
        return None
    return analysis.embryo


def clipped(parts: list[Crop], embryo: np.ndarray) -> list[Crop]:
    """``parts`` less their pixels outside ``embryo`` (``(H, W)`` bool; ``clip_to_embryo``).
    A part with no pixel inside is kept whole: it is no cell of this embryo reaching out
    (another object on the plane, or one that left: ``min_embryo_fraction`` judges it)."""
    out = []
    for crop in parts:
        r0, c0 = crop.offset
        h, w = crop.data.shape
        inside = crop.data & embryo[r0:r0 + h, c0:c0 + w]
        if inside.any() and not np.array_equal(inside, crop.data):
            crop = Crop.from_mask(crop.full() & embryo)
        out.append(crop)
    return out


def inside_fraction(parts: list[Crop], embryo: np.ndarray) -> float:
    """The fraction of the parts' pixels inside ``embryo``."""
    area = sum(c.area for c in parts)
    if area == 0:
        return 1.0
    return sum(int(np.count_nonzero(c.full() & embryo)) for c in parts) / area


def stained_fraction(parts: list[Crop], analysis) -> float:
    """The fraction of the parts' pixels on stain in ``analysis`` (a ``PlaneAnalysis``):
    smoothed intensity at least halfway between its ``t_low`` (background / cytoplasm) and
    ``t_high`` (bright stain). 1.0 for no pixels."""
    area = sum(c.area for c in parts)
    if area == 0:
        return 1.0
    level = 0.5 * (analysis.t_low + analysis.t_high)
    on = 0
    for c in parts:
        r0, c0 = c.offset
        h, w = c.data.shape
        on += int(np.count_nonzero(analysis.smooth[r0:r0 + h, c0:c0 + w][c.data] >= level))
    return on / area


def stain_lost(a, parts: list[Crop], now, before, p: PropagationParams,
               matched: bool) -> tuple[str | None, list[Crop]]:
    """``(why, parts)``: why the new ``parts`` of track ``a`` (an ``ActiveTrack``) end it for
    want of stain (``min_stained_fraction``), or None, and the parts it goes on with.

    It ends when less than that fraction of the parts' pixels is on stain in ``now`` (the
    plane's analysis) while its last mask held more (judged on ``before()``, the previous
    plane's analysis, when not known yet). A nucleus dim from the start goes on (CTC HeLa's
    dim nuclei); a matched track (on a detection) only updates what it holds. Two daughters
    of a stained track of which one holds no stain are no division: the stained one goes on
    alone (a new-user trial saw a "division" into two masks on the background)."""
    if a.stained is None:
        a.stained = stained_fraction([a.crop], before())
    floor = p.min_stained_fraction
    if len(parts) == 2 and not matched and a.stained >= floor:
        kept = [c for c in parts if stained_fraction([c], now) >= floor]
        parts = kept if len(kept) == 1 else parts
    frac = stained_fraction(parts, now)
    if matched or frac >= floor or a.stained < floor:
        a.stained = frac
        return None, parts
    return f"no stain under the mask ({frac:.0%}, was {a.stained:.0%})", parts


def nuclear_plane(analysis) -> bool:
    """Whether ``analysis`` (an ``automatic.seeds.PlaneAnalysis`` or None) found a
    nuclear-stained plane."""
    return (analysis is not None and analysis.found and analysis.stain == "nuclei"
            and analysis.smooth is not None)


def brightness(crop: Crop, analysis) -> float:
    """The median of ``analysis.smooth`` over ``crop``'s pixels inside the plane, less the
    plane's background level (``analysis.t_low``), in the plane's intensity units; NaN for
    a crop wholly outside the plane."""
    r0, c0 = crop.offset
    h, w = crop.data.shape
    rows, cols = analysis.smooth.shape
    a, b, e, f = max(r0, 0), max(c0, 0), min(r0 + h, rows), min(c0 + w, cols)
    if e <= a or f <= b:
        return float("nan")
    values = analysis.smooth[a:e, b:f][crop.data[a - r0:e - r0, b - c0:f - c0]]
    return float(np.median(values)) - float(analysis.t_low) if values.size else float("nan")
