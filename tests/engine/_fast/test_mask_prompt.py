"""MaskFeatures against the prompt encoder's own mask_downscaling[:-1]."""

import pytest
import torch

from napari_devosam.engine._fast.mask_prompt import MaskFeatures
from napari_devosam.testing import random_sam, tiny_sam


def _randomise_norms(prompt_encoder, seed=0):
    g = torch.Generator().manual_seed(seed)
    for module in prompt_encoder.mask_downscaling:
        if hasattr(module, "eps"):  # LayerNorm2d: default weights 1, 0 would hide mistakes
            with torch.no_grad():
                module.weight.copy_(torch.rand(module.weight.shape, generator=g) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=g))


@pytest.mark.parametrize("make", [tiny_sam, lambda: random_sam("vit_b")], ids=["tiny", "vit_b"])
def test_mask_features_equal_stock_modules(make):
    sam = make()
    _randomise_norms(sam.prompt_encoder)
    size = sam.prompt_encoder.mask_input_size
    mask = torch.randn(3, 1, *size, generator=torch.Generator().manual_seed(1)) * 4
    with torch.inference_mode():
        want = sam.prompt_encoder.mask_downscaling[:-1](mask).flatten(2)
        got = MaskFeatures(sam.prompt_encoder)(mask)
    assert got.shape == want.shape == (3, 16, size[0] * size[1] // 16)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_constant_mask_gives_the_bias_path():
    """A constant mask makes every patch equal; centred convs then rely on eps and bias."""
    sam = tiny_sam()
    _randomise_norms(sam.prompt_encoder, seed=3)
    mask = torch.full((1, 1, *sam.prompt_encoder.mask_input_size), -2.0)
    with torch.inference_mode():
        want = sam.prompt_encoder.mask_downscaling[:-1](mask).flatten(2)
        got = MaskFeatures(sam.prompt_encoder)(mask)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
