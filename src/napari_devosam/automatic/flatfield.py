"""An uneven background (an illumination ramp) levelled before thresholding.

The seeds' analysis splits a plane into background, embryo and bright stain by global
thresholds (``seeds._thresholds``). Under a background ramp as bright as the nuclei, the
bright half of the plane reads as embryo and the dim half as background, so its nuclei get no
seed: in ``benchmarks/bench_perturb.py``'s ``gradient`` change, cells3d's automatic F1@0.5
was 0.000, CTC CHO's 0.471 and DSB2018's 0.657 (half its nuclei unseeded, looked at).

The background is modelled as a plane ``a + b row + c col`` fitted to the plane's floor: the
``FLOOR_PERCENTILE``-th percentile of each of ``TILES`` x ``TILES`` tiles, by least squares
with tiles above the fit by more than ``CLIP`` robust spreads left out and the fit repeated
(sigma clipping, as astronomers fit sky backgrounds). Tiles that lie inside an embryo or a
large nucleus sit above the background and drop out; tiles of background stay. A plane, not a
curved surface: a quadratic fitted this way bent up under the DevoLearn membrane embryo (a
0.16 "span" on frames 24-36 that have no ramp). The plane is taken off only where it spans
at least ``MIN_SPAN`` of the image's range (0.5th to 99.5th percentile): every untouched real
plane measured spans at most 0.13 (cells3d Z 30: a real haze), 0.00 on the DevoLearn movies and
the team's images, and the ``gradient`` change 0.65-0.83; a plane under the bar is returned as
it is, so results on even backgrounds do not move.

Not levelled: what a plane cannot fit, such as a bright out-of-focus haze in one corner
(new-user trial 20: DSB2018 F1 0.843 -> 0.657, cells3d 0.905 -> 0.474; its fitted plane spans
0.06-0.09 of the range), or light falling off towards the corners (vignetting), which a
curved surface would fit but which bent up under the DevoLearn membrane embryo.

numpy only: the fit is 3 parameters over 64 tile values (scikit-image's rolling ball,
Sternberg 1983, needs a radius above the largest object, here a whole embryo, and costs
seconds a plane at that radius).
"""

from __future__ import annotations

import numpy as np

TILES = 8  # tiles per side
FLOOR_PERCENTILE = 5.0  # a tile's floor
CLIP = 2.0  # robust spreads above the fit that leave a tile out
MIN_SPAN = 0.25  # fraction of the image's range the fitted plane must span to be taken off
MIN_SIDE = 128  # px: smaller planes are not levelled (new-user trial 21: a 64 x 64 crop
# half filled by one nucleus had most tiles inside it, a "ramp" was fitted and the nucleus lost)
_ITERATIONS = 10


def background_ramp(data: np.ndarray) -> np.ndarray | None:
    """The background plane of ``data`` ``(H, W)`` (finite floats), as an ``(H, W)`` float32
    offset that is 0 where the background is darkest, or None when the plane spans under
    ``MIN_SPAN`` of the image's range (or the image is smaller than ``MIN_SIDE``)."""
    h, w = data.shape
    if min(h, w) < MIN_SIDE:
        return None
    floors, rows, cols = _tile_floors(data)
    design = np.stack([np.ones_like(rows), rows, cols], axis=1)
    coef = _clipped_fit(design, floors)
    r = np.linspace(-1.0, 1.0, h, dtype=np.float64)[:, None]
    c = np.linspace(-1.0, 1.0, w, dtype=np.float64)[None, :]
    ramp = coef[1] * r + coef[2] * c
    lo, hi = (float(v) for v in np.percentile(data, [0.5, 99.5]))
    span = float(ramp.max() - ramp.min())
    if hi <= lo or span < MIN_SPAN * (hi - lo):
        return None
    return (ramp - ramp.min()).astype(np.float32)


def _tile_floors(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tile: its floor, and its centre's row and column scaled to -1..1."""
    h, w = data.shape
    r_edges = np.linspace(0, h, TILES + 1).astype(np.int64)
    c_edges = np.linspace(0, w, TILES + 1).astype(np.int64)
    floors, rows, cols = [], [], []
    for r0, r1 in zip(r_edges[:-1], r_edges[1:], strict=True):
        for c0, c1 in zip(c_edges[:-1], c_edges[1:], strict=True):
            floors.append(float(np.percentile(data[r0:r1, c0:c1], FLOOR_PERCENTILE)))
            rows.append((r0 + r1 - 1) / (h - 1) - 1.0)
            cols.append((c0 + c1 - 1) / (w - 1) - 1.0)
    return np.array(floors), np.array(rows), np.array(cols)


def _clipped_fit(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least squares of ``values`` on ``design``, refitted without the values above the fit
    by more than ``CLIP`` robust spreads (1.4826 x MAD of the kept residuals) until the kept
    set stops changing."""
    keep = np.ones(len(values), dtype=bool)
    coef = np.zeros(design.shape[1])
    for _ in range(_ITERATIONS):
        coef = np.linalg.lstsq(design[keep], values[keep], rcond=None)[0]
        resid = values - design @ coef
        kept = resid[keep]
        spread = 1.4826 * float(np.median(np.abs(kept - np.median(kept))))
        new = resid <= CLIP * spread + 1e-12 * (1.0 + abs(float(np.median(values))))
        if new.sum() < design.shape[1] or (new == keep).all():
            break
        keep = new
    return coef
