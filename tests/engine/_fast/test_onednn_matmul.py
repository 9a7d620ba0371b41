"""``a @ w.T`` through oneDNN (and its plain-torch fallback)."""

import pytest
import torch

from napari_devosam.engine._fast import onednn_matmul as onednn


@pytest.mark.parametrize("m", [1, 16, 72])
def test_matmul_nt_equals_mm(m):
    g = torch.Generator().manual_seed(m)
    a, x = torch.randn(m, 256, generator=g), torch.randn(4096, 256, generator=g)
    add = torch.randn(m, 4096, generator=g)
    with torch.inference_mode():
        torch.testing.assert_close(onednn.matmul_nt(a, x), a @ x.t(), rtol=1e-4, atol=1e-4)
        got = onednn.matmul_nt(a, x, add=add)
        torch.testing.assert_close(got, a @ x.t() + add, rtol=1e-4, atol=1e-4)
        # a strided right operand: probabilities (m, hw) @ x (hw, 256)
        p = torch.softmax(add, -1)
        torch.testing.assert_close(onednn.matmul_nt(p, x.t()), p @ x, rtol=1e-4, atol=1e-5)
    assert got.data_ptr() != add.data_ptr()  # a fresh result, never the addend


def test_other_dtypes_take_the_torch_path():
    a, x = torch.randn(3, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    add = torch.randn(3, 5, dtype=torch.float64)
    assert not onednn.usable(a, x)
    torch.testing.assert_close(onednn.matmul_nt(a, x, add=add), a @ x.t() + add)


def test_cpu_float32_uses_onednn_where_built_in():
    t = torch.zeros(2, 2)
    assert onednn.usable(t) == torch.backends.mkldnn.is_available()
