"""The one door to SAM's mask decoder: batched prompts on one plane, in napari coordinates.

``Decoder`` holds one plane's embedding (``set_embedding``) and decodes B prompts at once:
points ``(B, N, 2)`` (row, col), boxes ``(B, 4)`` (row0, col0, row1, col1), mask inputs
(low-res logits of an earlier decode). It returns SAM's low-res logits and predicted IoU;
``upscale`` turns low-res logits into plane-sized logits. With ``windows`` (``windows_for``)
each prompt decodes on a window of the embedding around its box: cost follows the object's
size, not the image's, and masks approximate SAM's (docs/tracking.md). Without windows masks
equal ``segment_anything``'s to float rounding. The predictor (one click), tracking (objects
through T/Z) and automatic segmentation (seeds, grids) all decode through it; coordinates
become SAM's input frame only here, through ``engine.coords``.

Fine-tuning decodes with gradients: ``decode_tokens`` (the stock modules) and
``decode_tokens_fast`` (the same arithmetic folded, a fraction of the work) take ``Prompts``,
SAM's token lists already in the input frame (the prompt simulation works there).

The kernels behind this door live in the private ``engine._fast``; nothing outside
``engine`` imports them (tests/test_layout.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from napari_devosam.engine._fast.decoder import FastDecoder
from napari_devosam.engine._fast.tokens import BOX_BR, BOX_TL, NEG, PAD, POS, Prompts
from napari_devosam.engine._fast.tokens import decode as decode_tokens
from napari_devosam.engine._fast.trainable import decode_fast as decode_tokens_fast
from napari_devosam.engine._fast.window_decoder import WindowDecoder, window_for
from napari_devosam.engine.coords import boxes_to_input, points_to_input

__all__ = ["BOX_BR", "BOX_TL", "NEG", "PAD", "POS", "Decoder", "Prompts", "decode_tokens",
           "decode_tokens_fast"]

MaskInputs = torch.Tensor | Sequence[torch.Tensor | None] | None


class Decoder:
    """Decode batches of prompts against one plane embedding of ``sam``.

    Arguments:
      sam: a ``segment_anything`` ``Sam``; its prompt encoder and mask decoder are used by
        reference (after loading other weights into them in place, call ``decoder_changed``).
      fast: the package's reordered kernels (default); False runs the stock modules.

    One decode at a time per instance (scratch buffers are reused between calls).
    """

    def __init__(self, sam, fast: bool = True):
        self.sam = sam
        self._base = FastDecoder(sam, fast=fast)
        self._windows: WindowDecoder | None = None  # made on the first windowed decode
        self.embedding = None
        self._scratch: torch.Tensor | None = None  # upscale_scratch's buffer

    @property
    def device(self) -> torch.device:
        return self.sam.pixel_mean.device

    @property
    def img_size(self) -> int:
        return int(self.sam.image_encoder.img_size)

    def set_embedding(self, embedding) -> None:
        """Use a ``PlaneEmbedding`` (moved to the model's device) for the next decodes.
        Raises ``ValueError`` for features other than ``(1, C, h, w)`` on the model's grid."""
        embedding = embedding.to(self.device)
        self._base.set_image_embedding(embedding.features)
        grid = tuple(self._base.dense_pe.shape[-2:])
        if tuple(embedding.features.shape[-2:]) != grid:
            raise ValueError(f"features grid {tuple(embedding.features.shape[-2:])} does not "
                             f"match the model's {grid}")
        self.embedding = embedding

    def decoder_changed(self) -> None:
        """Drop everything derived from the decoder's weights (the embedding is kept)."""
        self._base.decoder_changed()
        if self._windows is not None:
            self._windows.decoder_changed()

    def _require(self):
        if self.embedding is None:
            raise RuntimeError("no embedding set: call set_embedding first")
        return self.embedding

    def decode(self, points=None, point_labels=None, boxes=None, mask_input: MaskInputs = None,
               multimask: bool = False, windows: np.ndarray | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-res logits ``(B, C, 4h, 4w)`` and predicted IoU ``(B, C)`` (torch, on the
        model's device); C = 3 (SAM's ambiguity masks) with ``multimask``, else 1.

        Arguments (B prompts; plane pixel coordinates, already validated/clipped):
          points: ``(B, N, 2)`` float (row, col), or None.
          point_labels: ``(B, N)`` 1 (object) / 0 (background); default all 1.
          boxes: ``(B, 4)`` float (row0, col0, row1, col1), or None.
          mask_input: ``(B, 1, 4h, 4w)`` logits of an earlier decode; or B entries, each
            ``4h * 4w`` logits or None (decoded in two groups, as SAM encodes "no mask"
            differently from any mask; the outputs are then float32); or None.
          windows: ``(B, 3)`` from ``windows_for``: each prompt decodes on its window; None
            decodes on the whole embedding.
        """
        emb = self._require()
        size = emb.original_size
        coords = labels = box_t = None
        if points is not None:
            pts = np.asarray(points, dtype=np.float64)
            pts = pts.reshape(len(pts), -1, 2)
            xy = points_to_input(pts, size, self.img_size)
            coords = torch.as_tensor(xy, dtype=torch.float32, device=self.device)
            if point_labels is None:
                labels = torch.ones(pts.shape[:2], dtype=torch.int32, device=self.device)
            else:
                lab = np.asarray(point_labels).reshape(pts.shape[:2])
                labels = torch.as_tensor(lab, dtype=torch.int32, device=self.device)
        if boxes is not None:
            xyxy = boxes_to_input(boxes, size, self.img_size)
            box_t = torch.as_tensor(xyxy, dtype=torch.float32, device=self.device)
        if mask_input is None or isinstance(mask_input, torch.Tensor):
            return self._run(coords, labels, box_t, mask_input, multimask, windows)
        return self._grouped(coords, labels, box_t, list(mask_input), multimask, windows)

    def _run(self, coords, labels, boxes, masks, multimask, windows):
        if windows is None:
            return self._base.decode(coords, labels, boxes, masks, multimask)
        if self._windows is None:
            self._windows = WindowDecoder(self.sam, fast=self._base.fast, base=self._base)
        return self._windows.decode(coords, labels, boxes, masks, windows, multimask)

    def _grouped(self, coords, labels, boxes, mask_inputs, multimask, windows):
        """Prompts with a mask input and those without, each group in one batch."""
        h, w = self.embedding.features.shape[-2:]
        n, c = len(mask_inputs), 3 if multimask else 1
        low_res = torch.empty((n, c, 4 * h, 4 * w), dtype=torch.float32, device=self.device)
        iou = torch.empty((n, c), dtype=torch.float32, device=self.device)
        with_mask = [i for i in range(n) if mask_inputs[i] is not None]
        without = [i for i in range(n) if mask_inputs[i] is None]
        for group in (with_mask, without):
            if not group:
                continue
            idx = torch.as_tensor(group, device=self.device)
            masks = None
            if group is with_mask:
                masks = torch.stack([mask_inputs[i].reshape(1, 4 * h, 4 * w) for i in group])
            lr, score = self._run(
                None if coords is None else coords[idx], None if labels is None else labels[idx],
                None if boxes is None else boxes[idx], masks, multimask,
                None if windows is None else np.asarray(windows)[group])
            low_res[idx] = lr.float()
            iou[idx] = score.float()
        return low_res, iou

    def windows_for(self, boxes, margin_px: float = 0.0, context: float = 0.0,
                    min_cells: int = 3) -> np.ndarray:
        """``(B, 3)`` int64 windows ``(row0, col0, size)`` in embedding cells for ``(B, 4)``
        plane boxes (row0, col0, row1, col1): each holds its box grown by ``margin_px``
        plane pixels (the pixels the caller reads), plus ``context`` (a fraction of the
        box's longer side, at least ``min_cells`` cells) on each side. Raises ``ValueError``
        for a negative or non-finite ``context`` or a negative ``min_cells``."""
        emb = self._require()
        m = float(margin_px)
        grown = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) + np.array([-m, -m, m, m])
        region = boxes_to_input(grown, emb.original_size, self.img_size)
        grid = tuple(emb.features.shape[-2:])
        return window_for(region, grid, self.img_size / grid[0], context, min_cells)

    def upscale(self, low_res: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, 4h, 4w)`` low-res logits -> ``(B, C, H, W)`` float32 plane logits (torch),
        equal to ``Sam.postprocess_masks``. ``out``: an optional float32 ``(B, C, H, W)``
        tensor to write into."""
        emb = self._require()
        return self._base.upscale(low_res, emb.input_size, emb.original_size, out=out)

    def upscale_scratch(self, low_res: torch.Tensor) -> torch.Tensor:
        """``upscale`` into a buffer reused between calls (valid until the next call): for
        the per-click path, where a fresh plane-sized tensor can cost page faults. Sized for
        the most masks seen, so 1- and 3-mask clicks share it."""
        b, c = low_res.shape[:2]
        plane = tuple(self._require().original_size)
        buf = self._scratch
        same = buf is not None and buf.device == low_res.device and buf.shape[0] == b
        same = same and tuple(buf.shape[2:]) == plane
        if not same or buf.shape[1] < c:
            c_max = max(c, buf.shape[1]) if same else c
            buf = self._scratch = torch.empty((b, c_max, *plane), dtype=torch.float32,
                                              device=low_res.device)
        return self.upscale(low_res, out=buf[:, :c])
