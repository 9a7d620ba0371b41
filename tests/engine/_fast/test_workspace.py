"""The fast decoder's scratch buffers and the ops that write into them."""

import torch
import torch.nn.functional as F

from napari_devosam.engine._fast.workspace import (
    LN_CHUNK_ROWS,
    Workspace,
    layer_norm_into,
    softmax_into,
)


def _ln(c, seed=0):
    torch.manual_seed(seed)
    ln = torch.nn.LayerNorm(c, eps=1e-6)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.normal_()
    return ln


def test_layer_norm_into_equals_layer_norm_across_row_blocks():
    for shape in [(1, 2 * LN_CHUNK_ROWS + 37, 256), (2, 1000, 64), (5, 256)]:
        c = shape[-1]
        ln = _ln(c)
        y = torch.randn(*shape) * 3 + 1
        ws = Workspace()
        with torch.inference_mode():
            want, want_mean, want_rstd = torch.native_layer_norm(y, [c], ln.weight, ln.bias, ln.eps)
            scratch = y.clone()
            out, mean, rstd = layer_norm_into(ws, "x", scratch, ln)
        torch.testing.assert_close(out, F.layer_norm(y, [c], ln.weight, ln.bias, ln.eps))
        torch.testing.assert_close(out, want)
        torch.testing.assert_close(mean, want_mean)
        torch.testing.assert_close(rstd, want_rstd)
        torch.testing.assert_close(scratch, (y - want_mean) * want_rstd)  # documented scratch use


def test_outputs_are_reused_workspace_buffers():
    ws = Workspace()
    ln = _ln(64)
    y = torch.randn(300, 64)
    with torch.inference_mode():
        first = layer_norm_into(ws, "x", y.clone(), ln)[0]
        second = layer_norm_into(ws, "x", y * 2, ln)[0]
        other = layer_norm_into(ws, "z", y.clone(), ln)[0]
    assert first.data_ptr() == second.data_ptr() != other.data_ptr()


def test_softmax_into_and_buffer_bound():
    ws = Workspace()
    x = torch.randn(3, 7, 50)
    torch.testing.assert_close(softmax_into(ws, "p", x, -2), torch.softmax(x, -2))
    for i in range(Workspace.max_buffers + 1):  # distinct shapes: the cache is bounded
        ws.get("b", (i + 1,), x)
    assert len(ws._bufs) <= Workspace.max_buffers


def test_kept_tensors_live_until_released_and_are_bounded():
    ws = Workspace()
    t = torch.ones(4)
    assert ws.keep("k", t) is t
    assert ws._kept["k"] is t
    ws.release("k")
    ws.release("k")  # releasing twice (or something never kept) is fine
    assert "k" not in ws._kept
    for i in range(Workspace.max_buffers + 1):
        ws.keep(f"k{i}", t)
    assert len(ws._kept) <= Workspace.max_buffers
    ws.clear()
    assert not ws._kept
