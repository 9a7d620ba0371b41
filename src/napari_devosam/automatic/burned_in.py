"""Marks drawn into the pixels (a scale bar, a time stamp, a label) left out of the analysis.

Figures and screen captures carry a scale bar and text drawn at the image's brightest value.
To the seeds' analysis they looked like structure: a new-user trial's scale bar and time stamp
on CTC CHO and cells3d planes made the estimated nucleus diameter 11 and 13 px instead of 53
and 41, every nucleus came back in 5-10 pieces, and letters became objects (F1 0.842 ->
0.000, 0.905 -> 0.013).

What is drawn has a sharp edge; what is imaged is blurred by the optics. A mark is a connected
part (8-neighbours, at least ``MIN_AREA`` px) of the pixels at the plane's maximum whose
one-pixel rim has a median below ``SHARP_EDGE`` of the way from the plane's 1st percentile to
that maximum, and that is drawn-like in shape: strokes (letters) or a bar. Sharp-edged filled
objects at the maximum are kept: rendered or thresholded images (the package's phantoms)
have them. On the trial's marks the rims measured 0.00-0.27; saturated real structures
(CTC HeLa's bright nuclei, the DevoLearn nuclear movie's) 0.85-0.99; DSB2018, cells3d, CTC
CHO, both DevoLearn movies and the team's two images have no other part at their maximum
of 4 px or more. When the parts at the maximum cover more than ``MAX_FRACTION`` of the plane
(a saturated image) nothing is taken for a mark.

A mark (grown by ``GROW`` px, for anti-aliased edges) takes the median of the pixels around it,
for the seeds' analysis and for what SAM sees in zoomed views; the image itself is unchanged.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

MIN_AREA = 4  # px: smaller parts at the maximum are hot pixels (the 3x3 median takes them)
SHARP_EDGE = 0.5  # a rim's median below this fraction of the range: drawn, not imaged
MAX_FRACTION = 0.05  # more of the plane at its maximum: saturation, not marks
GROW = 1  # px around a mark that go with it (anti-aliased edges)
STROKE_RADIUS = 2.5  # px: a letter's stroke is at most twice this wide
BAR_ELONGATION = 4.0  # a bar's long side over its short one


def burned_in(data: np.ndarray) -> np.ndarray | None:
    """The marks of ``data`` ``(H, W)`` (finite floats) as an ``(H, W)`` bool mask (grown by
    ``GROW``), or None when there is none (rule of the module docstring)."""
    top = float(data.max())
    at_top = data >= top
    if not at_top.any() or at_top.mean() > MAX_FRACTION:
        return None
    low = float(np.percentile(data, 1))
    if top <= low:
        return None
    lab, n = ndimage.label(at_top, structure=np.ones((3, 3), dtype=bool))
    marks = np.zeros(data.shape, dtype=bool)
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        window = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in sl)
        part = lab[window] == i
        if part.sum() < MIN_AREA:
            continue
        rim = ndimage.binary_dilation(part) & ~part
        if (float(np.median(data[window][rim])) - low) / (top - low) < SHARP_EDGE \
                and _stroke_or_bar(part):
            marks[window] |= part
    if not marks.any():
        return None
    return ndimage.binary_dilation(marks, iterations=GROW) if GROW else marks


def _stroke_or_bar(part: np.ndarray) -> bool:
    """Whether a part is drawn-like in shape: strokes at most ``2 * STROKE_RADIUS`` px wide
    (letters), or a bar ``BAR_ELONGATION`` times longer than wide. A filled disc at the
    maximum with a sharp edge (a rendered or thresholded nucleus: the package's own phantoms)
    is neither."""
    inner = ndimage.distance_transform_edt(np.pad(part, 1)).max()
    rows, cols = np.nonzero(part)
    h, w = int(np.ptp(rows)) + 1, int(np.ptp(cols)) + 1
    return inner <= STROKE_RADIUS or max(h, w) >= BAR_ELONGATION * min(h, w)


def painted_over(data: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """``data`` with each mark (connected part of ``marks``) set to the median of the pixels
    in a 3-px band around it."""
    out = np.array(data, dtype=np.float32, copy=True)
    lab, _ = ndimage.label(marks, structure=np.ones((3, 3), dtype=bool))
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        window = tuple(slice(max(s.start - 4, 0), s.stop + 4) for s in sl)
        part = lab[window] == i
        band = ndimage.binary_dilation(part, iterations=3) & ~marks[window]
        if band.any():
            out[window][part] = float(np.median(out[window][band]))
    return out
