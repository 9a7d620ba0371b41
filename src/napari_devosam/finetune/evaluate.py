"""How good is a decoder on annotated data: mean IoU of box- and point-prompted masks.

For every ground-truth object of every plane, two masks are predicted through
``predictor.Predictor`` (the annotator's own path, equal to ``SamPredictor``):

- ``box``: from the object's tight box (single-mask output);
- ``point``: from one positive point at the object's interior-most pixel (maximum of the
  distance transform), multimask output, the mask with the highest predicted IoU kept.

Masks are compared with the ground truth at the plane's full resolution. The result holds
the mean IoU per prompt kind (``box_iou``, ``point_iou``) and over all masks (``mean_iou``).
Fine-tuning reports its validation IoU with the same function, so ``devosam eval`` on the
validation data reproduces the numbers stored in a decoder file.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterable

import numpy as np

from napari_devosam.finetune.targets import PlaneTargets
from napari_devosam.utils.progress import drain


def _iou(mask: np.ndarray, truth: np.ndarray) -> float:
    union = np.count_nonzero(mask | truth)
    return float(np.count_nonzero(mask & truth) / union) if union else 1.0


def score_plane(predictor, t: PlaneTargets) -> dict:
    """Per-object IoUs ``{"box": [...], "point": [...]}`` for one plane (embedding in ``t``)."""
    from napari_devosam.engine.embeddings import PlaneEmbedding

    predictor.set_embedding(PlaneEmbedding(t.features, t.input_size, t.original_size))
    box_masks, _ = predictor.predict_boxes(t.boxes_rc)
    box, point = [], []
    for k, obj_id in enumerate(t.ids):
        truth = t.labels == obj_id
        box.append(_iou(box_masks[k], truth))
        masks, scores, _ = predictor.predict(points=t.centers_rc[k][None], point_labels=[1],
                                             multimask=True)
        point.append(_iou(masks[int(np.argmax(scores))], truth))
    return {"box": box, "point": point}


def summarize_scores(per_plane: list[tuple[str, dict]]) -> dict:
    """Mean IoUs from ``score_plane`` results: ``mean_iou``, ``box_iou``, ``point_iou``,
    ``n_objects``, ``n_planes`` and ``per_plane`` (name, box_iou, point_iou, objects)."""
    box = [v for _, s in per_plane for v in s["box"]]
    point = [v for _, s in per_plane for v in s["point"]]
    everything = box + point
    return {
        "mean_iou": float(np.mean(everything)) if everything else float("nan"),
        "box_iou": float(np.mean(box)) if box else float("nan"),
        "point_iou": float(np.mean(point)) if point else float("nan"),
        "n_objects": len(box),
        "n_planes": len(per_plane),
        "per_plane": [
            {"name": name, "box_iou": float(np.mean(s["box"])),
             "point_iou": float(np.mean(s["point"])), "objects": len(s["box"])}
            for name, s in per_plane
        ],
    }


def score_targets(sam, targets: list[PlaneTargets]) -> dict:
    """``summarize_scores`` of ``sam``'s masks on prepared planes (embeddings already there)."""
    from napari_devosam.engine.embeddings import EmbeddingCache
    from napari_devosam.engine.predictor import Predictor

    predictor = Predictor(sam, cache=EmbeddingCache(max_items=0))
    return summarize_scores([(t.name, score_plane(predictor, t)) for t in targets])


def iter_evaluate(data_dirs: str | os.PathLike | Iterable, sam, cache=None,
                  normalization=None) -> Generator[tuple[int, int], None, dict]:
    """``evaluate`` as a generator yielding ``(planes_done, planes_total)``; returns the dict.

    The data are read and checked first (see ``finetune.data``); embeddings come from
    ``cache`` (an ``EmbeddingCache``) when it has them and are computed otherwise.
    """
    from napari_devosam.engine.embeddings import EmbeddingCache, embed_plane
    from napari_devosam.engine.predictor import Predictor
    from napari_devosam.finetune.data import load_planes
    from napari_devosam.finetune.targets import prepare_plane

    planes = load_planes(data_dirs)
    device = sam.pixel_mean.device
    grid = tuple(4 * n for n in sam.prompt_encoder.image_embedding_size)
    predictor = Predictor(sam, cache=EmbeddingCache(max_items=0))
    results = []
    for i, plane in enumerate(planes):
        emb = embed_plane(sam, plane.image, cache, normalization)
        t = prepare_plane(plane, emb, grid, device)
        results.append((plane.name, score_plane(predictor, t)))
        yield i + 1, len(planes)
    return summarize_scores(results)


def evaluate(data_dirs: str | os.PathLike | Iterable, sam, cache=None,
             normalization=None) -> dict:
    """Mean IoU of ``sam``'s box- and point-prompted masks on annotated data.

    Arguments:
      data_dirs: a bundle or a folder with ``images/`` and ``labels/`` (or a list of them).
      sam: a ``segment_anything`` ``Sam`` (with the decoder to evaluate applied).
      cache: an ``embeddings.EmbeddingCache`` to take embeddings from / put them in.
      normalization: ``image.Normalization`` for non-uint8 planes (default percentiles).

    Returns a dict with ``mean_iou`` (all masks), ``box_iou``, ``point_iou`` (means per
    prompt kind), ``n_objects``, ``n_planes`` and ``per_plane``.
    """
    return drain(iter_evaluate(data_dirs, sam, cache, normalization))
