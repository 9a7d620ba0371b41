import numpy as np
import pytest

from napari_devosam.export.coco import (
    bbox_xywh,
    coco_document,
    labels_from_coco,
    rle_decode,
    rle_encode,
)
from napari_devosam.synthetic.phantoms import make_embryo


def test_uncompressed_counts_are_column_major_and_start_with_zeros():
    mask = np.array([[0, 1], [1, 1]], bool)  # column-major: 0 1 1 1
    assert rle_encode(mask, compressed=False)["counts"] == [1, 3]
    assert rle_encode(np.ones((2, 2), bool), compressed=False)["counts"] == [0, 4]
    assert rle_encode(np.zeros((3, 2), bool), compressed=False)["counts"] == [6]


@pytest.mark.parametrize("compressed", [True, False])
def test_random_masks_round_trip_exactly(compressed):
    rng = np.random.default_rng(0)
    for _ in range(150):
        shape = tuple(rng.integers(1, 70, 2))
        mask = rng.random(shape) < rng.random()
        rle = rle_encode(mask, compressed=compressed)
        assert rle["size"] == list(shape)
        np.testing.assert_array_equal(rle_decode(rle), mask)


def test_matches_pycocotools():
    from pycocotools import mask as mask_utils

    _, labels = make_embryo((120, 150), n_cells=6, seed=4)
    for i in range(1, 7):
        m = labels == i
        ref = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        assert rle_encode(m)["counts"] == ref["counts"].decode()


def test_decode_rejects_inconsistent_counts():
    with pytest.raises(ValueError, match="sum"):
        rle_decode({"size": [2, 2], "counts": [1, 2]})


def test_document_round_trips_label_images():
    _, labels = make_embryo((96, 128), n_cells=7, seed=1)
    labels = labels.astype(np.uint32) * 3  # non-consecutive ids survive
    doc = coco_document([("a.tif", labels, {"plane": [2]})])
    assert len(doc["annotations"]) == 7 and doc["images"][0]["plane"] == [2]
    ann = doc["annotations"][0]
    mask = labels == ann["label"]
    assert ann["area"] == mask.sum() and ann["bbox"] == bbox_xywh(mask)
    np.testing.assert_array_equal(labels_from_coco(doc, "a.tif"), labels)


def test_bbox_is_x_y_width_height():
    mask = np.zeros((10, 20), bool)
    mask[2:5, 7:15] = True
    assert bbox_xywh(mask) == [7, 2, 8, 3]
