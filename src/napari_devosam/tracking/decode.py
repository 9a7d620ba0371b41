"""Batched SAM decoding of many objects on one plane, with tracking's settings (private to
tracking).

All objects of a plane go through the engine's decoder door (``engine.decoding.Decoder``) in
one batch (two when some objects carry a ``mask_input`` and others do not). Prompts are
napari's ``(row, col)``; the door converts them to SAM's input frame (``engine.coords``).

With ``window`` set, each object decodes on a window of the embedding around its box grown by
``region_margin_px`` (``Decoder.windows_for``: cost follows the object's size, not the
image's); None decodes on the whole embedding (SAM's masks to float rounding).

With zoom on (``engine.zoom``; default for the bundled models) and the plane's pixels given,
an object whose box is small on the whole plane decodes in a zoomed view of the plane around
it, encoded on its own, like the ``Predictor``'s boxes. A view is a frame of its own, so such
an object's ``mask_input`` is not used, and its returned low-res logits are brought back to
the whole plane's frame (``zoom.whole_frame_low_res``) so any later decode can take them.
"""

from __future__ import annotations

import numpy as np
import torch

from napari_devosam.engine import zoom as Z
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
      zoom: small objects in zoomed views (``engine.zoom``); None: ``zoom.wanted(sam)``.
    """

    def __init__(self, sam, window: tuple[float, int] | None = None,
                 region_margin_px: float = 0.0, zoom: bool | None = None):
        self.sam = sam
        self._door = Decoder(sam)
        self.window = window
        self.region_margin_px = float(region_margin_px)
        self.zoom = Z.wanted(sam) if zoom is None else bool(zoom)
        self._pixels = None
        self._view_door = Decoder(sam)
        self._views: dict[tuple, object] = {}

    @property
    def device(self) -> torch.device:
        return self._door.device

    @property
    def embedding(self):
        """The ``PlaneEmbedding`` in use, or None."""
        return self._door.embedding

    def set_embedding(self, embedding, pixels=None) -> None:
        """Use a ``PlaneEmbedding`` for the next ``decode`` calls; ``pixels``: the ``(H, W)``
        plane it was computed from, for zoomed views (None: no views)."""
        self._door.set_embedding(embedding)
        self._pixels = pixels
        self._views = {}

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
        pts = None if points is None else np.asarray(points, float).reshape(n, 1, 2)
        whole, views = list(range(n)), []
        if self.zoom and self._pixels is not None and n:
            whole, views = Z.plan_views(boxes, door.embedding.original_size,
                                        self.sam.image_encoder.img_size)
        if not views:
            return self._decode_whole(boxes, pts, list(mask_inputs))
        H, W = door.embedding.original_size
        side = 4 * door.embedding.features.shape[-1]
        logits = torch.empty((n, H, W), dtype=torch.float32, device=self.device)
        low_res = torch.empty((n, 1, side, side), dtype=torch.float32, device=self.device)
        iou = np.zeros(n, dtype=np.float32)
        if whole:
            sub = None if pts is None else pts[whole]
            up, low, score = self._decode_whole(boxes[whole], sub,
                                                [mask_inputs[i] for i in whole])
            logits[whole], low_res[whole], iou[whole] = up.float(), low.float(), score
        missing = [v.window for v in views if v.window not in self._views]
        for window, emb in zip(missing, Z.embed_views(self.sam, self._pixels, missing),
                               strict=True):  # batched: one encoder pass for several views
            self._views[window] = emb
        for view in views:
            self._decode_view(view, boxes, pts, logits, low_res, iou)
        return logits, low_res, iou

    def _decode_whole(self, boxes, pts, mask_inputs):
        door = self._door
        windows = None
        if self.window is not None:
            windows = door.windows_for(boxes, self.region_margin_px, *self.window)
        low_res, iou = door.decode(pts, None, boxes, mask_inputs, windows=windows)
        up = door.upscale(low_res)
        return up[:, 0], low_res, iou[:, 0].cpu().numpy()

    def _decode_view(self, view, boxes, pts, logits, low_res, iou) -> None:
        """Decode ``view.members`` in the view (no ``mask_input``: another frame) into the
        plane-sized ``logits``, whole-frame ``low_res`` and ``iou`` at those indices."""
        emb = self._views.get(view.window)
        if emb is None:
            emb = Z.embed_view(self.sam, self._pixels, view.window)
            self._views[view.window] = emb
        self._view_door.set_embedding(emb)
        idx = view.members
        shift = view.offset
        sub_pts = None if pts is None else pts[idx] - shift
        low, score = self._view_door.decode(sub_pts, None, boxes[idx] - np.tile(shift, 2),
                                            None)
        up = self._view_door.upscale(low)[:, 0].float()
        r0, c0, r1, c1 = view.window
        floor = up.amin(dim=(1, 2), keepdim=True)
        full = floor.expand(len(idx), *logits.shape[1:]).clone()
        full[:, r0:r1, c0:c1] = up
        logits[idx] = full
        low_res[idx] = Z.whole_frame_low_res(full, self.sam.image_encoder.img_size,
                                             low_res.shape[-1])
        iou[idx] = score[:, 0].float().cpu().numpy()
