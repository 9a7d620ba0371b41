"""The image encoder through fused scaled-dot-product attention equals segment_anything's."""

from functools import partial

import pytest
import torch

from napari_devosam.engine._fast import encoder as fast
from napari_devosam.engine._fast.encoder import fused_attention


def _encoder(img_size=128, depth=2, window_size=5, use_rel_pos=True, seed=0):
    from segment_anything.modeling import ImageEncoderViT

    torch.manual_seed(seed)
    enc = ImageEncoderViT(
        img_size=img_size,
        patch_size=16,
        embed_dim=48,
        depth=depth,
        num_heads=3,
        mlp_ratio=2,
        out_chans=32,
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        use_rel_pos=use_rel_pos,
        window_size=window_size,
        global_attn_indexes=(depth - 1,),
    ).eval()
    with torch.no_grad():  # stock initialises the relative positions to zero: make them count
        for name, p in enc.named_parameters():
            if "rel_pos" in name:
                p.normal_(0, 0.5)
    return enc


@pytest.mark.parametrize("use_rel_pos", [True, False])
@pytest.mark.parametrize("window_size", [0, 3, 5])  # 5: windows need padding (grid 8)
def test_encode_equals_the_stock_encoder(use_rel_pos, window_size):
    enc = _encoder(window_size=window_size, use_rel_pos=use_rel_pos)
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want = enc(x)
        with fused_attention(enc):
            got = enc(x)
    assert got.shape == want.shape == (2, 32, 8, 8)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert all("forward" not in blk.attn.__dict__ for blk in enc.blocks)  # restored
    torch.testing.assert_close(enc(x), want, rtol=0, atol=0)


@pytest.mark.parametrize("chunk", [1 << 20, 3 * 64 * 7])  # one band; 7 queries a band, 64 = 9*7+1
def test_global_blocks_in_bands_equal_the_stock_encoder(monkeypatch, chunk):
    """The CPU path for global blocks (scores formed a band of queries at a time) is taken
    from ``EXPLICIT_FROM`` tokens: lowered here so that the small encoder's 64 take it."""
    enc = _encoder(window_size=3)
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    called = []
    banded = fast._banded
    monkeypatch.setattr(fast, "_banded", lambda *a: called.append(a[1].shape) or banded(*a))
    with torch.inference_mode():
        want = enc(x)
        with fused_attention(enc):
            with_sdpa = enc(x)
            assert not called  # 64 tokens: below the default threshold
            monkeypatch.setattr(fast, "EXPLICIT_FROM", 64)
            monkeypatch.setattr(fast, "CHUNK", chunk)
            got = enc(x)
    assert called == [(1, 3, 64, 16)]  # the global block only
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(with_sdpa, want, rtol=1e-4, atol=1e-5)


def test_relative_positions_matter_in_the_comparison():
    enc = _encoder()
    x = torch.randn(1, 3, 128, 128)
    with torch.inference_mode(), fused_attention(enc):
        before = enc(x)
        for name, p in enc.named_parameters():
            if "rel_pos" in name:
                p.zero_()
        after = enc(x)
    assert (before - after).abs().max() > 1e-3


@pytest.mark.slow
def test_vit_b_blocks_at_a_small_input():
    from napari_devosam.testing import random_sam

    enc = random_sam("vit_b").image_encoder
    with torch.no_grad():
        for name, p in enc.named_parameters():
            if "rel_pos" in name:
                p.normal_(0, 0.1)
    enc.pos_embed = None  # sized for 1024 x 1024; the blocks are what is compared
    x = torch.randn(1, 3, 256, 256)
    with torch.inference_mode():
        want = enc(x)
        with fused_attention(enc):
            got = enc(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_the_swap_is_undone_when_the_encoder_fails():
    enc = _encoder()
    with pytest.raises(RuntimeError, match="boom"), fused_attention(enc):
        raise RuntimeError("boom")
    assert all("forward" not in blk.attn.__dict__ for blk in enc.blocks)


def test_overlapping_swaps_leave_the_model_unchanged():
    enc = _encoder()
    outer = fused_attention(enc)
    inner = fused_attention(enc)
    outer.__enter__()
    inner.__enter__()  # a second embedding worker starts while the first runs
    outer.__exit__(None, None, None)  # the first finishes first
    inner.__exit__(None, None, None)
    assert all("forward" not in blk.attn.__dict__ for blk in enc.blocks)


def test_a_forward_set_by_someone_else_is_restored():
    enc = _encoder()
    mine = enc.blocks[0].attn.forward
    enc.blocks[0].attn.forward = mine  # an instance-level override, e.g. a profiler's
    with fused_attention(enc):
        assert enc.blocks[0].attn.forward is not mine
    assert enc.blocks[0].attn.__dict__["forward"] is mine
