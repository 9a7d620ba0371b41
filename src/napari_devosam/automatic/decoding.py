"""Batched prompt decoding for automatic segmentation, and the proposals it produces.

``PromptDecoder`` decodes many prompts against one plane embedding in batches through the
engine's decoder door (``engine.decoding.Decoder``: SAM's mask decoder to float rounding,
napari ``(row, col)`` prompts converted to SAM's input frame in ``engine.coords``, exactly as
``Predictor`` does). A ``Proposal`` is one candidate object: its extent in the plane, its
mask and logits cropped to that extent (plane resolution), its score and the prompt that
made it. With the plane's intensities (``PromptDecoder.pixels``) each mask's uncertain edge
is decided by them (``engine.mask_refine``, as the ``Predictor``'s masks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Proposal:
    """One candidate object on a plane.

    ``box``: half-open ``(row0, col0, row1, col1)`` ints of the crop; ``mask`` ``(h, w)``
    bool and ``logits`` ``(h, w)`` float32 inside it (plane resolution); ``score`` predicted
    IoU; ``stability`` SAM's stability score; ``prompt`` a JSON-able dict (``point`` (row,
    col), ``box`` (row0, col0, row1, col1) inclusive or None, ``source``); ``sam_mask``
    ``(h, w)`` bool: SAM's own mask where ``mask`` was refined by intensity (``mask_refine``),
    else None (``mask`` is SAM's).
    """

    box: tuple[int, int, int, int]
    mask: np.ndarray
    logits: np.ndarray
    score: float
    stability: float
    prompt: dict
    sam_mask: np.ndarray | None = None

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    def tight_xyxy(self) -> tuple[int, int, int, int]:
        """SAM's mask box ``(x0, y0, x1, y1)`` (inclusive pixel extents) in the plane."""
        rows = np.flatnonzero(self.mask.any(axis=1))
        cols = np.flatnonzero(self.mask.any(axis=0))
        r0, c0 = self.box[:2]
        return (c0 + int(cols[0]), r0 + int(rows[0]), c0 + int(cols[-1]), r0 + int(rows[-1]))

    def full_mask(self, shape) -> np.ndarray:
        out = np.zeros(shape, dtype=bool)
        r0, c0, r1, c1 = self.box
        out[r0:r1, c0:c1] = self.mask
        return out


def stability_scores(logits, threshold: float, offset: float):
    """SAM's stability score (``segment_anything.utils.amg.calculate_stability_score``): the
    IoU of the masks thresholded at ``threshold + offset`` and ``threshold - offset``, for
    ``(..., h, w)`` logits (a torch tensor); an empty looser mask gives NaN, as stock."""
    inter = (logits > threshold + offset).sum((-1, -2))
    union = (logits > threshold - offset).sum((-1, -2))
    return inter / union


class PromptDecoder:
    """Decode batches of prompts on one plane embedding of ``sam``.

    ``embedding``: a ``PlaneEmbedding`` (moved to the model's device). ``pixels``: ``(H, W)``
    float32 intensities of the embedded frame (``mask_refine.gray``) to refine masks with in
    ``crop_proposals``, or None (SAM's masks as they are); may be reassigned.
    """

    def __init__(self, sam, embedding, pixels: np.ndarray | None = None):
        from napari_devosam.engine.decoding import Decoder

        self.sam = sam
        self.device = sam.pixel_mean.device
        self.decoder = Decoder(sam)
        self.decoder.set_embedding(embedding)
        self.embedding = self.decoder.embedding
        self.threshold = float(sam.mask_threshold)
        self.pixels = pixels
        h, w = self.embedding.features.shape[-2:]
        size = sam.image_encoder.img_size
        ih, iw = self.embedding.input_size
        # the low-res rows/cols that map into the image (the rest is the encoder's padding)
        self.valid = (min(4 * h, math.ceil(ih * 4 * h / size)),
                      min(4 * w, math.ceil(iw * 4 * w / size)))

    @property
    def plane_shape(self) -> tuple[int, int]:
        return tuple(self.embedding.original_size)

    def decode(self, points_rc=None, boxes_rc=None, multimask: bool = False):
        """Low-res logits ``(B, C, 4h, 4w)`` and predicted IoU ``(B, C)`` (torch tensors).

        ``points_rc``: ``(B, N, 2)`` (row, col) positive points or None; ``boxes_rc``:
        ``(B, 4)`` (row0, col0, row1, col1) or None; C = 3 with ``multimask`` else 1.
        """
        return self.decoder.decode(points_rc, None, boxes_rc, None, multimask)

    def upscale(self, low_res):
        """``(K, 4h, 4w)`` low-res logits -> ``(K, H, W)`` float32 plane logits (torch), equal
        to ``Sam.postprocess_masks``."""
        return self.decoder.upscale(low_res[:, None])[:, 0]


def crop_proposals(decoder: PromptDecoder, low_res, scores, stabilities, prompts,
                   limits=None, chunk: int = 16) -> list[Proposal]:
    """Upscale kept low-res logits ``(K, 4h, 4w)`` to the plane, ``chunk`` at a time, and crop
    each to its mask's extent (grown by one pixel); empty masks are dropped.

    ``limits``: optional ``(K, 4)`` half-open (row0, col0, row1, col1) windows; logits outside
    a window are ignored (a box prompt's object stays near its box). Where ``decoder.pixels``
    is set, each mask is refined (``mask_refine.refine_masks`` around its own extent) and its
    window applied again; SAM's own mask is kept in ``Proposal.sam_mask`` (the crop then
    spans both) and the logits stay SAM's. A stand-in decoder without ``pixels`` is not
    refined.
    """
    out: list[Proposal] = []
    pixels = getattr(decoder, "pixels", None)
    H, W = decoder.plane_shape
    for start in range(0, len(low_res), chunk):
        up = decoder.upscale(low_res[start:start + chunk]).float().cpu().numpy()
        for j, logits in enumerate(up):
            k = start + j
            sam_mask = logits > decoder.threshold
            if limits is not None:
                r0, c0, r1, c1 = (int(v) for v in limits[k])
                sam_mask[:r0] = sam_mask[r1:] = False
                sam_mask[:, :c0] = sam_mask[:, c1:] = False
            mask = sam_mask
            if pixels is not None:
                mask = _refined(sam_mask, logits, pixels, decoder.threshold,
                                None if limits is None else limits[k])
            rows = np.flatnonzero((mask | sam_mask).any(axis=1))
            if rows.size == 0 or not mask.any():
                continue
            cols = np.flatnonzero((mask | sam_mask).any(axis=0))
            box = (max(int(rows[0]) - 1, 0), max(int(cols[0]) - 1, 0),
                   min(int(rows[-1]) + 2, H), min(int(cols[-1]) + 2, W))
            sl = (slice(box[0], box[2]), slice(box[1], box[3]))
            out.append(Proposal(box, mask[sl].copy(), logits[sl].copy(), float(scores[k]),
                                float(stabilities[k]), prompts[k],
                                None if np.array_equal(mask, sam_mask) else sam_mask[sl].copy()))
    return out


def _refined(sam_mask, logits, pixels, threshold: float, limit=None) -> np.ndarray:
    """A refined copy of one ``(H, W)`` bool mask (``mask_refine.refine_masks`` around its
    extent), zeroed outside the half-open ``limit`` window ``(row0, col0, row1, col1)``."""
    from napari_devosam.engine.mask_refine import refine_masks

    mask = sam_mask.copy()
    refine_masks(mask[None], logits[None], pixels, None, threshold)
    if limit is not None:
        r0, c0, r1, c1 = (int(v) for v in limit)
        mask[:r0] = mask[r1:] = False
        mask[:, :c0] = mask[:, c1:] = False
    return mask
