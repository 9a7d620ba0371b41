"""MaskHead (ConvTranspose #2, GELUs, hypernetwork product) against MaskDecoder's own modules."""

import pytest
import torch

from napari_devosam.engine._fast.mask_head import BLOCK_ROWS, MaskHead
from napari_devosam.engine._fast.workspace import Workspace
from napari_devosam.testing import random_sam, tiny_sam


def _stock_masks(dec, up1, hyper, grid):
    """output_upscaling[1:] + hypernetwork product, the way MaskDecoder.predict_masks does it."""
    b, c = hyper.shape[:2]
    gh, gw = grid
    c1 = dec.output_upscaling[0].out_channels
    # up1 rows (i, j), cols (dy, dx, channel) -> (B, c1, 2gh, 2gw)
    x = up1.view(b, gh, gw, 2, 2, c1).permute(0, 5, 1, 3, 2, 4).reshape(b, c1, 2 * gh, 2 * gw)
    x = dec.output_upscaling[1:](x)  # (B, c2, 4gh, 4gw)
    return (hyper @ x.flatten(2)).view(b, c, 4 * gh, 4 * gw)


@pytest.mark.parametrize("make", [tiny_sam, lambda: random_sam("vit_b")], ids=["tiny", "vit_b"])
@pytest.mark.parametrize("n_masks", [1, 3])
@pytest.mark.parametrize("packed", [True, False], ids=["packed", "fallback"])
def test_mask_head_equals_output_upscaling(make, n_masks, packed):
    sam = make()
    dec = sam.mask_decoder
    grid = tuple(sam.prompt_encoder.image_embedding_size)
    head = MaskHead(dec, grid)
    if not packed:
        head._packed = None  # the addmm + gelu_ path (no oneDNN)
    elif torch.backends.mkldnn.is_available():
        assert head._packed is not None
    several_blocks = grid[0] * grid[1] * 4 > BLOCK_ROWS  # vit_b: 16384 rows, 4 blocks
    assert several_blocks == (grid[0] > 16)
    g = torch.Generator().manual_seed(2)
    c1, c2 = head.c1, head.c2
    up1 = torch.randn(2, grid[0] * grid[1], 4 * c1, generator=g)
    hyper = torch.randn(2, n_masks, c2, generator=g)
    with torch.inference_mode():
        got = head(Workspace(), up1, hyper)
        want = _stock_masks(dec, up1, hyper, grid)
    assert got.shape == want.shape == (2, n_masks, 4 * grid[0], 4 * grid[1])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
