"""FastDecoder against segment_anything's own prompt encoder + mask decoder path."""

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

from napari_devosam.fast_decoder import FastDecoder
from napari_devosam.testing import tiny_sam


def _stock(sam, features, original_size):
    """A SamPredictor that uses ``features`` without running the image encoder."""
    stock = SamPredictor(sam)
    stock.features = features
    stock.original_size = original_size
    size = sam.image_encoder.img_size
    stock.input_size = stock.transform.get_preprocess_shape(*original_size, size)
    stock.is_image_set = True
    return stock


@pytest.fixture(scope="module")
def setup():
    sam = tiny_sam()
    g = torch.Generator().manual_seed(1)
    grid = sam.prompt_encoder.image_embedding_size
    features = torch.randn(1, 256, *grid, generator=g)
    original_size = (90, 130)
    dec = FastDecoder(sam)
    dec.set_image_embedding(features)
    return sam, features, original_size, dec


def _prompts(B=1):
    g = torch.Generator().manual_seed(2)
    coords = torch.rand(B, 3, 2, generator=g) * 170
    labels = torch.tensor([[1, 0, 1]] * B, dtype=torch.int)
    boxes = torch.tensor([[20.0, 30.0, 120.0, 150.0]] * B) + torch.arange(B)[:, None] * 5.0
    return coords, labels, boxes


@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("kind", ["points", "box", "box+points", "box+mask"])
def test_decode_equals_stock(setup, kind, multimask):
    sam, features, original_size, dec = setup
    stock = _stock(sam, features, original_size)
    coords, labels, boxes = _prompts(B=2)
    pc = coords if "points" in kind else None
    pl = labels if "points" in kind else None
    bx = boxes if "box" in kind else None
    mask = None
    if "mask" in kind:
        mask = torch.randn(2, 1, 4 * features.shape[-2], 4 * features.shape[-1])
    low, iou = dec.decode(pc, pl, bx, mask, multimask)
    ref_masks, ref_iou, ref_low = stock.predict_torch(
        pc, pl, bx, mask, multimask_output=multimask, return_logits=True
    )
    C = 3 if multimask else 1
    assert low.shape == (2, C, 4 * features.shape[-2], 4 * features.shape[-1])
    assert iou.shape == (2, C)
    torch.testing.assert_close(low, ref_low, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(iou, ref_iou, rtol=1e-4, atol=1e-4)
    up = dec.upscale(low, stock.input_size, original_size)
    assert up.shape == (2, C, *original_size)
    torch.testing.assert_close(up, ref_masks, rtol=1e-4, atol=1e-4)


def test_upscale_equals_postprocess(setup):
    sam, _, _, dec = setup
    low = torch.randn(3, 1, 64, 64)
    for original_size in [(90, 130), (256, 256), (300, 41)]:
        input_size = SamPredictor(sam).transform.get_preprocess_shape(*original_size, 256)
        got = dec.upscale(low, input_size, original_size)
        ref = sam.postprocess_masks(low, input_size, original_size)
        torch.testing.assert_close(got, ref)


def test_decode_before_embedding_is_an_error():
    with pytest.raises(RuntimeError, match="embedding"):
        FastDecoder(tiny_sam()).decode(None, None, torch.tensor([[1.0, 1, 50, 50]]), None, False)


def test_decoder_weights_changed_in_place():
    sam = tiny_sam()
    features = torch.randn(1, 256, 16, 16, generator=torch.Generator().manual_seed(3))
    dec = FastDecoder(sam)
    dec.set_image_embedding(features)
    box = torch.tensor([[10.0, 20.0, 150.0, 200.0]])
    before, _ = dec.decode(None, None, box, None, False)
    other = tiny_sam(seed=7)
    sam.mask_decoder.load_state_dict(other.mask_decoder.state_dict())
    sam.prompt_encoder.load_state_dict(other.prompt_encoder.state_dict())
    dec.decoder_changed()
    after, _ = dec.decode(None, None, box, None, False)
    ref = _stock(other, features, (256, 256)).predict_torch(None, None, box, None, False)[2]
    assert not torch.allclose(before, after)
    np.testing.assert_allclose(after.numpy(), ref.numpy(), rtol=1e-4, atol=1e-4)
