"""SAM's mask decoder on a window of the image embedding around each prompt.

SAM's decoder (``segment_anything.modeling.MaskDecoder``) runs a two-way transformer over
all ``h x w`` image tokens (4096 for every released SAM) for every prompt, so its cost per
prompt is fixed by the image, not by the object. A cell covers a small part of the image:
propagation (``tracking``) decodes each object on a square window of the embedding around
its prompt box instead, grown by some context on each side. Inside the window the
arithmetic is SAM's: by default the fast decoder's kernels run on per-window crops of their
per-token inputs (``windowed``); the reference path (``fast=False``) runs the
stock modules (transformer with fused attention, ``two_way``; output upscaling,
hypernetwork MLPs, IoU head) on the cropped image embedding, positional encoding and mask
input. Every per-location part of the decoder (the dense positional encoding, the mask
input's ``2x2``-stride-2 downscaling, the ``2x2``-stride-2 upscaling) is exact on an aligned
crop. What changes is attention's reach: the prompt tokens see only the window's image
tokens, so their softmax is taken over fewer keys. Windowed masks are an approximation of
SAM's; how close, for the shipped model and the tracking targets, is measured in
docs/tracking.md.

Cost scales with the window's area (docs/tracking.md, "Measured speed").

Coordinates are SAM's input frame: ``(x, y)`` already resized (``engine.coords``); windows
are ``(row0, col0, size)`` in embedding cells (one cell is ``img_size / h`` input pixels).
The rest of the package reaches this module through ``engine.decoding.Decoder``
(``windows=``, ``windows_for``), which converts napari's coordinates; without windows the
door runs ``decoder.FastDecoder`` (stock results to float rounding).
"""

from __future__ import annotations

import numpy as np
import torch

from napari_devosam.engine._fast import kernels
from napari_devosam.engine._fast.decoder import FastDecoder
from napari_devosam.engine._fast.mask_head import MaskHead
from napari_devosam.engine._fast.two_way import two_way
from napari_devosam.engine._fast.windowed import window_inputs
from napari_devosam.engine._fast.workspace import Workspace

SIZE_STEP = 4  # window sides are rounded up to a multiple of this (fewer distinct batches)


def window_for(regions: np.ndarray, grid: tuple[int, int], cell: float,
               context: float = 0.0, min_cells: int = 3) -> np.ndarray:
    """Square windows of the embedding grid that hold ``regions`` with context.

    Arguments:
      regions: ``(B, 4)`` float input-frame ``(x0, y0, x1, y1)``: what each window must hold.
      grid: the embedding's ``(h, w)`` in cells.
      cell: input pixels per embedding cell (``img_size / h``).
      context: each side grows by this fraction of the region's longer side, and by at least
        ``min_cells`` cells.
      min_cells: the least context on each side, in cells.

    Returns ``(B, 3)`` int64 ``(row0, col0, size)``: ``size`` is a multiple of ``SIZE_STEP``
    (or the grid's shorter side), the window covers every cell the region with its context
    touches (when it fits) and is shifted to lie inside the grid. Raises ``ValueError`` for
    a negative or non-finite ``context`` or a negative ``min_cells``.
    """
    if not (np.isfinite(context) and context >= 0 and min_cells >= 0):
        raise ValueError(f"context and min_cells must be finite and >= 0, got {context}, "
                         f"{min_cells}")
    regions = np.asarray(regions, dtype=np.float64).reshape(-1, 4) / cell
    h, w = grid
    longest = np.maximum(regions[:, 2] - regions[:, 0], regions[:, 3] - regions[:, 1])
    pad = np.maximum(context * longest, min_cells)
    low = np.floor(regions[:, :2] - pad[:, None])  # (col, row) of the first cell covered
    high = np.ceil(regions[:, 2:] + pad[:, None])  # one past the last
    size = np.ceil((high - low).max(axis=1) / SIZE_STEP) * SIZE_STEP
    size = np.minimum(size, min(h, w)).astype(np.int64)
    start = low - (size[:, None] - (high - low)) // 2  # the slack shared by both sides
    col0 = np.clip(start[:, 0], 0, w - size).astype(np.int64)
    row0 = np.clip(start[:, 1], 0, h - size).astype(np.int64)
    return np.stack([row0, col0, size], axis=1)


class WindowDecoder:
    """Decode prompts of one image embedding of ``sam``, each on its own window.

    Arguments:
      sam: a ``segment_anything`` ``Sam``; its prompt encoder and mask decoder are used by
        reference (after loading other weights into them in place, call
        ``decoder_changed``).
      fast: run the fast decoder's kernels (``kernels``) on the windows (default);
        False runs the stock modules (with fused attention) on them.
      base: the whole-embedding ``FastDecoder`` whose per-image state the windows are cut
        from (made here when not given); setting the embedding on either sets it for both.
    """

    def __init__(self, sam, fast: bool = True, base: FastDecoder | None = None):
        self.sam = sam
        self.base = base if base is not None else FastDecoder(sam, fast=fast)
        self._heads: dict[int, MaskHead] = {}

    def set_image_embedding(self, features: torch.Tensor) -> None:
        """Use ``features`` ``(1, C, h, w)`` (on ``sam.device``) for the following decodes.
        Raises ``ValueError`` for another shape or a grid other than the model's."""
        self.base.set_image_embedding(features)
        if self.base.dense_pe.shape[-2:] != features.shape[-2:]:
            raise ValueError(f"features grid {tuple(features.shape[-2:])} does not match the "
                             f"model's {tuple(self.base.dense_pe.shape[-2:])}")

    def decoder_changed(self) -> None:
        """Drop everything derived from the decoder's weights (after loading new ones)."""
        self._heads = {}
        self.base.decoder_changed()

    @property
    def cell(self) -> float:
        """Input pixels per embedding cell."""
        return self.sam.image_encoder.img_size / self.base.dense_pe.shape[-2]

    def decode(self, point_coords, point_labels, boxes, mask_input, windows: np.ndarray,
               multimask: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-res logits ``(B, C, 4h, 4w)`` float32 and predicted IoU ``(B, C)``.

        Arguments (tensors on ``sam.device``; B prompts):
          point_coords: ``(B, N, 2)`` float input-frame (x, y), or None.
          point_labels: ``(B, N)`` int, 1 positive / 0 negative, or None.
          boxes: ``(B, 4)`` float input-frame (x0, y0, x1, y1), or None.
          mask_input: ``(B, 1, 4h, 4w)`` float low-res logits from an earlier decode, or None.
          windows: ``(B, 3)`` int ``(row0, col0, size)`` from ``window_for``.
          multimask: C = 3 (SAM's ambiguity masks) when True, else 1 (the single-mask output).

        Outside its window an object's logits are the window's lowest logit (at most SAM's
        mask threshold - 1): no pixel there belongs to it.
        """
        features = self.base.features
        if features is None:
            raise RuntimeError("no image embedding set: call set_image_embedding first")
        windows = np.asarray(windows, dtype=np.int64).reshape(-1, 3)
        b = len(windows)
        h, w = features.shape[-2:]
        n_masks = 3 if multimask else 1
        device = features.device
        low_res = torch.empty((b, n_masks, 4 * h, 4 * w), dtype=torch.float32, device=device)
        iou = torch.empty((b, n_masks), dtype=torch.float32, device=device)
        with torch.inference_mode():
            for size in np.unique(windows[:, 2]):
                group = np.flatnonzero(windows[:, 2] == size)
                idx = torch.as_tensor(group, device=device)
                masks, scores = self._decode_group(
                    None if point_coords is None else point_coords[idx],
                    None if point_labels is None else point_labels[idx],
                    None if boxes is None else boxes[idx],
                    None if mask_input is None else mask_input[idx],
                    windows[group], int(size), multimask)
                self._paste(low_res, group, windows[group], masks)
                iou[idx] = scores.float()
        return low_res, iou

    def _decode_group(self, coords, labels, boxes, mask_input, windows, size, multimask):
        """MaskDecoder.predict_masks with one window per prompt (all of side ``size``)."""
        sam, dec = self.sam, self.sam.mask_decoder
        points = None if coords is None else (coords, labels)
        sparse, _ = sam.prompt_encoder(points=points, boxes=boxes, masks=None)
        crops = None
        if mask_input is not None:
            crops = torch.stack([m[:, 4 * r:4 * (r + size), 4 * c:4 * (c + size)]
                                 for m, (r, c, _) in zip(mask_input, windows, strict=True)])
            crops = crops.to(sparse.dtype)
        state = self.base.kernel_state
        if state is not None:
            head = self._heads.get(size)
            if head is None:
                head = self._heads[size] = MaskHead(dec, (size, size))
            weights, image = window_inputs(*state, windows, size, head)
            # a fresh workspace: batch and window sizes change from call to call
            return kernels.decode(sam, weights, image, sparse, crops, multimask, Workspace())
        src = _crops(self.base.features[0], windows, size)
        pos = _crops(self.base.dense_pe[0], windows, size)
        if crops is None:
            src = src + sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        else:
            src = src + sam.prompt_encoder.mask_downscaling(crops)
        out = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
        tokens = torch.cat([out.unsqueeze(0).expand(len(windows), -1, -1), sparse], dim=1)
        hs, keys = two_way(dec.transformer, src, pos, tokens)  # keys (B, size^2, C)
        wanted = range(1, dec.num_mask_tokens) if multimask else range(1)
        hyper = torch.stack([dec.output_hypernetworks_mlps[i](hs[:, 1 + i]) for i in wanted],
                            dim=1)
        b, c = keys.shape[0], keys.shape[-1]
        up = dec.output_upscaling(keys.transpose(1, 2).reshape(b, c, size, size))
        masks = (hyper @ up.flatten(2)).view(b, len(wanted), *up.shape[-2:])
        scores = dec.iou_prediction_head(hs[:, 0])
        scores = scores[:, 1:] if multimask else scores[:, :1]
        return masks, scores

    def _paste(self, low_res, group, windows, masks) -> None:
        cap = float(getattr(self.sam, "mask_threshold", 0.0)) - 1.0
        for j, (i, (r, c, s)) in enumerate(zip(group, windows, strict=True)):
            m = masks[j].float()
            low_res[i].fill_(min(float(m.min()), cap))
            low_res[i, :, 4 * r:4 * (r + s), 4 * c:4 * (c + s)] = m


def _crops(grid_map: torch.Tensor, windows, size: int) -> torch.Tensor:
    """``(C, h, w)`` -> ``(B, C, size, size)``, one crop per window."""
    return torch.stack([grid_map[:, r:r + size, c:c + size] for r, c, _ in windows])

