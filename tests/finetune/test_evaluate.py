"""Evaluation: mean IoU per prompt kind, checked against segment_anything's SamPredictor."""

from __future__ import annotations

import numpy as np
import pytest

from napari_devosam.finetune import evaluate, iter_evaluate, load_planes
from napari_devosam.testing import tiny_sam
from phantom_pairs import write_pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def data(tmp_path):
    return write_pairs(tmp_path / "bundle", 2, shape=(200, 160), n_cells=5, prefix="p",
                       first_seed=10)


def reference_scores(sam, root):
    """The same measurement written directly against segment_anything's SamPredictor (with
    the predictor's one box rule: mask pixels beyond 2 px outside the box are dropped)."""
    from scipy import ndimage
    from segment_anything import SamPredictor

    from napari_devosam.engine.coords import mask_within_box
    from napari_devosam.engine.image import to_rgb

    predictor = SamPredictor(sam)
    box_ious, point_ious = [], []
    for plane in load_planes(root):
        predictor.set_image(to_rgb(plane.image))
        for obj_id in plane.object_ids:
            truth = plane.labels == obj_id
            rows, cols = np.nonzero(truth)
            box = np.array([cols.min(), rows.min(), cols.max(), rows.max()])
            masks, _, _ = predictor.predict(box=box, multimask_output=False)
            mask_within_box(masks, (rows.min(), cols.min(), rows.max(), cols.max()))
            box_ious.append((masks[0] & truth).sum() / (masks[0] | truth).sum())
            dist = ndimage.distance_transform_edt(np.pad(truth, 1))[1:-1, 1:-1]
            r, c = np.unravel_index(np.argmax(dist), dist.shape)
            masks, scores, _ = predictor.predict(point_coords=np.array([[c, r]]),
                                                 point_labels=np.array([1]),
                                                 multimask_output=True)
            best = masks[np.argmax(scores)]
            point_ious.append((best & truth).sum() / (best | truth).sum())
    return float(np.mean(box_ious)), float(np.mean(point_ious))


def test_scores_equal_a_direct_sampredictor_measurement(data):
    sam = tiny_sam()
    scores = evaluate(data, sam)
    box, point = reference_scores(sam, data)
    assert scores["box_iou"] == pytest.approx(box, abs=2e-3)
    assert scores["point_iou"] == pytest.approx(point, abs=2e-3)
    assert scores["mean_iou"] == pytest.approx((box + point) / 2, abs=2e-3)


def test_result_shape(data):
    planes = load_planes(data)
    gen = iter_evaluate(data, tiny_sam())
    progress = []
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as stop:
            scores = stop.value
            break
    assert progress == [(1, 2), (2, 2)]
    assert scores["n_planes"] == 2
    assert scores["n_objects"] == sum(len(p.object_ids) for p in planes)
    assert [p["name"] for p in scores["per_plane"]] == ["bundle/p0.tif", "bundle/p1.tif"]
    for key in ("mean_iou", "box_iou", "point_iou"):
        assert 0.0 <= scores[key] <= 1.0


def test_bad_data_is_refused(data):
    (data / "labels" / "p1.tif").unlink()
    with pytest.raises(ValueError, match="p1.tif"):
        evaluate(data, tiny_sam())
