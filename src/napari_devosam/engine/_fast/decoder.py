"""Prompt -> low-res mask logits for one image embedding, and upscaling to the plane.

``FastDecoder`` wraps a SAM's prompt encoder and mask decoder. The image embedding is set
once per image (``set_image_embedding``), where everything that does not depend on the
prompt is computed; ``decode`` then only handles the prompt. Masks are chosen exactly as
``segment_anything``'s ``MaskDecoder`` does (multimask: the three ambiguity masks; otherwise
the single-mask output), so results equal ``SamPredictor``'s to float rounding.

The fast path (``kernels``, ``mask_upscale``) is the same arithmetic reordered:
image-only projections of the first transformer layer are cached per image, attention with
few prompt tokens is folded into the weights instead of projecting all image tokens, a mask
prompt only adds rank-16 terms, only the wanted masks are formed, and upsampling is one
sparse linear map per axis. On a 2-core CPU a click takes ~19-25 ms, 3-3.7x less than
``SamPredictor.predict`` (docs/benchmarks.md).
``FastDecoder(sam, fast=False)`` runs the stock modules instead (reference/fallback).

Coordinates here are SAM's input frame: ``(x, y)`` already resized with
``ResizeLongestSide.apply_coords`` / ``apply_boxes``. Conversion from napari's (row, col)
happens in ``engine.decoding.Decoder`` (the door callers use) through ``engine.coords``.

Nothing derived from the decoder's weights outlives ``decoder_changed``: after loading new
weights into ``sam.mask_decoder`` or ``sam.prompt_encoder`` in place, call
``decoder_changed()`` (the embedding is kept). One decode at a time per instance (scratch
buffers are reused between calls).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from napari_devosam.engine._fast import kernels as kernels
from napari_devosam.engine._fast.mask_upscale import Upscaler


class FastDecoder:
    """Decode prompts against one image embedding of ``sam``.

    Arguments:
      sam: a ``segment_anything`` ``Sam``; its prompt encoder and mask decoder are used (by
        reference, so weights loaded into them in place are seen after ``decoder_changed``).
      fast: use the reordered kernels (default); False runs the stock modules.
    """

    def __init__(self, sam, fast: bool = True):
        self.sam = sam
        self.fast = fast
        self._features: torch.Tensor | None = None
        self._dense_pe: torch.Tensor | None = None
        self._weights: kernels.DecoderWeights | None = None
        self._image: kernels.ImageState | None = None
        self._workspace = kernels.Workspace()
        self._upscalers: dict = {}

    @property
    def is_set(self) -> bool:
        return self._features is not None

    @property
    def features(self) -> torch.Tensor | None:
        """The image embedding ``(1, 256, h, w)`` in use, or None."""
        return self._features

    @property
    def dense_pe(self) -> torch.Tensor | None:
        """The prompt encoder's dense positional encoding ``(1, 256, h, w)``, or None."""
        return self._dense_pe

    @property
    def kernel_state(self) -> tuple[kernels.DecoderWeights, kernels.ImageState] | None:
        """What the fast kernels derived from the weights and the image, or None (``fast``
        off, or no embedding set)."""
        return None if self._image is None else (self._weights, self._image)

    def set_image_embedding(self, features: torch.Tensor) -> None:
        """Use ``features`` ``(1, 256, h, w)`` (on ``sam.device``) for the following decodes.

        Computes the prompt-independent part of the decoder for this image (~10 ms on a CPU).
        """
        if features.ndim != 4 or features.shape[0] != 1:
            shape = tuple(features.shape)
            raise ValueError(f"expected image features of shape (1, C, h, w), got {shape}")
        self._features = features
        self._image = None
        with torch.inference_mode():
            self._dense_pe = self.sam.prompt_encoder.get_dense_pe()
            if self.fast:
                if self._weights is None:
                    self._weights = kernels.DecoderWeights.from_sam(self.sam)
                self._image = kernels.ImageState(self.sam, self._weights, features)

    def decoder_changed(self) -> None:
        """Drop everything derived from decoder weights (the embedding is kept and re-used)."""
        self._weights = None
        self._image = None
        self._workspace.clear()
        if self._features is not None:
            self.set_image_embedding(self._features)

    reset = decoder_changed

    def decode(
        self,
        point_coords: torch.Tensor | None,
        point_labels: torch.Tensor | None,
        boxes: torch.Tensor | None,
        mask_input: torch.Tensor | None,
        multimask: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-res logits ``(B, C, 4h, 4w)`` and IoU ``(B, C)``; C = 3 with multimask else 1.

        Arguments (all on ``sam.device``; B is the batch of prompts):
          point_coords: ``(B, N, 2)`` float input-frame (x, y), or None.
          point_labels: ``(B, N)`` int, 1 positive / 0 negative, or None.
          boxes: ``(B, 4)`` float input-frame (x0, y0, x1, y1), or None.
          mask_input: ``(B, 1, 4h, 4w)`` float logits from an earlier round, or None.
        """
        if self._features is None:
            raise RuntimeError("no image embedding set: call set_image_embedding first")
        points = None if point_coords is None else (point_coords, point_labels)
        with torch.inference_mode():
            if self._image is not None:
                sparse, _ = self.sam.prompt_encoder(points=points, boxes=boxes, masks=None)
                if mask_input is not None:
                    mask_input = mask_input.to(sparse.dtype)
                return kernels.decode(
                    self.sam, self._weights, self._image, sparse, mask_input, multimask,
                    self._workspace,
                )  # fmt: skip
            sparse, dense = self.sam.prompt_encoder(points=points, boxes=boxes, masks=mask_input)
            return self.sam.mask_decoder(
                image_embeddings=self._features,
                image_pe=self._dense_pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
            )

    def upscale(
        self,
        low_res: torch.Tensor,
        input_size: tuple[int, int],
        original_size: tuple[int, int],
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, C, 4h, 4w)`` logits -> ``(B, C, H, W)`` float logits at the plane's size.

        Equal to ``sam.postprocess_masks``: upsample to SAM's square input, crop the resized
        image (``input_size``), resize to ``original_size`` (H, W). ``out``: an optional
        float32 ``(B, C, H, W)`` tensor to write into (saves a fresh allocation per click).
        """
        size = self.sam.image_encoder.img_size
        with torch.inference_mode():
            if self.fast and low_res.device.type in ("cpu", "cuda"):
                key = (tuple(low_res.shape[-2:]), tuple(input_size), tuple(original_size),
                       size, low_res.device)  # fmt: skip
                up = self._upscalers.get(key)
                if up is None:
                    if len(self._upscalers) > 8:
                        self._upscalers.clear()
                    up = Upscaler(*key[:4], device=low_res.device)
                    self._upscalers[key] = up
                return up(low_res, out=out)
            x = F.interpolate(low_res, (size, size), mode="bilinear", align_corners=False)
            x = x[..., : input_size[0], : input_size[1]]
            x = F.interpolate(x, tuple(original_size), mode="bilinear", align_corners=False)
            return x if out is None else out.copy_(x)
