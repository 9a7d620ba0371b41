"""Seeded mode: one SAM prompt per seed, all decoded in a few batched calls.

A seed with a box is prompted with its point and its box (single-mask output); a seed without
a box with its point alone (three masks, the best predicted IoU kept, as SAM's single-click
rule). A box prompt's mask is confined to the box grown by ``BOX_GROW`` of its size (at
least 3 px) per side: SAM sometimes leaks into the neighbour (the annotator does the same).
"""

from __future__ import annotations

import numpy as np

from napari_devosam.automatic.decoding import PromptDecoder, Proposal, crop_proposals
from napari_devosam.automatic.seeds import Seeds

BATCH = 64
BOX_GROW = 0.25
VIEW_TARGET = None  # input px a zoomed seed's box spans (None: engine.zoom.TARGET)
VIEW_BATCH = None  # views per encoder pass (None: engine.zoom.view_batch, by device)
# input px: a plane whose cells (the seeds' diameter) span at least this many on the whole
# plane is decoded there, without views. 48 is the smallest object size the bundled models
# were trained on (engine.zoom.TARGET's range), and the views' cost buys nothing above it:
# with `embryo`, F1@0.5 / mSA on CTC CHO (nuclei ~64 px) 0.831 / 0.430 -> 0.906 / 0.478
# (grainy nuclei came back from their views in pieces), cells3d 0.788 / 0.484 -> 0.804 /
# 0.495; DSB2018, CTC HeLa and the DevoLearn nuclear frames (smaller nuclei) unchanged.
WHOLE_PLANE_FROM = 48


def _limits(boxes: np.ndarray, shape) -> np.ndarray:
    h, w = shape
    size = np.maximum(boxes[:, 2:] - boxes[:, :2] + 1, 1)
    grow = np.maximum(3, BOX_GROW * size)
    lo = np.floor(boxes[:, :2] - grow)
    hi = np.ceil(boxes[:, 2:] + grow) + 1
    out = np.concatenate([lo, hi], axis=1)
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, h)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, w)
    return out.astype(np.int64)


def _prompt(seeds: Seeds, i: int) -> dict:
    box = seeds.boxes[i]
    return {"point": [float(v) for v in seeds.points[i]],
            "box": None if np.isnan(box).any() else [float(v) for v in box],
            "source": seeds.source[i]}


def seeded_proposals(dec: PromptDecoder, seeds: Seeds, min_score: float = 0.0
                     ) -> list[Proposal]:
    """One proposal per seed (empty masks and predicted IoU < ``min_score`` dropped)."""
    from napari_devosam.automatic.decoding import stability_scores

    shape = dec.plane_shape
    has_box = ~np.isnan(seeds.boxes).any(axis=1)
    props: list[Proposal] = []
    for with_box in (True, False):
        idx = np.flatnonzero(has_box == with_box)
        for start in range(0, len(idx), BATCH):
            sel = idx[start:start + BATCH]
            pts = seeds.points[sel][:, None, :]
            if with_box:
                low, iou = dec.decode(pts, seeds.boxes[sel], multimask=False)
                low, iou = low[:, 0], iou[:, 0]
                limits = _limits(seeds.boxes[sel], shape)
            else:
                low, iou = dec.decode(pts, None, multimask=True)
                best = iou.argmax(dim=1)
                rows = np.arange(len(sel))
                low, iou = low[rows, best], iou[rows, best]
                limits = None
            vh, vw = dec.valid
            stab = stability_scores(low[:, :vh, :vw], dec.threshold, 1.0)
            iou_np = iou.float().cpu().numpy()
            keep = np.flatnonzero(iou_np >= min_score)
            prompts = [_prompt(seeds, int(i)) for i in sel[keep]]
            lim = None if limits is None else limits[keep]
            props += crop_proposals(dec, low[keep], iou_np[keep],
                                    stab[keep].float().cpu().numpy(), prompts, limits=lim)
    return props


def seeded_in_views(dec: PromptDecoder, plane: np.ndarray, normalization, seeds: Seeds,
                    min_score: float = 0.0) -> list[Proposal]:
    """``seeded_proposals`` where each seed whose box is small on the whole plane is decoded
    in a zoomed view around it (``engine.zoom``: views packed by ``zoom.pack_views``, shared
    by neighbouring seeds of a similar size, several per encoder pass on an accelerator).
    Seeds without a box, and large ones, use ``dec``; so do all seeds of a plane whose cells
    (``seeds.diameter``) span ``WHOLE_PLANE_FROM`` input pixels or more.

    ``plane``: the ``(H, W)`` pixels ``dec``'s embedding was computed from. A view's masks
    are refined by its window of ``dec.pixels`` when that is set (``crop_proposals``).
    """
    from napari_devosam.engine import zoom as Z

    if _cells_at_trained_scale(seeds, dec.plane_shape, dec.sam.image_encoder.img_size):
        return seeded_proposals(dec, seeds, min_score)
    has_box = np.flatnonzero(~np.isnan(seeds.boxes).any(axis=1))
    whole, views = Z.pack_views(seeds.boxes[has_box], dec.plane_shape,
                                dec.sam.image_encoder.img_size, VIEW_TARGET)
    in_views = {int(has_box[i]) for view in views for i in view.members}
    rest = [i for i in range(len(seeds)) if i not in in_views]
    props = seeded_proposals(dec, _subset(seeds, rest, np.zeros(2)), min_score)
    view_dec = None
    batch = Z.view_batch(dec.sam) if VIEW_BATCH is None else VIEW_BATCH
    for start in range(0, len(views), batch):  # a batch's embeddings at a time
        part = views[start:start + batch]
        embs = Z.embed_views(dec.sam, plane, [v.window for v in part], normalization, batch)
        for view, emb in zip(part, embs, strict=True):
            pixels = None if dec.pixels is None else Z.crop(dec.pixels, view.window)
            view_dec = _view_decoder(view_dec, dec.sam, emb)
            view_dec.pixels = pixels
            members = [int(has_box[i]) for i in view.members]
            sub = _subset(seeds, members, view.offset)
            for p in seeded_proposals(view_dec, sub, min_score):
                props.append(_to_plane(p, view.offset))
    return props


def _cells_at_trained_scale(seeds: Seeds, plane_shape, input_size: int) -> bool:
    """Whether the plane's cells (``seeds.diameter``) span at least ``WHOLE_PLANE_FROM``
    input pixels on the whole plane: then every seed is decoded there, none in a view."""
    if seeds.diameter is None or not WHOLE_PLANE_FROM:
        return False
    return seeds.diameter * input_size / max(plane_shape[:2]) >= WHOLE_PLANE_FROM


def _view_decoder(prev: PromptDecoder | None, sam, emb) -> PromptDecoder:
    """A ``PromptDecoder`` on a view's embedding: ``prev`` re-pointed at it when both have the
    same input frame (what the decoder derived from its weights is kept: ~7 % of a view's
    time), else a new one."""
    if prev is not None and tuple(prev.embedding.input_size) == tuple(emb.input_size):
        prev.decoder.set_embedding(emb)
        prev.embedding = prev.decoder.embedding
        return prev
    from napari_devosam.automatic import decoding  # looked up now, as segment_all's door

    return decoding.PromptDecoder(sam, emb)


def _subset(seeds: Seeds, idx, offset: np.ndarray) -> Seeds:
    """The seeds ``idx``, in the frame whose origin is ``offset`` ``(row, col)`` of the plane."""
    idx = np.asarray(idx, dtype=np.int64)
    return Seeds(seeds.points[idx] - offset, seeds.boxes[idx] - np.tile(offset, 2),
                 [seeds.source[i] for i in idx])


def _to_plane(p: Proposal, offset: np.ndarray) -> Proposal:
    dr, dc = (int(v) for v in offset)
    r0, c0, r1, c1 = p.box
    prompt = dict(p.prompt)
    prompt["point"] = [prompt["point"][0] + dr, prompt["point"][1] + dc]
    if prompt["box"] is not None:
        prompt["box"] = [v + d for v, d in zip(prompt["box"], (dr, dc, dr, dc), strict=True)]
    return Proposal((r0 + dr, c0 + dc, r1 + dr, c1 + dc), p.mask, p.logits, p.score,
                    p.stability, prompt, p.sam_mask)
