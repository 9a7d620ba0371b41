"""Batched SAM decoding of many objects on one plane (private to tracking).

All objects of a plane go through SAM's decoder in one batch (two when some objects carry a
``mask_input`` and others do not: SAM encodes "no mask" differently from any mask). Prompts
are napari's ``(row, col)``; they become SAM's ``(x, y)`` through ``engine.coords`` and SAM's
input frame through ``ResizeLongestSide``, exactly as ``engine.predictor.Predictor`` does.

With ``window`` set, each object decodes on a window of the embedding around its
box grown by ``region_margin_px`` (``engine.window_decoder``: cost follows the object's size,
not the image's); None decodes on the whole embedding (``engine._fast``: SAM's masks to float
rounding).
"""

from __future__ import annotations

import numpy as np
import torch

from napari_devosam.engine._fast.decoder import FastDecoder
from napari_devosam.engine.coords import box_rc_to_xyxy, points_rc_to_xy
from napari_devosam.engine.window_decoder import WindowDecoder, window_for


class BatchDecoder:
    """Decode B objects per plane against one image embedding of ``sam``.

    Arguments:
      sam: a ``segment_anything`` ``Sam``.
      window: None decodes every object on the whole embedding; ``(context, min_cells)``
        decodes each on a window holding its box grown by ``region_margin_px``, with that
        context on each side (``engine.window_decoder.window_for``).
      region_margin_px: plane pixels around each box that the window must hold (the
        pixels the caller reads from the object's logits).
    """

    def __init__(self, sam, window: tuple[float, int] | None = None,
                 region_margin_px: float = 0.0):
        from segment_anything.utils.transforms import ResizeLongestSide

        self.sam = sam
        self._decoder = FastDecoder(sam)
        self._windows = None if window is None else WindowDecoder(sam, base=self._decoder)
        self.window = window
        self.region_margin_px = float(region_margin_px)
        self._resize = ResizeLongestSide(sam.image_encoder.img_size)
        self.embedding = None

    @property
    def device(self) -> torch.device:
        return self.sam.pixel_mean.device

    def set_embedding(self, embedding) -> None:
        """Use a ``PlaneEmbedding`` for the next ``decode`` calls."""
        embedding = embedding.to(self.device)
        (self._windows or self._decoder).set_image_embedding(embedding.features)
        self.embedding = embedding

    def decode(self, boxes: np.ndarray, points: np.ndarray | None,
               mask_inputs: list[torch.Tensor | None]) -> tuple[torch.Tensor, torch.Tensor,
                                                                 np.ndarray]:
        """Masks of B objects, one prompt set each.

        Arguments:
          boxes: ``(B, 4)`` float (row0, col0, row1, col1), already clipped to the plane.
          points: ``(B, 2)`` float (row, col) positive points inside the plane, or None.
          mask_inputs: B entries, each a ``(1, 4h, 4w)`` float tensor of SAM low-res logits
            from an earlier decode, or None.

        Returns ``(logits, low_res, iou)``: plane-sized logits ``(B, H, W)`` float32 (SAM's
        mask threshold applies), low-res logits ``(B, 1, 4h, 4w)`` on the model's device (to
        feed back as ``mask_input``), predicted IoU ``(B,)`` float32 numpy.
        """
        emb = self.embedding
        if emb is None:
            raise RuntimeError("no embedding set: call set_embedding first")
        n = len(boxes)
        size = emb.original_size
        boxes = np.asarray(boxes, float).reshape(n, 4)
        xyxy = self._resize.apply_boxes(box_rc_to_xyxy(boxes), size)
        windows = self._window_of(boxes, size)
        box_t = torch.as_tensor(xyxy, dtype=torch.float32, device=self.device).reshape(n, 4)
        pt_t = lab_t = None
        if points is not None:
            xy = self._resize.apply_coords(points_rc_to_xy(points), size).reshape(n, 1, 2)
            pt_t = torch.as_tensor(xy, dtype=torch.float32, device=self.device)
            lab_t = torch.ones((n, 1), dtype=torch.int32, device=self.device)
        h, w = emb.features.shape[-2:]
        low_res = torch.empty((n, 1, 4 * h, 4 * w), dtype=torch.float32, device=self.device)
        iou = torch.empty((n,), dtype=torch.float32, device=self.device)
        with_mask = [i for i in range(n) if mask_inputs[i] is not None]
        without = [i for i in range(n) if mask_inputs[i] is None]
        for group in (with_mask, without):
            if not group:
                continue
            idx = torch.as_tensor(group, device=self.device)
            masks = None
            if group is with_mask:
                masks = torch.stack([mask_inputs[i].reshape(1, 4 * h, 4 * w) for i in group])
            prompts = (None if pt_t is None else pt_t[idx], None if lab_t is None else lab_t[idx],
                       box_t[idx], masks)
            if windows is None:
                lr, score = self._decoder.decode(*prompts, False)
            else:
                lr, score = self._windows.decode(*prompts, windows[group])
            low_res[idx] = lr.float()
            iou[idx] = score[:, 0].float()
        up = self._decoder.upscale(low_res, emb.input_size, emb.original_size)
        return up[:, 0], low_res, iou.cpu().numpy()

    def _window_of(self, boxes: np.ndarray, size) -> np.ndarray | None:
        """``(B, 3)`` windows for (row0, col0, row1, col1) plane boxes, or None (no windows)."""
        if self._windows is None:
            return None
        m = self.region_margin_px
        grown = boxes + np.array([-m, -m, m, m])
        region = self._resize.apply_boxes(box_rc_to_xyxy(grown), size)
        grid = tuple(self.embedding.features.shape[-2:])
        return window_for(region, grid, self._windows.cell, *self.window)
