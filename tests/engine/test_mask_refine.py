"""The uncertain edge of SAM's masks decided by the object's intensities (engine/mask_refine.py)
and its use by the Predictor. Quality on real nuclei: tests/test_real_data.py."""

import numpy as np
import pytest
import torch

from napari_devosam.engine import mask_refine as MR
from napari_devosam.engine.coords import mask_within_box
from napari_devosam.engine.predictor import Predictor
from napari_devosam.testing import tiny_sam

SHAPE = (96, 120)


def _disc(center, radius, shape=SHAPE):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(yy - center[0], xx - center[1])


def _scene(bright=True, seed=0):
    """A disc of radius 15 on a noisy background, and SAM-like logits of a disc 2 px too
    big: signed distance to that wrong outline, in logits (1 per pixel)."""
    rng = np.random.default_rng(seed)
    truth = _disc((48, 60), 15) <= 15
    fg, bg = (1000.0, 200.0) if bright else (200.0, 1000.0)
    pixels = np.where(truth, fg, bg) + rng.normal(0, 40, SHAPE)
    logits = (17 - _disc((48, 60), 17)).astype(np.float32)
    return pixels.astype(np.float32), logits, truth


def _iou(a, b):
    return np.count_nonzero(a & b) / np.count_nonzero(a | b)


@pytest.mark.parametrize("bright", [True, False])
def test_the_edge_moves_to_the_objects_own_edge(bright):
    pixels, logits, truth = _scene(bright)
    sam_mask = logits > 0
    mask = sam_mask.copy()
    box = (31, 43, 65, 77)  # the wrong disc's extent
    changed = MR.refine_box(mask, logits, pixels, box)
    assert changed
    assert _iou(sam_mask, truth) < 0.85
    assert _iou(mask, truth) > 0.95
    # confident pixels are SAM's: nothing with logits > BAND is dropped, nothing < -BAND added
    assert mask[logits > MR.BAND].all()
    assert not mask[logits < -MR.BAND].any()


def test_no_clear_intensity_difference_leaves_sams_mask():
    rng = np.random.default_rng(1)
    pixels = rng.normal(500, 50, SHAPE).astype(np.float32)  # no object in the pixels
    _, logits, _ = _scene()
    out, changed = MR.refine_crop(logits, pixels)
    assert not changed
    np.testing.assert_array_equal(out, logits > 0)
    # too few confident pixels on one side: unchanged too
    out, changed = MR.refine_crop(np.full(SHAPE, 0.5, np.float32), pixels)
    assert not changed and out.all()


def test_parts_without_a_confident_pixel_are_dropped():
    pixels, logits, truth = _scene()
    pixels[20:24, 60:64] = 1000.0  # a bright speck in SAM's uncertain band, apart from the disc
    logits[20:24, 60:64] = -1.0
    out, changed = MR.refine_crop(logits, pixels)
    assert changed
    assert not out[20:24, 60:64].any()


def test_refine_masks_uses_each_masks_extent_without_boxes():
    pixels, logits, truth = _scene()
    masks = np.stack([logits > 0, np.zeros(SHAPE, bool)])
    both = np.stack([logits, np.full(SHAPE, -5, np.float32)])
    MR.refine_masks(masks, torch.as_tensor(both), pixels, None)
    assert _iou(masks[0], truth) > 0.95
    assert not masks[1].any()  # an empty mask stays empty


def test_gray_and_shape_errors():
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 30
    np.testing.assert_allclose(MR.gray(rgb), 10.0)
    assert MR.gray(np.ones((4, 5), np.uint16)).dtype == np.float32
    with pytest.raises(ValueError, match="plane must be"):
        MR.gray(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="one \\(h, w\\) crop"):
        MR.refine_crop(np.zeros((3, 3)), np.zeros((3, 4)))


def test_a_nan_gap_does_not_decide_the_edge():
    """NaN pixels (an acquisition gap) made both class medians NaN: only the confident core
    was kept."""
    pixels, _, truth = _scene()
    logits = (13 - _disc((48, 60), 13)).astype(np.float32)  # SAM's disc 2 px too small
    pixels[40:56, 75:79] = np.nan  # outside the object, in the refined region
    g = MR.gray(pixels)
    assert np.isfinite(g).all()
    mask = (logits > 0).copy()
    assert _iou(mask, truth) < 0.8
    assert MR.refine_box(mask, logits, g, (35, 47, 61, 73))
    assert _iou(mask, truth) > 0.93


@pytest.fixture(scope="module")
def sam():
    return tiny_sam(seed=3)


def _plane():
    pixels, _, _ = _scene()
    return np.clip(pixels, 0, None).astype(np.uint16)


def test_refine_auto_is_on_for_bundled_models_with_zoom_only(sam):
    assert Predictor(sam, cache_dir=None).refine is False  # a stock-format SAM: stock masks
    assert Predictor(sam, cache_dir=None, refine=True).refine is True
    sam.devosam_bundled = True
    try:
        assert Predictor(sam, cache_dir=None).refine is True
        assert Predictor(sam, cache_dir=None, zoom=False).refine is False
    finally:
        del sam.devosam_bundled
    with pytest.raises(ValueError, match="refine must be"):
        Predictor(sam, cache_dir=None, refine="yes")


def test_predictor_refines_boxes_and_clicks_as_refine_masks_does(sam):
    plane = _plane()
    ref = Predictor(sam, cache_dir=None, zoom=False)
    ref.set_image(plane)
    pred = Predictor(sam, cache_dir=None, zoom=False, refine=True)
    pred.set_image(plane)
    gray = MR.gray(plane)
    box = np.array([30.0, 42.0, 66.0, 78.0])
    for prompt in [dict(box=box), dict(points=[[48, 60]], multimask=True)]:
        masks, _, low = ref.predict(**prompt)
        logits = ref._decoder.upscale(torch.as_tensor(low)[None])[0]
        boxes = None if "box" not in prompt else np.tile(box, (len(masks), 1))
        expected = MR.refine_masks((logits > 0).numpy(), logits, gray, boxes)
        if boxes is not None:
            mask_within_box(expected, box)  # the box rule
        got, _, got_low = pred.predict(**prompt)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(got_low, low)  # the logits stay SAM's
    got, _ = pred.predict_boxes(box[None])
    np.testing.assert_array_equal(got[0], pred.predict(box=box)[0][0])
