"""SAM's uncertain edge decided by the object's own pixels: one object's mask, refined.

SAM's mask logits are confident deep inside an object and far outside it; near the outline
they are not, and there a small model's outline wobbles by a few pixels (bulges, dents, a
mask a little too large or too small) even where the image shows a sharp edge. The
refinement splits the pixels around one object into a trimap by SAM's logits ``L`` (the
mask threshold ``t``, a band ``BAND`` logits wide):

- inside: ``L > t + BAND``, kept;
- outside: ``L < t - BAND``, dropped;
- uncertain: the rest; each of these pixels is given to the class whose intensity it is
  closer to: the object's own two-class model, the median of the inside pixels and the
  median of the outside pixels (Gaussian-smoothed, sigma ``SIGMA``), split at their mid-point.

Parts of the result that touch no inside pixel are dropped. Nothing changes where the two
medians are not clearly apart (less than ``MIN_SEPARATION`` times the pooled robust spread,
1.4826 x the median absolute deviation): on membrane stains, textured or flat objects the
logits stay SAM's alone; nor where either class has fewer than ``MIN_SAMPLES`` pixels. The
direction is learnt per object (a bright nucleus or a dark cell interior alike).

Where the idea comes from: the trimap of image matting and the per-object two-class intensity
model of GrabCut (Rother, Kolmogorov and Blake, "GrabCut: interactive foreground extraction
using iterated graph cuts", SIGGRAPH 2004), here with SAM's confident pixels as the trimap and
a median mid-point (a two-class threshold in the spirit of Ridler and Calvard's iterative
selection, IEEE SMC 1978) as the model; no graph cut. On the real nuclear sources
(benchmarks/bench_real.py, the bundled ``embryo`` model) it raised box IoU on every one
(docs/engine.md, "Mask edges").

Coordinates are napari's ``(row, col)``; arrays are ``(H, W)`` in one frame (the whole plane
or a zoomed view's window).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_devosam.engine.coords import BOX_MARGIN, mask_within_box
from napari_devosam.engine.image import encoded_gray

BAND = 2.0  # logits: |L - t| <= BAND is SAM's uncertain band, decided by intensity
MIN_SEPARATION = 3.0  # class medians this many pooled robust spreads apart, else no change
SIGMA = 1.0  # pixels: Gaussian smoothing of the intensities (shot noise)
MARGIN = 4  # pixels: the region refined reaches this far beyond the object's box
MIN_SAMPLES = 4  # pixels each class needs
_MAD_TO_SD = 1.4826  # a normal distribution's standard deviation per median absolute dev.


def wanted(sam, zoom: bool) -> bool:
    """Whether masks of ``sam`` are refined by default (``refine="auto"``): where small
    objects are prompted in zoomed views (``zoom``, e.g. ``engine.zoom.wanted``) of a
    bundled-format model (``sam.devosam_bundled``), the models it was measured on. The one
    rule for the ``Predictor`` and automatic segmentation alike."""
    return bool(zoom) and bool(getattr(sam, "devosam_bundled", False))


def gray(plane) -> np.ndarray:
    """``(H, W)`` float32 intensities of a ``(H, W)`` plane of any real dtype or an RGB(A)
    ``(H, W, 3|4)`` one: the grayscale it carries (``image.encoded_gray``: equal channels,
    or the one signal channel), else the mean of its three colours. Non-finite pixels (NaN
    gaps) take the median of the finite ones, so they never decide an edge. Raises
    ``ValueError`` for another shape."""
    a = np.asarray(plane)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        rgb = a[..., :3]
        carried = encoded_gray(rgb)
        a = carried if carried is not None else rgb.astype(np.float32).mean(axis=-1)
    elif a.ndim != 2:
        raise ValueError(f"a plane must be (H, W) or (H, W, 3|4), got shape {a.shape}")
    a = np.asarray(a, dtype=np.float32)
    finite = np.isfinite(a)
    if not finite.all():
        a = np.where(finite, a, np.median(a[finite]) if finite.any() else 0.0)
    return a


def region(box, shape, margin: int = MARGIN) -> tuple[int, int, int, int]:
    """The refined region of an inclusive ``(row0, col0, row1, col1)`` box in a ``shape``
    frame: the box grown by ``margin`` pixels, clipped; ``(r0, c0, r1, c1)``, ends exclusive."""
    h, w = shape[:2]
    r0, c0 = (max(int(np.floor(v)) - margin, 0) for v in box[:2])
    r1, c1 = (min(int(np.ceil(v)) + margin + 1, n) for v, n in ((box[2], h), (box[3], w)))
    return r0, c0, max(r1, r0), max(c1, c0)


def _numpy(a) -> np.ndarray:
    """A torch tensor (any device) or array -> float32 numpy."""
    if hasattr(a, "detach"):
        a = a.detach().float().cpu().numpy()
    return np.asarray(a, dtype=np.float32)


def refine_crop(
    logits,
    pixels,
    threshold: float = 0.0,
    band: float = BAND,
    min_separation: float = MIN_SEPARATION,
) -> tuple[np.ndarray, bool]:
    """One object's mask on a crop around it: ``(mask, changed)``.

    Arguments:
      logits: ``(h, w)`` SAM's mask logits (numpy or torch) at the crop's pixels.
      pixels: ``(h, w)`` float intensities of the same pixels, already smoothed
        (``refine_box`` does both).
      threshold: SAM's mask threshold (``sam.mask_threshold``, 0).

    Returns ``mask`` ``(h, w)`` bool, ``logits > threshold`` when the refinement does not
    apply (``changed`` False), else the trimap decided by intensity (module docstring).
    Raises ``ValueError`` when the shapes differ.
    """
    lg = _numpy(logits)
    px = np.asarray(pixels, dtype=np.float32)
    if lg.shape != px.shape or lg.ndim != 2:
        raise ValueError(f"logits {lg.shape} and pixels {px.shape} must be one (h, w) crop")
    mask = lg > threshold
    inside, outside = lg > threshold + band, lg < threshold - band
    if np.count_nonzero(inside) < MIN_SAMPLES or np.count_nonzero(outside) < MIN_SAMPLES:
        return mask, False
    a, b = float(np.median(px[inside])), float(np.median(px[outside]))
    spread = (
        0.5
        * _MAD_TO_SD
        * (float(np.median(np.abs(px[inside] - a))) + float(np.median(np.abs(px[outside] - b))))
    )
    if abs(a - b) <= min_separation * spread:
        return mask, False
    mid = 0.5 * (a + b)
    like_inside = px > mid if a > b else px < mid
    out = inside | (like_inside & ~outside)
    parts, n = ndimage.label(out)
    if n > 1:  # parts with no confident pixel are not this object
        keep = np.zeros(n + 1, dtype=bool)
        keep[parts[inside]] = True
        keep[0] = False
        out = keep[parts]
    return out, True


def refine_box(mask: np.ndarray, logits, pixels: np.ndarray, box, threshold: float = 0.0,
               sigma: float = SIGMA) -> bool:  # fmt: skip
    """Refine one object's ``mask`` in place around its ``box``; True when it changed.

    Arguments:
      mask: ``(H, W)`` bool, the object's mask in the frame (written in the region only).
      logits: ``(H, W)`` SAM's logits in the same frame (numpy, or torch on any device:
        only the region is copied).
      pixels: ``(H, W)`` float intensities (``gray``) of the same frame.
      box: inclusive ``(row0, col0, row1, col1)`` where the object is (its box prompt, or
        its mask's extent).
    """
    h, w = mask.shape
    r0, c0, r1, c1 = region(box, (h, w))
    if r1 <= r0 or c1 <= c0:
        return False
    pad = int(np.ceil(4 * sigma))
    a0, b0 = max(r0 - pad, 0), max(c0 - pad, 0)
    big = np.asarray(pixels[a0 : min(r1 + pad, h), b0 : min(c1 + pad, w)], dtype=np.float32)
    smooth = ndimage.gaussian_filter(big, sigma) if sigma > 0 else big
    smooth = smooth[r0 - a0 : r1 - a0, c0 - b0 : c1 - b0]
    out, changed = refine_crop(logits[r0:r1, c0:c1], smooth, threshold)
    if changed:
        mask[r0:r1, c0:c1] = out
    return changed


def refine_masks(masks: np.ndarray, logits, pixels: np.ndarray, boxes=None,
                 threshold: float = 0.0) -> np.ndarray:  # fmt: skip
    """Refine K objects' masks in place (``refine_box`` each); returns ``masks``.

    Arguments:
      masks: ``(K, H, W)`` bool, ``logits > threshold`` of ``logits``.
      logits: ``(K, H, W)`` SAM's logits of the same frame (numpy or torch).
      pixels: ``(H, W)`` float intensities of the frame (``gray``).
      boxes: ``(K, 4)`` inclusive ``(row0, col0, row1, col1)`` box prompts in the frame, or
        None: each mask's own extent grown by ``coords.BOX_MARGIN`` (a click's mask). A
        refined mask is kept within its box grown by ``BOX_MARGIN``, the box rule of
        ``coords.mask_within_box``.
    """
    for k in range(len(masks)):
        box = None if boxes is None else boxes[k]
        if box is None:
            rows = np.flatnonzero(masks[k].any(axis=1))
            if rows.size == 0:
                continue
            cols = np.flatnonzero(masks[k].any(axis=0))
            box = np.array([rows[0], cols[0], rows[-1], cols[-1]], float)
            box += np.array([-1, -1, 1, 1]) * BOX_MARGIN
        if refine_box(masks[k], logits[k], pixels, box, threshold):
            mask_within_box(masks[k], box)
    return masks
