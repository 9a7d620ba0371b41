"""engine._fast.two_way: SAM's two-way transformer with fused attention equals the stock module."""

import pytest
import torch

from napari_devosam.engine._fast.two_way import attend, two_way
from napari_devosam.testing import random_sam, tiny_sam


@pytest.mark.parametrize("make", [lambda: random_sam("vit_b"), lambda: tiny_sam(3)])
def test_equals_stock_transformer(make, one_torch_thread):
    sam = make()
    tr = sam.mask_decoder.transformer
    c = sam.mask_decoder.transformer_dim
    gen = torch.Generator().manual_seed(11)
    image = torch.randn((3, c, 12, 10), generator=gen)
    pe = torch.randn((3, c, 12, 10), generator=gen)
    tokens = torch.randn((3, 7, c), generator=gen)
    with torch.inference_mode():
        ref_q, ref_k = tr(image, pe, tokens)
        q, k = two_way(tr, image, pe, tokens)
        attn = tr.layers[0].cross_attn_token_to_image
        ref_a = attn(q=tokens, k=ref_k, v=ref_k)
        a = attend(attn, tokens, ref_k, ref_k)
    torch.testing.assert_close(q, ref_q, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(k, ref_k, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a, ref_a, rtol=1e-5, atol=1e-5)
