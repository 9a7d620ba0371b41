"""Prompt -> mask on one plane, in napari's coordinates.

``Predictor`` holds a SAM, an embedding cache and the embedding of the current plane.
Prompts are napari pixel coordinates: points ``(row, col)``, boxes ``(row0, col0, row1,
col1)``; they go through the decoder door (``decoding.Decoder``), which makes them SAM's
``(x, y)`` input frame in ``coords.py``. Results equal ``segment_anything.SamPredictor``'s for
the same image, weights and prompts, except for the box rule below (stock SAM keeps pixels
far outside a box).

Prompt rules: a box or at least one point is required (``ValueError`` otherwise). A box
partly outside the plane is clipped to it; a box entirely outside, with zero area inside the
plane, inverted (row1 < row0 or col1 < col0) or with NaN, and points outside the plane, raise
``ValueError``. Mask pixels more than ``coords.BOX_MARGIN`` (2) pixels outside a box prompt
are dropped (``coords.mask_within_box``): the same rule in the API, the CLI and the annotator.
The returned low-res logits are SAM's, unclipped, for use as the next ``mask_input``.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from napari_devosam.engine.coords import clip_box, mask_within_box, validate_points
from napari_devosam.engine.decoding import Decoder
from napari_devosam.engine.embedding_cache import default_cache_dir
from napari_devosam.engine.embeddings import EmbeddingCache, PlaneEmbedding, embed_plane
from napari_devosam.engine.image import Normalization

SHARED_CACHE = object()  # Predictor's default cache_dir: the CLI's and the GUI's disk cache
BOX_CHUNK = 16  # boxes decoded and upscaled together in predict_boxes (bounds memory)


class Predictor:
    """Interactive SAM prediction on one plane at a time.

    Arguments:
      model: a ``segment_anything`` ``Sam``, or anything ``models.loading.load_model`` takes
        (``"vit_b"``, a checkpoint path, ...).
      cache_dir: folder for on-disk embeddings (ignored when ``cache`` is given). Default:
        the disk cache the CLI and the annotator use (``embedding_cache.default_cache_dir()``,
        under ``DEVOSAM_CACHE_DIR`` or the user cache folder), so planes ``devosam embed``
        computed are not computed again; ``None``: memory only.
      cache: an ``EmbeddingCache`` to share; default: a new one over ``cache_dir``.
      normalization: how non-uint8 planes become RGB (default 0.5..99.5 percentiles).
      device: used only when ``model`` is loaded here.
      precision: the image encoder's, "fp32" or "bf16" (``models.precision``); used only when
        ``model`` is loaded here (``set_precision`` changes a given ``Sam``).
    """

    def __init__(
        self,
        model,
        cache_dir: str | os.PathLike | None = SHARED_CACHE,
        cache: EmbeddingCache | None = None,
        normalization: Normalization | None = None,
        device="auto",
        precision="auto",
    ):
        if isinstance(model, torch.nn.Module):
            sam = model
        else:
            from napari_devosam.models.loading import load_model

            sam = load_model(model, device=device, precision=precision)
        self._sam = sam.eval()
        if cache is None:
            cache = EmbeddingCache(default_cache_dir() if cache_dir is SHARED_CACHE else cache_dir)
        self.cache = cache
        self.normalization = normalization
        self._decoder = Decoder(self._sam)
        self._embedding: PlaneEmbedding | None = None
        self._logits: torch.Tensor | None = None  # scratch for upscaled logits

    # --- state ---------------------------------------------------------------------------

    @property
    def sam(self):
        return self._sam

    @property
    def embedding(self) -> PlaneEmbedding | None:
        return self._embedding

    @property
    def is_image_set(self) -> bool:
        return self._embedding is not None

    @property
    def original_size(self) -> tuple[int, int] | None:
        return None if self._embedding is None else self._embedding.original_size

    @property
    def device(self) -> torch.device:
        return self._sam.pixel_mean.device

    def set_image(self, plane) -> PlaneEmbedding:
        """Make ``plane`` (2D of any dtype, or RGB) current; its embedding comes from the cache
        or is computed (seconds on a CPU: call ``embed_plane`` in a worker for GUIs)."""
        embedding = embed_plane(self._sam, plane, self.cache, self.normalization)
        self.set_embedding(embedding)
        return embedding

    def set_embedding(self, embedding: PlaneEmbedding) -> None:
        """Make an already computed embedding current (moved to the model's device)."""
        features = embedding.features
        expected = tuple(self._sam.prompt_encoder.image_embedding_size)
        if features.ndim != 4 or features.shape[0] != 1 or tuple(features.shape[-2:]) != expected:
            raise ValueError(
                f"embedding of shape {tuple(features.shape)} does not fit this model, which "
                f"expects (1, C, {expected[0]}, {expected[1]})"
            )
        self._decoder.set_embedding(embedding)
        self._embedding = self._decoder.embedding

    def reset_image(self) -> None:
        self._embedding = None
        self._decoder = Decoder(self._sam)

    def decoder_changed(self) -> None:
        """Call after loading new weights into ``sam.mask_decoder`` / ``sam.prompt_encoder``
        in place: drops decoder-derived caches, keeps the image embedding."""
        self._decoder.decoder_changed()

    # --- prompts -------------------------------------------------------------------------

    def _require_image(self) -> PlaneEmbedding:
        if self._embedding is None:
            raise RuntimeError("no image set: call set_image(plane) before predicting")
        return self._embedding

    def _mask_tensor(self, mask_input) -> torch.Tensor:
        mask = np.asarray(mask_input, dtype=np.float32)
        h, w = self._embedding.features.shape[-2:]
        size = (4 * h, 4 * w)
        if mask.shape[-2:] != size or mask.size != size[0] * size[1]:
            raise ValueError(
                f"mask_input must be one low-res logit map of shape {size} (the logits a "
                f"previous predict returned), got {mask.shape}"
            )
        return torch.as_tensor(mask.reshape(1, 1, *size), device=self.device)

    def _upscale(self, low_res: torch.Tensor) -> torch.Tensor:
        """Plane-sized logits in a reused buffer (valid until the next call); for the per-click
        path, where a fresh plane-sized tensor can cost page faults."""
        emb = self._embedding
        b, c = low_res.shape[:2]
        plane = tuple(emb.original_size)
        buf = self._logits
        same = buf is not None and buf.device == low_res.device and buf.shape[0] == b
        same = same and tuple(buf.shape[2:]) == plane
        if not same or buf.shape[1] < c:
            # sized for the most masks seen, so 1- and 3-mask clicks share it
            c_max = max(c, buf.shape[1]) if same else c
            buf = self._logits = torch.empty(
                (b, c_max, *plane), dtype=torch.float32, device=low_res.device
            )
        out = buf[:, :c]
        return self._decoder.upscale(low_res, out=out)

    def predict(
        self,
        box=None,
        points=None,
        point_labels=None,
        mask_input=None,
        multimask: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks for one object.

        Arguments:
          box: ``(row0, col0, row1, col1)`` pixel box, or None.
          points: ``(N, 2)`` pixel ``(row, col)`` points, or None.
          point_labels: ``(N,)`` 1 (object) / 0 (background); default all 1.
          mask_input: ``(4h, 4w)`` (or ``(1, 4h, 4w)``) logits from a previous round.
          multimask: three candidate masks instead of one.

        Returns ``(masks, scores, logits)``: masks ``(C, H, W)`` bool at the plane's size,
        scores ``(C,)`` float32 predicted IoU, logits ``(C, 4h, 4w)`` float32 (256 x 256 for
        the official models); C = 3 with ``multimask`` else 1.
        """
        emb = self._require_image()
        has_points = points is not None and np.asarray(points).size > 0
        if box is None and not has_points:
            raise ValueError("no prompt: give a box or at least one point")
        pts = lab = boxes = mask = None
        if has_points:
            pts, lab = validate_points(points, point_labels, emb.original_size)
            pts, lab = pts[None], lab[None]
        if box is not None:
            box = clip_box(box, emb.original_size)
            boxes = box[None]
        if mask_input is not None:
            mask = self._mask_tensor(mask_input)
        low_res, iou = self._decoder.decode(pts, lab, boxes, mask, multimask)
        masks = (self._upscale(low_res)[0] > self._sam.mask_threshold).cpu().numpy()
        if box is not None:
            mask_within_box(masks, box)
        return (
            masks,
            iou[0].float().cpu().numpy(),
            low_res[0].float().cpu().numpy(),
        )

    def predict_boxes(self, boxes) -> tuple[np.ndarray, np.ndarray]:
        """One object per box, batched: ``boxes`` ``(B, 4)`` (row0, col0, row1, col1).

        Returns masks ``(B, H, W)`` bool and scores ``(B,)`` float32. No boxes -> empty
        arrays. Every box is checked (and clipped) before anything is decoded.
        """
        emb = self._require_image()
        boxes = np.asarray(boxes, dtype=np.float64)
        H, W = emb.original_size
        if boxes.size == 0:
            return np.zeros((0, H, W), dtype=bool), np.zeros((0,), dtype=np.float32)
        if boxes.ndim == 1:
            boxes = boxes[None]
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"boxes must have shape (B, 4), got {boxes.shape}")
        clipped = np.stack([clip_box(b, emb.original_size) for b in boxes])
        masks = np.zeros((len(clipped), H, W), dtype=bool)
        scores = np.zeros((len(clipped),), dtype=np.float32)
        for start in range(0, len(clipped), BOX_CHUNK):
            chunk = clipped[start : start + BOX_CHUNK]
            low_res, iou = self._decoder.decode(None, None, chunk, None, False)
            # fresh (not the per-click buffer): up to BOX_CHUNK planes would stay allocated
            up = self._decoder.upscale(low_res)
            stop = start + len(chunk)
            masks[start:stop] = (up[:, 0] > self._sam.mask_threshold).cpu().numpy()
            for i in range(start, stop):
                mask_within_box(masks[i], clipped[i])
            scores[start:stop] = iou[:, 0].float().cpu().numpy()
        return masks, scores
