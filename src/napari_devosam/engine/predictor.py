"""Prompt -> mask on one plane, in napari's coordinates.

``Predictor`` holds a SAM, an embedding cache and the embedding of the current plane.
Prompts are napari pixel coordinates: points ``(row, col)``, boxes ``(row0, col0, row1,
col1)``; they go through the decoder door (``decoding.Decoder``), which makes them SAM's
``(x, y)`` input frame in ``coords.py``. With ``zoom`` off, results equal
``segment_anything.SamPredictor``'s for the same image, weights and prompts, except for the
box rule below (stock SAM keeps pixels far outside a box).

Prompt rules: a box or at least one point is required (``ValueError`` otherwise). A box
partly outside the plane is clipped to it; a box entirely outside, with zero area inside the
plane, inverted (row1 < row0 or col1 < col0) or with NaN, and points outside the plane, raise
``ValueError``. Mask pixels more than ``coords.BOX_MARGIN`` (2) pixels outside a box prompt
are dropped (``coords.mask_within_box``): the same rule in the API, the CLI and the annotator.
The returned low-res logits are SAM's, unclipped, for use as the next ``mask_input``.

Small objects are prompted at object scale in zoomed views of the plane (``zoom.py``; needs
the plane's pixels: ``set_image``, or ``set_embedding(..., plane=)``): a small box, a click
whose first mask is small, a refinement around a small previous mask. Returned logits are
always in the whole plane's low-res frame (a view's own are remembered by content, so feeding
them back to the same view loses nothing). With zoom on, a candidate that misses a positive
click is ranked 1 lower, and a click no candidate holds is decoded again in a view centred on
it; with zoom off, results are stock SAM's (above). With ``refine`` (on by default for the
bundled models), the uncertain edge of each mask is decided by the object's own intensities
(``mask_refine.py``); the logits stay SAM's.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from napari_devosam.engine import mask_refine as MR
from napari_devosam.engine import zoom as Z
from napari_devosam.engine.coords import clip_box, mask_within_box, validate_points
from napari_devosam.engine.decoding import Decoder
from napari_devosam.engine.embedding_cache import default_cache_dir
from napari_devosam.engine.embeddings import EmbeddingCache, PlaneEmbedding, embed_plane
from napari_devosam.engine.image import Normalization
from napari_devosam.engine.stacks import as_plane

SHARED_CACHE = object()  # Predictor's default cache_dir: the CLI's and the GUI's disk cache
BOX_CHUNK = 16  # boxes decoded and upscaled together in predict_boxes (bounds memory)
VIEW_CACHE = 64  # zoomed views' embeddings kept per plane (memory only: they are cheap)
CLICK_OBJECT_PX = 24  # the object size a view centred on a missed click is made for
VIEW_LOGITS = 32  # returned logits whose view-frame original is remembered


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
      zoom: prompt small objects in zoomed views (``zoom.py``): True, False, or "auto" (on
        for encoders that take milliseconds, ``zoom.wanted``: the bundled models).
      refine: SAM's uncertain mask edge decided by the object's intensities
        (``mask_refine.py``; needs the plane's pixels, like zoom): True, False, or "auto"
        (on where zoom is on for a bundled-format model, ``sam.devosam_bundled``).
    """

    def __init__(
        self,
        model,
        cache_dir: str | os.PathLike | None = SHARED_CACHE,
        cache: EmbeddingCache | None = None,
        normalization: Normalization | None = None,
        device="auto",
        precision="auto",
        zoom="auto",
        refine="auto",
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
        for name, value in (("zoom", zoom), ("refine", refine)):
            if value not in (True, False, "auto"):
                raise ValueError(f"{name} must be True, False or 'auto', got {value!r}")
        self.zoom = Z.wanted(self._sam) if zoom == "auto" else bool(zoom)
        self.refine = MR.wanted(self._sam, self.zoom) if refine == "auto" else bool(refine)
        self._gray = None  # the plane's intensities for refine, made on first use
        self._plane: np.ndarray | None = None  # pixels of the current plane, for views
        self._views: dict[tuple, PlaneEmbedding] = {}
        self._view_decoder = Decoder(self._sam)
        self._view_window = None  # the window the view decoder holds
        self._view_logits: dict[bytes, tuple] = {}  # whole-frame logits -> (window, view's)

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
        self.set_embedding(embedding, plane)
        return embedding

    def set_embedding(self, embedding: PlaneEmbedding, plane=None) -> None:
        """Make an already computed embedding current (moved to the model's device).

        ``plane``: the pixels it was computed from (as ``set_image`` takes them), so small
        objects can be prompted in zoomed views; without them every prompt uses the whole
        plane's embedding."""
        features = embedding.features
        expected = tuple(self._sam.prompt_encoder.image_embedding_size)
        if features.ndim != 4 or features.shape[0] != 1 or tuple(features.shape[-2:]) != expected:
            raise ValueError(
                f"embedding of shape {tuple(features.shape)} does not fit this model, which "
                f"expects (1, C, {expected[0]}, {expected[1]})"
            )
        self._decoder.set_embedding(embedding)
        self._embedding = self._decoder.embedding
        self._plane = self._gray = None
        if plane is not None:
            plane = as_plane(plane)
            if tuple(plane.shape[:2]) != tuple(self._embedding.original_size):
                raise ValueError(f"plane of shape {plane.shape[:2]} does not match the "
                                 f"embedding's {tuple(self._embedding.original_size)}")
            self._plane = plane
        self._forget_views()

    def reset_image(self) -> None:
        self._embedding = None
        self._plane = self._gray = None
        self._decoder = Decoder(self._sam)
        self._forget_views()

    def _forget_views(self) -> None:
        self._views.clear()
        self._view_decoder = Decoder(self._sam)
        self._view_window = None
        self._view_logits = {}

    def decoder_changed(self) -> None:
        """Call after loading new weights into ``sam.mask_decoder`` / ``sam.prompt_encoder``
        in place: drops decoder-derived caches, keeps the image embedding."""
        self._decoder.decoder_changed()
        self._view_decoder.decoder_changed()

    # --- zoomed views --------------------------------------------------------------------

    @property
    def _zooming(self) -> bool:
        return self.zoom and self._plane is not None

    def _view(self, window) -> Decoder:
        """The view decoder holding ``window``'s embedding (computed, or from this plane's
        view cache)."""
        if self._view_window != window:
            emb = self._views.get(window)
            if emb is None:
                emb = Z.embed_view(self._sam, self._plane, window, self.normalization)
                if len(self._views) >= VIEW_CACHE:
                    self._views.pop(next(iter(self._views)))
                self._views[window] = emb
            self._view_decoder.set_embedding(emb)
            self._view_window = window
        return self._view_decoder

    def _window_for(self, box, mask) -> tuple | None:
        """The frame of one object's prompts: the view around ``box``, else around the
        previous mask ``mask`` (whole-frame low-res logits, ``(1, 1, 4h, 4w)``), else None
        (the whole plane)."""
        if not self._zooming:
            return None
        if box is None and mask is not None:
            prev = (self._decoder.upscale(mask)[0, 0] > self._sam.mask_threshold).cpu().numpy()
            box = Z.extent(prev)
        if box is None:
            return None
        emb = self._embedding
        side = Z.ideal_window_side(box, emb.original_size, self._sam.image_encoder.img_size)
        if side is None:
            return None
        return Z.window_at(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), side,
                           emb.original_size)

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
        pts = lab = None
        if has_points:
            pts, lab = validate_points(points, point_labels, emb.original_size)
        if box is not None:
            box = clip_box(box, emb.original_size)
        mask = None if mask_input is None else self._mask_tensor(mask_input)
        window = self._window_for(box, mask)
        if window is not None and not Z.fits(window, box, pts):
            window = None
        masks, iou, low_res = self._decode_one(window, box, pts, lab, mask, multimask)
        clicks = None if pts is None or box is not None else pts[lab == 1]
        if clicks is not None and len(clicks) and self._zooming:
            masks, iou, low_res = self._answer_clicks(masks, iou, low_res, window, pts, lab,
                                                      mask, multimask)
        return masks, iou, low_res

    def _decode_one(self, window, box, pts, lab, mask, multimask):
        """Decode one object's prompts (plane coordinates; ``mask`` whole-frame low-res
        logits or None) in ``window``'s frame (None: the whole plane). Returns masks at the
        plane's size, scores, and low-res logits in the whole plane's frame."""
        emb = self._embedding
        img_size = self._sam.image_encoder.img_size
        decoder = self._decoder if window is None else self._view(window)
        shift = np.zeros(2) if window is None else np.array(window[:2], dtype=np.float64)
        boxes = None if box is None else (box - np.tile(shift, 2))[None]
        p = None if pts is None else (pts - shift)[None]
        lab_b = None if lab is None else lab[None]
        if mask is not None and window is not None:
            known = self._view_logits.get(Z.digest(mask))
            if known is not None and known[0] == window:
                mask = known[1]  # this view's own logits: nothing lost
            else:  # the whole frame's map, seen by the view
                plane = self._decoder.upscale(mask)[0]
                mask = Z.whole_frame_low_res(Z.crop(plane[0], window)[None], img_size,
                                             mask.shape[-1])
        low_res, iou = decoder.decode(p, lab_b, boxes, mask, multimask)
        if window is None:
            full = self._decoder.upscale_scratch(low_res)[0]  # per click: no page faults
            masks = (full > self._sam.mask_threshold).cpu().numpy()
        else:
            up = decoder.upscale(low_res)[0].float()
            r0, c0, r1, c1 = window
            full = up.amin(dim=(1, 2), keepdim=True).expand(len(up), *emb.original_size).clone()
            full[:, r0:r1, c0:c1] = up
            masks = (full > self._sam.mask_threshold).cpu().numpy()
            own = low_res[0]
            low_res = Z.whole_frame_low_res(full, img_size, low_res.shape[-1])[:, 0][None]
            for c in range(len(own)):
                self._remember(low_res[0, c], window, own[c])
        self._refined(masks, full, None if box is None else np.tile(box, (len(masks), 1)), None)
        if box is not None:
            mask_within_box(masks, box)
        return masks, iou[0].float().cpu().numpy(), low_res[0].float().cpu().numpy()

    def _remember(self, whole, window, own) -> None:  # whole-frame logits -> the view's own
        if len(self._view_logits) >= VIEW_LOGITS:
            self._view_logits.pop(next(iter(self._view_logits)))
        self._view_logits[Z.digest(whole)] = (window, own[None, None].clone())

    def _answer_clicks(self, masks, iou, low_res, window, pts, lab, mask, multimask):
        """Positive clicks without a box: a small first mask is decoded again in the view
        around it (the object's size is only known after a first look); if no candidate
        holds the first positive click, once more in a view centred on it. Candidates that
        miss the click are ranked last (score - 1)."""
        click = pts[lab == 1][0]
        if window is None and mask is None and self._zooming:
            extent = Z.extent(masks[int(np.argmax(iou))])
            view = None if extent is None else self._window_for(extent, None)
            if view is not None and Z.fits(view, None, pts):
                masks, iou, low_res = self._decode_one(view, None, pts, lab, None, multimask)
                window = view
        hit = Z.holds(masks, click)
        if not hit.any() and self._zooming:
            side = Z.ideal_window_side((0, 0, CLICK_OBJECT_PX - 1, CLICK_OBJECT_PX - 1),
                                       self._embedding.original_size,
                                       self._sam.image_encoder.img_size)
            view = None if side is None else Z.window_at(click, side,
                                                         self._embedding.original_size)
            if view is not None and view != window and Z.fits(view, None, pts):
                again = self._decode_one(view, None, pts, lab, mask, multimask)
                if Z.holds(again[0], click).any():
                    masks, iou, low_res = again
                    hit = Z.holds(masks, click)
        if self._zooming:
            iou = np.where(hit, iou, iou - 1.0).astype(np.float32)
        return masks, iou, low_res

    def _refined(self, masks, logits, boxes, window) -> None:
        """``mask_refine.refine_masks`` in ``window``'s frame (None: the plane), in place,
        when refine is on and the plane's pixels are known; ``boxes`` None for clicks."""
        if self.refine and self._plane is not None:
            self._gray = MR.gray(self._plane) if self._gray is None else self._gray
            pixels = self._gray if window is None else Z.crop(self._gray, window)
            MR.refine_masks(masks, logits, pixels, boxes, self._sam.mask_threshold)

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
        whole, views = list(range(len(clipped))), []
        if self._zooming:
            whole, views = Z.plan_views(clipped, (H, W), self._sam.image_encoder.img_size)
        self._decode_boxes(self._decoder, clipped, whole, None, masks, scores)
        for view in views:
            self._decode_boxes(self._view(view.window), clipped, view.members, view.window,
                               masks, scores)
        return masks, scores

    def _decode_boxes(self, decoder, boxes, indices, window, masks, scores) -> None:
        """Decode ``boxes[indices]`` in ``decoder``'s frame (``window``; None: whole plane)
        into ``masks`` / ``scores`` at those indices, ``BOX_CHUNK`` at a time."""
        shift = np.zeros(4) if window is None else np.tile(np.asarray(window[:2], float), 2)
        for start in range(0, len(indices), BOX_CHUNK):
            idx = indices[start:start + BOX_CHUNK]
            low_res, iou = decoder.decode(None, None, boxes[idx] - shift, None, False)
            # fresh (not the per-click buffer): up to BOX_CHUNK planes would stay allocated
            logits = decoder.upscale(low_res)[:, 0]
            up = (logits > self._sam.mask_threshold).cpu().numpy()
            self._refined(up, logits, boxes[idx] - shift, window)
            if window is not None:
                up = Z.paste(up, window, masks.shape[1:])
            for k, i in enumerate(idx):
                masks[i] = up[k]
                mask_within_box(masks[i], boxes[i])
            scores[idx] = iou[:, 0].float().cpu().numpy()
