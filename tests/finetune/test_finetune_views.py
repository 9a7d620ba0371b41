"""Training planes in zoomed views: small objects where the predictor decodes them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from napari_devosam.engine import zoom
from napari_devosam.finetune.data import TrainingPlane
from napari_devosam.finetune.views import plane_views, tight_boxes, view_planes


def _plane():
    """400 x 400: one large square (id 1), three small ones (ids 2-4) far apart."""
    labels = np.zeros((400, 400), dtype=np.int64)
    labels[20:220, 20:220] = 1
    labels[300:310, 40:52] = 2
    labels[330:342, 300:310] = 3
    labels[50:60, 330:338] = 4
    image = np.random.default_rng(0).integers(0, 4000, labels.shape).astype(np.uint16)
    return TrainingPlane("data/a.tif", "/data/a.tif", image, labels)


def test_tight_boxes_are_inclusive():
    p = _plane()
    boxes = tight_boxes(p.labels, np.array([1, 2]))
    assert boxes.tolist() == [[20, 20, 219, 219], [300, 40, 309, 51]]


def test_views_hold_each_small_object_once_with_the_plane_pixels():
    p = _plane()
    out = plane_views(p, 512)
    assert out[0].name == p.name and out[0].object_ids.tolist() == [1]
    views = out[1:]
    assert len(views) == 3  # the small objects are far apart: one view each
    assert sorted(i for v in views for i in v.object_ids) == [2, 3, 4]
    for v in views:
        assert v.source == p.source and v.name.startswith("data/a.tif view ")
        assert v.image.shape == v.labels.shape and v.image.shape[0] < 400
        (obj,) = v.object_ids
        # the window holds the whole object, with the plane's pixels under it
        assert np.count_nonzero(v.labels == obj) == np.count_nonzero(p.labels == obj)
        (alone,) = zoom.plan_views(tight_boxes(p.labels, np.array([obj])), p.labels.shape, 512)[1]
        r0, c0, r1, c1 = alone.window
        assert np.array_equal(v.image, p.image[r0:r1, c0:c1])


def test_views_match_the_predictors_plan():
    """The windows are those ``Predictor.predict_boxes`` decodes the same boxes in."""
    p = _plane()
    ids = np.asarray(p.object_ids)
    whole, views = zoom.plan_views(tight_boxes(p.labels, ids), p.labels.shape, 512)
    out = plane_views(p, 512)
    assert [ids[i] for i in whole] == out[0].object_ids.tolist()
    assert [sorted(ids[v.members].tolist()) for v in views] == [
        v.object_ids.tolist() for v in out[1:]
    ]


def test_a_plane_of_small_objects_only_leaves_no_whole_plane():
    p = _plane()
    p.labels[p.labels == 1] = 0
    p.object_ids = np.array([2, 3, 4])
    out = plane_views(p, 512)
    assert all(" view " in v.name for v in out) and len(out) == 3


def test_off_or_a_model_that_does_not_zoom_keeps_the_planes():
    p = _plane()
    sam = SimpleNamespace(image_encoder=SimpleNamespace(img_size=512))
    assert view_planes([p], sam, zoom_views=False) == [p]
    assert view_planes([p], sam, zoom_views=None) == [p]  # no encoder parameters: no zoom
    assert len(view_planes([p], sam, zoom_views=True)) == 4


def test_validation_in_views_scores_the_boxes_as_the_zooming_predictor(tmp_path):
    """A run with views validates small objects where ``Predictor(zoom=True)`` decodes them:
    the starting decoder's validation box IoU equals the predictor's on the whole planes."""
    import phantom_pairs
    from napari_devosam.engine.predictor import Predictor
    from napari_devosam.finetune import load_planes, run_finetune, split_planes
    from napari_devosam.testing import tiny_sam

    root = phantom_pairs.write_pairs(tmp_path / "d", 3, shape=(256, 256), n_cells=20)
    sam = tiny_sam()
    result = run_finetune(
        root,
        sam,
        out=tmp_path / "d.safetensors",
        steps=1,
        zoom_views=True,
        val_fraction=0.34,
        batch_prompts=4,
        correction_rounds=0,
    )
    train_meta = result.metadata["data"]["train"]
    assert train_meta["files"] == 2 and train_meta["planes"] > 2  # views were added
    _, val = split_planes(load_planes(root), 0.34, 0)
    pred = Predictor(sam, cache_dir=None, zoom=True)
    ious = []
    for p in val:
        pred.set_image(p.image)
        ids = np.asarray(p.object_ids)
        masks, _ = pred.predict_boxes(tight_boxes(p.labels, ids))
        ious += [
            np.count_nonzero(m & (p.labels == i)) / np.count_nonzero(m | (p.labels == i))
            for m, i in zip(masks, ids, strict=True)
        ]
    assert result.history[0]["val_box_iou"] == pytest.approx(np.mean(ious), abs=1e-6)
