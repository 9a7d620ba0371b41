"""FastDecoder against segment_anything's own prompt encoder + mask decoder path."""

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

from napari_devosam.engine._fast.decoder import FastDecoder
from napari_devosam.testing import random_sam, tiny_sam


def _stock(sam, features, original_size):
    """A SamPredictor that uses ``features`` without running the image encoder."""
    stock = SamPredictor(sam)
    stock.features = features
    stock.original_size = original_size
    size = sam.image_encoder.img_size
    stock.input_size = stock.transform.get_preprocess_shape(*original_size, size)
    stock.is_image_set = True
    return stock


def _iou(a, b):
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def _tiny(depth):
    """tiny_sam, optionally with a deeper two-way transformer (vit_b's has 2 layers)."""
    from segment_anything.modeling import MaskDecoder, TwoWayTransformer

    sam = tiny_sam()
    if depth != 1:
        torch.manual_seed(depth)
        transformer = TwoWayTransformer(depth=depth, embedding_dim=256, mlp_dim=256, num_heads=8)
        sam.mask_decoder = MaskDecoder(
            transformer_dim=256, transformer=transformer, iou_head_hidden_dim=64
        ).eval()
    return sam


@pytest.fixture(scope="module", params=[1, 2, 3], ids=["depth1", "depth2", "depth3"])
def setup(request):
    sam = _tiny(request.param)
    g = torch.Generator().manual_seed(1)
    grid = sam.prompt_encoder.image_embedding_size
    features = torch.randn(1, 256, *grid, generator=g)
    original_size = (90, 130)
    dec = FastDecoder(sam)
    dec.set_image_embedding(features)
    return sam, features, original_size, dec


def _prompts(B=1, n_points=3, seed=2, scale=170.0):
    g = torch.Generator().manual_seed(seed)
    coords = torch.rand(B, n_points, 2, generator=g) * scale
    labels = (torch.rand(B, n_points, generator=g) > 0.3).int()
    boxes = torch.tensor([[20.0, 30.0, 120.0, 150.0]] * B) + torch.arange(B)[:, None] * 5.0
    return coords, labels, boxes


KINDS = ["points", "box", "box+points", "box+mask", "box+points+mask", "points+mask"]


@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("kind", KINDS)
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


@pytest.mark.parametrize("n_points", [1, 12, 30])
def test_many_points_take_the_unfolded_path_and_still_match(setup, n_points):
    # with >= 11 prompt tokens + 5 output tokens the kernels project image tokens directly
    sam, features, original_size, dec = setup
    stock = _stock(sam, features, original_size)
    coords, labels, boxes = _prompts(B=1, n_points=n_points, seed=n_points)
    low, iou = dec.decode(coords, labels, boxes, None, False)
    _, ref_iou, ref_low = stock.predict_torch(coords, labels, boxes, None, False)
    torch.testing.assert_close(low, ref_low, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(iou, ref_iou, rtol=1e-4, atol=1e-4)


def test_fast_and_stock_paths_agree_and_batches_of_any_size(setup):
    sam, features, _, dec = setup
    ref = FastDecoder(sam, fast=False)
    ref.set_image_embedding(features)
    for B in (1, 5, 1, 3):  # scratch buffers are reshaped between calls
        coords, labels, boxes = _prompts(B=B, seed=B)
        got = dec.decode(coords, labels, boxes, None, True)
        want = ref.decode(coords, labels, boxes, None, True)
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


def test_results_do_not_alias_scratch_buffers(setup):
    _, _, _, dec = setup
    coords, labels, boxes = _prompts(B=1)
    low1, iou1 = dec.decode(None, None, boxes, None, False)
    keep = low1.clone(), iou1.clone()
    dec.decode(coords, labels, None, None, False)
    torch.testing.assert_close(low1, keep[0], rtol=0, atol=0)
    torch.testing.assert_close(iou1, keep[1], rtol=0, atol=0)


@pytest.mark.parametrize("original_size", [(90, 130), (256, 256), (300, 41), (1, 7), (513, 257)])
def test_upscale_equals_postprocess(setup, original_size):
    sam, _, _, dec = setup
    low = torch.randn(3, 2, 64, 64, generator=torch.Generator().manual_seed(4))
    input_size = SamPredictor(sam).transform.get_preprocess_shape(*original_size, 256)
    got = dec.upscale(low, input_size, original_size)
    ref = sam.postprocess_masks(low, input_size, original_size)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


def test_decode_before_embedding_is_an_error():
    with pytest.raises(RuntimeError, match="embedding"):
        FastDecoder(tiny_sam()).decode(None, None, torch.tensor([[1.0, 1, 50, 50]]), None, False)


def test_wrong_embedding_shape_is_an_error():
    dec = FastDecoder(tiny_sam())
    with pytest.raises(ValueError, match="shape"):
        dec.set_image_embedding(torch.zeros(256, 16, 16))
    with pytest.raises(ValueError, match="grid"):
        dec.set_image_embedding(torch.zeros(1, 256, 8, 8))


def test_decoder_weights_changed_in_place():
    sam = tiny_sam()
    features = torch.randn(1, 256, 16, 16, generator=torch.Generator().manual_seed(3))
    dec = FastDecoder(sam)
    dec.set_image_embedding(features)
    box = torch.tensor([[10.0, 20.0, 150.0, 200.0]])
    mask = torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(5))
    before, _ = dec.decode(None, None, box, mask, False)
    other = tiny_sam(seed=7)
    sam.mask_decoder.load_state_dict(other.mask_decoder.state_dict())
    sam.prompt_encoder.load_state_dict(other.prompt_encoder.state_dict())
    dec.decoder_changed()
    after, _ = dec.decode(None, None, box, mask, False)
    ref = _stock(other, features, (256, 256)).predict_torch(None, None, box, mask, False)[2]
    assert not torch.allclose(before, after)
    np.testing.assert_allclose(after.numpy(), ref.numpy(), rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def vit_b():
    return random_sam("vit_b")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_vit_b_masks_equal_sam_predictor(vit_b, seed):
    """Real vit_b decoder (random weights), random embedding, a 512x752 plane, every prompt kind;
    masks through the whole predict path must match SamPredictor (IoU >= 0.99)."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(1, 256, 64, 64, generator=g)
    original_size = (512, 752)
    stock = _stock(vit_b, features, original_size)
    dec = FastDecoder(vit_b)
    dec.set_image_embedding(features)
    box = torch.as_tensor(stock.transform.apply_boxes(np.array([[100, 80, 600, 400]]), (512, 752)))
    pts = stock.transform.apply_coords(np.array([[[300.0, 250.0], [500.0, 300.0]]]), (512, 752))
    pts, lab = torch.as_tensor(pts, dtype=torch.float32), torch.tensor([[1, 0]])
    prev = None
    for pc, pl, bx, multi in [
        (None, None, box.float(), False),
        (pts, lab, box.float(), False),
        (pts, lab, None, True),
        (pts, lab, box.float(), False),  # refinement with the previous logits
    ]:
        mask = None if prev is None or multi else prev
        low, iou = dec.decode(pc, pl, bx, mask, multi)
        masks = dec.upscale(low, stock.input_size, original_size) > vit_b.mask_threshold
        ref_masks, ref_iou, ref_low = stock.predict_torch(pc, pl, bx, mask, multi)
        for a, b in zip(masks.flatten(0, 1).numpy(), ref_masks.flatten(0, 1).numpy(), strict=True):
            assert _iou(a, b) >= 0.99
        torch.testing.assert_close(iou, ref_iou, rtol=1e-3, atol=1e-3)
        torch.testing.assert_close(low, ref_low, rtol=1e-3, atol=1e-3)
        prev = low[:, :1]


def test_upscale_into_a_given_buffer(setup):
    sam, _, _, dec = setup
    low = torch.randn(2, 1, 64, 64, generator=torch.Generator().manual_seed(6))
    original_size = (120, 77)
    input_size = SamPredictor(sam).transform.get_preprocess_shape(*original_size, 256)
    out = torch.full((2, 1, *original_size), float("nan"))
    got = dec.upscale(low, input_size, original_size, out=out)
    assert got.data_ptr() == out.data_ptr()
    ref = sam.postprocess_masks(low, input_size, original_size)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
