"""Batched training decoder == stock SAM modules; prompt simulation; losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_devosam.engine.decoding import BOX_BR, BOX_TL, NEG, PAD, POS, Prompts
from napari_devosam.engine.decoding import decode_tokens as decode
from napari_devosam.engine.embeddings import embed_plane
from napari_devosam.finetune.data import TrainingPlane
from napari_devosam.finetune.losses import decoder_loss, hard_iou, mask_losses
from napari_devosam.finetune.prompts import PromptSampler
from napari_devosam.finetune.targets import prepare_plane
from napari_devosam.synthetic.phantoms import make_embryo
from napari_devosam.testing import tiny_sam


@pytest.fixture(scope="module")
def sam():
    return tiny_sam()


@pytest.fixture(scope="module")
def target(sam):
    image, labels = make_embryo(seed=2)
    plane = TrainingPlane("p", "p", image, labels.astype(np.int64))
    return prepare_plane(plane, embed_plane(sam, image), (64, 64), "cpu")


def stock(sam, features, points, boxes, masks, multimask):
    with torch.no_grad():
        sparse, dense = sam.prompt_encoder(points=points, boxes=boxes, masks=masks)
        return sam.mask_decoder(features, sam.prompt_encoder.get_dense_pe(), sparse, dense,
                                multimask_output=multimask)


@pytest.mark.parametrize("multimask", [False, True])
def test_decode_equals_stock_modules(sam, multimask):
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(1, 256, 16, 16, generator=gen)
    pts = torch.rand(3, 2, 2, generator=gen) * 256
    lab = torch.tensor([[POS, NEG]] * 3)
    box = torch.rand(3, 4, generator=gen) * 100
    box[:, 2:] += 100
    mask_in = torch.randn(3, 1, 64, 64, generator=gen)
    pad = torch.zeros(3, 1, 2)
    cases = [
        ((pts, lab), None, None, Prompts(torch.cat([pts, pad], 1),
                                         torch.cat([lab, torch.full((3, 1), PAD)], 1))),
        (None, box, None, Prompts(box.reshape(3, 2, 2), torch.tensor([[BOX_TL, BOX_BR]] * 3))),
        ((pts, lab), box, mask_in, Prompts(torch.cat([pts, box.reshape(3, 2, 2)], 1),
                                           torch.cat([lab, torch.tensor([[2, 3]] * 3)], 1))),
    ]
    for points, boxes, masks, prompts in cases:
        want_masks, want_iou = stock(sam, features, points, boxes, masks, multimask)
        prompts.multimask = multimask
        with torch.no_grad():
            got_masks, got_iou = decode(sam, features, prompts, masks)
        assert got_masks.shape == want_masks.shape
        torch.testing.assert_close(got_masks, want_masks, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(got_iou, want_iou, atol=1e-5, rtol=1e-4)


def test_targets_match_the_labels(target):
    assert target.masks.shape == (target.n_objects, 64, 64)
    assert target.valid == (64, 64)
    # 256 px plane, 256 px input: one low-res cell is 4x4 pixels
    for k, obj_id in enumerate(target.ids):
        area = np.count_nonzero(target.labels == obj_id)
        assert float(target.masks[k].sum()) * 16 == pytest.approx(area, rel=1e-4)
        r, c = target.centers_rc[k].astype(int)
        assert target.labels[r, c] == obj_id


def test_initial_prompts_lie_where_they_should(target):
    sampler = PromptSampler(0, "cpu")
    idx = torch.arange(target.n_objects)
    for _ in range(5):
        p = sampler.initial(target, idx, "points", 256)
        assert not p.multimask and (p.labels[:, -1] == PAD).all()
        for b in range(len(idx)):
            obj = target.labels == target.ids[b]
            for (x, y), lab in zip(p.coords[b].tolist(), p.labels[b].tolist(), strict=True):
                if lab == POS:
                    assert obj[int(y), int(x)]
                elif lab == NEG:
                    assert not obj[int(y), int(x)]
        single = sampler.initial(target, idx, "point", 256)
        assert single.multimask and single.coords.shape == (len(idx), 2, 2)
        box = sampler.initial(target, idx, "box", 256)
        assert (box.labels == torch.tensor([BOX_TL, BOX_BR])).all()
        side = target.boxes[:, 2:] - target.boxes[:, :2]
        shift = (box.coords.reshape(-1, 4) - target.boxes).abs()
        assert (shift <= 5.0 + 1e-4).all() and (shift <= 0.5 * side.repeat(1, 2) + 5).all()
        assert (box.coords[:, 1] >= box.coords[:, 0]).all()


def test_correction_point_comes_from_the_error(target):
    sampler = PromptSampler(1, "cpu")
    idx = torch.arange(target.n_objects)
    first = sampler.initial(target, idx, "box", 256)
    empty = torch.full((len(idx), 64, 64), -10.0)  # predicted nothing: every error is a miss
    nxt = sampler.correction(target, idx, first, empty)
    assert (nxt.labels == torch.tensor([POS, BOX_TL, BOX_BR])).all()
    for b in range(len(idx)):
        x, y = nxt.coords[b, 0].tolist()
        assert float(target.masks[b, int(y) // 4, int(x) // 4]) > 0.5
    full = torch.full((len(idx), 64, 64), 10.0)  # predicted everything: errors are background
    nxt = sampler.correction(target, idx, nxt, full)
    assert (nxt.labels[:, 1] == NEG).all() and nxt.coords.shape[1] == 4


def test_losses_prefer_the_truth():
    target = torch.zeros(2, 1, 32, 32)
    target[:, :, 8:20, 8:20] = 1
    right = (target * 2 - 1) * 8
    wrong = -right
    for kind in ("bce", "balanced", "focal"):
        assert (mask_losses(right, target, kind) < mask_losses(wrong, target, kind)).all()
    assert torch.equal(hard_iou(right, target), torch.ones(2, 1))
    assert torch.equal(hard_iou(wrong, target), torch.zeros(2, 1))
    both = torch.cat([wrong, right], dim=1)
    loss, best = decoder_loss(both, torch.ones(2, 2), target)
    assert best.tolist() == [1, 1] and torch.isfinite(loss)
    with pytest.raises(ValueError, match="unknown loss"):
        mask_losses(right, target, "l2")
