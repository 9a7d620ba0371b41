"""PackedMLP (oneDNN pre-packed token MLP) against segment_anything's MLPBlock."""

import pytest
import torch
from segment_anything.modeling.common import MLPBlock

from napari_devosam.engine._fast.packed_mlp import PackedMLP


def _mlp(act, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return MLPBlock(256, 2048, act).to(dtype).eval()


@pytest.mark.parametrize("act", [torch.nn.ReLU, torch.nn.GELU])
@pytest.mark.parametrize("shape", [(1, 9, 256), (3, 7, 256), (5, 256), (1, 1, 256)])
def test_packed_mlp_equals_mlp_block(act, shape):
    mlp = _mlp(act)
    packed = PackedMLP(mlp)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want = mlp(x)
        got = packed(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    if torch.backends.mkldnn.is_available():
        assert packed.packed


def test_unpackable_weights_run_the_stock_module():
    mlp = _mlp(torch.nn.ReLU, dtype=torch.float64)
    packed = PackedMLP(mlp)
    assert not packed.packed
    x = torch.randn(2, 5, 256, dtype=torch.float64)
    with torch.inference_mode():
        assert torch.equal(packed(x), mlp(x))


def test_packing_is_a_snapshot_of_the_weights():
    """Weights loaded later are not seen: FastDecoder rebuilds on decoder_changed()."""
    mlp = _mlp(torch.nn.ReLU)
    packed = PackedMLP(mlp)
    x = torch.randn(1, 4, 256)
    with torch.inference_mode():
        before = packed(x)
        mlp.load_state_dict(_mlp(torch.nn.ReLU, seed=5).state_dict())
        assert not torch.allclose(mlp(x), before)
        torch.testing.assert_close(PackedMLP(mlp)(x), mlp(x), rtol=1e-5, atol=1e-4)
