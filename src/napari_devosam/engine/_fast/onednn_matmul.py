"""``a @ w.T`` through oneDNN on a CPU, for the fast decoder's attention products (private).

The folded attention multiplies a few dozen rows (heads x prompt tokens) with the 4096 image
tokens. For that shape MKL's GEMM reaches ~110 GFLOP/s on this project's 2-core Zen 4 VM,
oneDNN's matmul ~180 (it uses AVX-512 on AMD CPUs, MKL does not); the ``add`` is fused into
the same pass. Results equal ``torch.mm`` to float rounding. Elsewhere (other devices, builds
without oneDNN) the plain torch ops run.

oneDNN returns fresh tensors; callers that run every click keep them in their
:class:`~.workspace.Workspace` (``keep``/``release``) so that the memory is
recycled instead of faulted in.
"""

from __future__ import annotations

import torch


def usable(*tensors: torch.Tensor) -> bool:
    """Whether oneDNN runs for these operands (CPU float32, a build with oneDNN): the test
    behind every oneDNN path of the decoder."""
    return torch.backends.mkldnn.is_available() and all(
        t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors
    )


def matmul_nt(a: torch.Tensor, w: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
    """``a (m, k) @ w (n, k).T`` (``+ add (m, n)``) -> fresh (m, n). ``w`` may be a strided
    view (e.g. ``x.t()`` for ``a @ x``)."""
    if usable(a, w):
        if add is None:
            return torch.ops.mkldnn._linear_pointwise(a, w, None, "none", [], "")
        return torch.ops.mkldnn._linear_pointwise.binary(a, add.contiguous(), w, None, "add")
    out = a @ w.t()
    return out if add is None else out.add_(add)
