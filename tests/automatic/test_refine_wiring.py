"""Automatic segmentation refines SAM's uncertain mask edges (``engine.mask_refine``) by the
Predictor's rule: bundled-format models with zoom on; whole-plane and zoomed-view seeds alike."""

from dataclasses import replace

import numpy as np
import pytest
import torch

import napari_devosam.engine.mask_refine as MR
from napari_devosam.automatic import segment_all
from napari_devosam.automatic.decoding import crop_proposals
from napari_devosam.automatic.postprocess import is_box_shaped
from napari_devosam.engine.predictor import Predictor
from napari_devosam.synthetic.phantoms import make_embryo
from napari_devosam.testing import tiny_sam

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class EdgeDecoder:
    """PromptDecoder's interface for ``crop_proposals``: "low-res" logits are plane-sized."""

    def __init__(self, shape, pixels):
        self.plane_shape = shape
        self.threshold = 0.0
        self.pixels = pixels

    def upscale(self, low_res):
        return low_res


def _disk_scene():
    """A bright disk (radius 8) and SAM-like logits whose edge sits 1.5 px outside it with an
    uncertain band 4 px wide: ``(pixels, logits, truth)``."""
    rr, cc = np.mgrid[:48, :48]
    d = np.hypot(rr - 24, cc - 24)
    truth = d <= 8
    noise = np.random.default_rng(0).normal(0, 2, truth.shape)
    pixels = (np.where(truth, 100.0, 10.0) + noise).astype(np.float32)
    return pixels, (9.5 - d).astype(np.float32), truth


def _iou(a, b):
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


@pytest.mark.parametrize("limit", [None, (0, 0, 48, 26)])
def test_crop_proposals_refine_where_the_decoder_has_pixels(limit):
    pixels, logits, truth = _disk_scene()
    low = torch.as_tensor(logits)[None]
    args = (low, np.ones(1), np.ones(1), [{"point": [24, 24], "box": None}])
    limits = None if limit is None else np.array([limit])
    window = np.ones_like(truth)
    if limit is not None:
        window[:, limit[3] :] = False
    stock = crop_proposals(EdgeDecoder(truth.shape, None), *args, limits=limits)[0]
    refined = crop_proposals(EdgeDecoder(truth.shape, pixels), *args, limits=limits)[0]
    np.testing.assert_array_equal(stock.full_mask(truth.shape), (logits > 0) & window)
    got = refined.full_mask(truth.shape)
    sam_mask = np.zeros_like(truth)
    r0, c0, r1, c1 = refined.box
    sam_mask[r0:r1, c0:c1] = refined.sam_mask
    np.testing.assert_array_equal(sam_mask, stock.full_mask(truth.shape))  # SAM's, kept
    assert not (got & ~window).any()  # the window still holds after refining
    assert (
        _iou(got, truth & window) > 0.9 > 0.8 > _iou(stock.full_mask(truth.shape), truth & window)
    )
    np.testing.assert_array_equal(
        refined.logits, logits[refined.box[0] : refined.box[2], refined.box[1] : refined.box[3]]
    )


@pytest.fixture(scope="module")
def sam():
    return tiny_sam(seed=5)


@pytest.fixture
def refined_pixels(monkeypatch):
    """The ``pixels`` frames ``refine_masks`` was called with (it still runs)."""
    calls = []
    original = MR.refine_masks

    def spy(masks, logits, pixels, *args, **kwargs):
        calls.append(np.asarray(pixels))
        return original(masks, logits, pixels, *args, **kwargs)

    monkeypatch.setattr(MR, "refine_masks", spy)
    return calls


def test_automatic_masks_are_refined_for_a_bundled_model_in_views_too(sam, refined_pixels):
    img, _ = make_embryo((192, 256), 14, seed=10_000_101, kind="nuclei")
    gray = MR.gray(img)
    # a stock-format model: SAM's masks as they are
    segment_all(img, Predictor(sam, cache_dir=None), min_score=-np.inf)
    assert refined_pixels == []
    sam.devosam_bundled = True
    try:
        segment_all(img, Predictor(sam, cache_dir=None, refine=False), min_score=-np.inf)
        assert refined_pixels == []
        segment_all(img, sam, min_score=-np.inf)  # no Predictor: the same rule decides
        n_sam = len(refined_pixels)
        pred = Predictor(sam, cache_dir=None)
        assert pred.zoom and pred.refine
        segment_all(img, pred, min_score=-np.inf)
    finally:
        del sam.devosam_bundled
    assert n_sam > 0 and len(refined_pixels) == 2 * n_sam
    views = [p for p in refined_pixels if p.shape != gray.shape]
    assert views, "seeds decoded in zoomed views were not refined"
    for p in refined_pixels:  # the plane's intensities, or a view window of them
        assert p.shape == gray.shape and np.array_equal(p, gray) or p.base is not None


def test_a_box_shaped_answer_stays_box_shaped_when_refined():
    """SAM answering with a box is judged by SAM's own mask, not the refined one."""
    pixels, logits, truth = _disk_scene()
    square = np.zeros_like(truth)
    square[14:35, 14:35] = True
    core = (9.5 - logits) <= 6  # SAM sure of the disk's middle, unsure of the square's rest
    sam = np.where(core, 4.0, np.where(square, 1.0, -4.0)).astype(np.float32)
    low = torch.as_tensor(sam)[None]
    args = (low, np.ones(1), np.ones(1), [{"point": [24, 24], "box": None}])
    q = crop_proposals(EdgeDecoder(truth.shape, pixels), *args)[0]
    np.testing.assert_array_equal(q.sam_mask, square[q.box[0] : q.box[2], q.box[1] : q.box[3]])
    assert not is_box_shaped(replace(q, sam_mask=None), truth.shape)  # the refined disk
    assert is_box_shaped(q, truth.shape)
    assert crop_proposals(EdgeDecoder(truth.shape, None), *args)[0].sam_mask is None
