"""The folded training decoder == the stock modules: outputs and parameter gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_devosam.engine.decoding import BOX_BR, BOX_TL, NEG, PAD, POS, Prompts
from napari_devosam.engine.decoding import decode_tokens as decode
from napari_devosam.engine.decoding import decode_tokens_fast as decode_fast
from napari_devosam.engine.embeddings import embed_plane
from napari_devosam.finetune.data import TrainingPlane
from napari_devosam.finetune.targets import prepare_plane
from napari_devosam.finetune.trainer import Trainer, training_model
from napari_devosam.synthetic.phantoms import make_embryo
from napari_devosam.testing import random_sam, tiny_sam

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def sam():
    return tiny_sam()


def make_prompts(b, img, kind, multimask, gen):
    """B prompts of one kind in an img x img input frame."""
    pts = torch.rand(b, 3, 2, generator=gen) * img
    box = torch.sort(torch.rand(b, 2, 2, generator=gen) * img, dim=1).values
    if kind == "points":  # two points and a padding token, as without a box
        return Prompts(pts, torch.tensor([[POS, NEG, PAD]] * b), multimask)
    if kind == "box":
        return Prompts(box, torch.tensor([[BOX_TL, BOX_BR]] * b), multimask)
    if kind == "many":  # too many tokens for folding to pay: the stock attention runs
        many = torch.rand(b, 12, 2, generator=gen) * img
        return Prompts(many, torch.tensor([[POS, NEG] * 6] * b), multimask)
    return Prompts(torch.cat([pts, box], 1),
                   torch.tensor([[POS, NEG, POS, BOX_TL, BOX_BR]] * b), multimask)


def outputs_and_grads(fn, sam, features, prompts, mask_input):
    """Run fn, back-propagate a fixed random functional of both outputs; return the outputs
    and {name: grad} of the mask decoder and prompt encoder (None -> zeros)."""
    named = [(f"{m}.{n}", p) for m in ("mask_decoder", "prompt_encoder")
             for n, p in getattr(sam, m).named_parameters()]
    for _, p in named:
        p.requires_grad_(True)
        p.grad = None
    masks, iou = fn(sam, features, prompts, mask_input)
    gen = torch.Generator().manual_seed(7)
    weight = torch.randn(masks.shape, generator=gen)
    ((masks * weight).mean() + (iou * torch.randn(iou.shape, generator=gen)).sum()).backward()
    grads = {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in named}
    for _, p in named:
        p.requires_grad_(False)
        p.grad = None
    return masks.detach(), iou.detach(), grads


def assert_same(sam, features, prompts, mask_input):
    want_m, want_i, want_g = outputs_and_grads(decode, sam, features, prompts, mask_input)
    got_m, got_i, got_g = outputs_and_grads(decode_fast, sam, features, prompts, mask_input)
    assert got_m.shape == want_m.shape and got_i.shape == want_i.shape
    torch.testing.assert_close(got_m, want_m, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_i, want_i, atol=1e-5, rtol=1e-4)
    scale = max(float(g.abs().max()) for g in want_g.values())
    assert scale > 0
    for name, want in want_g.items():
        got = got_g[name]
        if name.endswith("k_proj.bias"):
            # a key bias shifts each softmax row by a constant: its true gradient is 0
            assert float(want.abs().max()) < 1e-5 * scale, name
            assert float(got.abs().max()) < 1e-5 * scale, name
            continue
        atol = max(1e-4 * float(want.abs().max()), 1e-7 * scale)  # a floor for ~0 gradients
        torch.testing.assert_close(got, want, rtol=1e-3, atol=atol,
                                   msg=lambda m, name=name: f"{name}: {m}")
    return want_g


KINDS = ("points", "box", "both", "many")


@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_mask", [False, True])
def test_fast_decoder_equals_stock_tiny(sam, kind, multimask, with_mask):
    # A fixed seed per case: hash() of strings changes from process to process.
    seed = 4 * KINDS.index(kind) + 2 * multimask + with_mask
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(1, 256, 16, 16, generator=gen)
    prompts = make_prompts(3, 256, kind, multimask, gen)
    mask_input = torch.randn(3, 1, 64, 64, generator=gen) * 4 if with_mask else None
    grads = assert_same(sam, features, prompts, mask_input)
    trained = "prompt_encoder.mask_downscaling.0.weight"
    assert bool(grads[trained].abs().max() > 0) == with_mask


@pytest.mark.slow
def test_fast_decoder_equals_stock_vit_b():
    sam = random_sam("vit_b")
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(1, 256, 64, 64, generator=gen)
    for kind, multimask, with_mask in [("box", False, False), ("both", False, True),
                                       ("points", True, True)]:
        prompts = make_prompts(2, 1024, kind, multimask, gen)
        mask_input = torch.randn(2, 1, 256, 256, generator=gen) * 4 if with_mask else None
        assert_same(sam, features, prompts, mask_input)


def test_fast_decoder_rejects_batched_features(sam):
    prompts = make_prompts(2, 256, "box", False, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="features must have shape"):
        decode_fast(sam, torch.zeros(2, 256, 16, 16), prompts)


def test_trainer_steps_agree_with_the_stock_decoder(sam):
    """The same seeded training steps through either decoder give the same weights."""
    image, labels = make_embryo(seed=3)
    target = prepare_plane(TrainingPlane("p", "p", image, labels.astype(np.int64)),
                           embed_plane(sam, image), (64, 64), "cpu")
    states, losses = [], []
    for fast in (False, True):
        trainer = Trainer(training_model(sam, "cpu"), lr=1e-3, correction_rounds=2, seed=0,
                          fast=fast)
        losses.append([trainer.step(target, idx, kind)
                       for kind, idx in zip(("box", "point", "points"),
                                            trainer.epoch_batches(target, 4) * 3, strict=False)])
        states.append(trainer.state()["mask_decoder"])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)
    before = sam.mask_decoder.state_dict()
    assert not torch.equal(states[0]["output_upscaling.0.weight"],
                           before["output_upscaling.0.weight"])
    # Adam divides each gradient by its own running size, so an entry whose true gradient is ~0
    # moves by up to lr per step on rounding noise alone: compare each tensor's whole update.
    for name, want in states[0].items():
        if name.endswith("k_proj.bias"):  # its true gradient is 0: both move on noise alone
            continue
        step_stock = want - before[name]
        step_fast = states[1][name] - before[name]
        floor = 1e-6 * step_stock.numel() ** 0.5
        error = float((step_fast - step_stock).norm()) / max(float(step_stock.norm()), floor)
        assert error < 0.05, (name, error)
