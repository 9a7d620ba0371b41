"""Batched SAM decoding of many objects on one plane, with tracking's settings (private to
tracking).

All objects of a plane go through the engine's decoder door (``engine.decoding.Decoder``) in
one batch (two when some objects carry a ``mask_input`` and others do not). Prompts are
napari's ``(row, col)``; the door converts them to SAM's input frame (``engine.coords``).

With ``window`` set, each object decodes on a window of the embedding around its box grown by
``region_margin_px`` (``Decoder.windows_for``: cost follows the object's size, not the
image's); None decodes on the whole embedding (SAM's masks to float rounding).
"""

from __future__ import annotations

import numpy as np
import torch

from napari_devosam.engine.decoding import Decoder


class BatchDecoder:
    """Decode B objects per plane against one image embedding of ``sam``.

    Arguments:
      sam: a ``segment_anything`` ``Sam``.
      window: None decodes every object on the whole embedding; ``(context, min_cells)``
        decodes each on a window holding its box grown by ``region_margin_px``, with that
        context on each side (``engine.decoding.Decoder.windows_for``).
      region_margin_px: plane pixels around each box that the window must hold (the
        pixels the caller reads from the object's logits).
    """

    def __init__(self, sam, window: tuple[float, int] | None = None,
                 region_margin_px: float = 0.0):
        self.sam = sam
        self._door = Decoder(sam)
        self.window = window
        self.region_margin_px = float(region_margin_px)

    @property
    def device(self) -> torch.device:
        return self._door.device

    @property
    def embedding(self):
        """The ``PlaneEmbedding`` in use, or None."""
        return self._door.embedding

    def set_embedding(self, embedding) -> None:
        """Use a ``PlaneEmbedding`` for the next ``decode`` calls."""
        self._door.set_embedding(embedding)

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
        door = self._door
        if door.embedding is None:
            raise RuntimeError("no embedding set: call set_embedding first")
        n = len(boxes)
        boxes = np.asarray(boxes, float).reshape(n, 4)
        windows = None
        if self.window is not None:
            windows = door.windows_for(boxes, self.region_margin_px, *self.window)
        pts = None if points is None else np.asarray(points, float).reshape(n, 1, 2)
        low_res, iou = door.decode(pts, None, boxes, list(mask_inputs), windows=windows)
        up = door.upscale(low_res)
        return up[:, 0], low_res, iou[:, 0].cpu().numpy()
