"""SAM's mask head after the first ConvTranspose: LayerNorm, GELU, ConvTranspose #2, GELU and
the hypernetwork product, on channels-last tokens (private; see ``kernels``).

``ConvTranspose2d(k=2, s=2)`` is a matmul on channels-last tokens whose columns are the four
sub-pixels ``(dy, dx)`` times the output channels, so its output viewed as (4 * rows, c2) has
one sub-pixel per row: the hypernetwork product is a matrix-vector product per mask.

On a CPU with oneDNN, ConvTranspose #2 runs as a pre-packed linear with its bias and the exact
GELU fused (bit-identical to ``addmm`` + ``gelu`` here), on blocks of rows: oneDNN returns a
fresh tensor, and a 2 MiB block is recycled from block to block and from click to click (and
stays in cache for the hypernetwork product) where one 8 MiB result would fault in new pages
whenever the allocator has trimmed the heap. Everything else MiB-sized lives in the workspace.
"""

from __future__ import annotations

import torch

from napari_devosam.engine._fast import onednn_matmul as onednn
from napari_devosam.engine._fast.workspace import layer_norm_into

BLOCK_ROWS = 4096  # rows of (sub-pixel, c1) per fused ConvTranspose #2 call


def _exact_gelu(act) -> bool:
    return isinstance(act, torch.nn.GELU) and act.approximate == "none"


def _act_(act, x: torch.Tensor) -> torch.Tensor:
    """``act(x)``, in place for the exact GELU SAM uses."""
    if _exact_gelu(act):
        return torch._C._nn.gelu_(x)
    return x.copy_(act(x))


class MaskHead:
    """The part of ``MaskDecoder.output_upscaling`` after ConvTranspose #1, for one weight set."""

    def __init__(self, dec, grid: tuple[int, int]):
        ups = dec.output_upscaling
        self.norm, self.act1, ct2, self.act2 = ups[1], ups[2], ups[3], ups[4]
        self.grid = grid
        self.c1, self.c2 = ct2.in_channels, ct2.out_channels
        with torch.inference_mode():
            w2 = ct2.weight.permute(0, 2, 3, 1).reshape(self.c1, 4 * self.c2)  # cols (dy, dx, c)
            self.up2_w = w2.contiguous()
            self.up2_b = ct2.bias.repeat(4)
            self._packed = self._pack(w2.t().contiguous())

    def _pack(self, weight):
        """oneDNN's packed ConvTranspose #2 (fused bias + exact GELU), or None."""
        if not (onednn.usable(weight) and _exact_gelu(self.act2)):
            return None
        try:
            return torch.ops.mkldnn._reorder_linear_weight(weight, BLOCK_ROWS)
        except (RuntimeError, AttributeError):  # op missing in this torch build
            return None

    def __call__(self, ws, up1, hyper, ln_name: str = "up.ln") -> torch.Tensor:
        """``up1`` (B, h*w, 4*c1) ConvTranspose #1's output (bias included), ``hyper`` (B, C, c2)
        the hypernetwork outputs -> fresh low-res mask logits (B, C, 4h, 4w). ``ln_name``: the
        workspace buffer for the normalised ``up1``; ``up1`` is used as scratch."""
        b = up1.shape[0]
        gh, gw = self.grid
        c, c1, c2 = hyper.shape[1], self.c1, self.c2
        y = up1.reshape(-1, c1)  # rows (b, i, j, dy1, dx1)
        rows = y.shape[0]
        y = layer_norm_into(ws, ln_name, y, self.norm)[0]
        y = _act_(self.act1, y)
        per = rows // b
        # logits in sub-pixel order: (i, j, dy1, dx1, dy2, dx2) per mask
        m = ws.get("up.m", (b, c, 4 * per), y)
        if self._packed is not None and y.device.type == "cpu":
            linear = torch.ops.mkldnn._linear_pointwise
            for i in range(b):
                for j in range(0, per, BLOCK_ROWS):
                    k = min(j + BLOCK_ROWS, per)
                    # the previous block's (or click's) output is freed just before the call
                    # that needs the same amount: see Workspace.keep
                    ws.release("up.y2")
                    yb = y[i * per + j : i * per + k]
                    y2 = linear(yb, self._packed, self.up2_b, "gelu", [], "none")
                    _hyper_product(
                        ws.keep("up.y2", y2).view(-1, c2), hyper[i], m[i, :, 4 * j : 4 * k]
                    )
                    del y2
        else:
            y2 = torch.addmm(self.up2_b, y, self.up2_w, out=ws.get("up2", (rows, 4 * c2), y))
            y2 = _act_(self.act2, y2).view(b, -1, c2)  # rows (i, j, dy1, dx1, dy2, dx2)
            m = torch.bmm(hyper, y2.transpose(1, 2), out=m)
        # -> pixels (4i + 2dy1 + dy2, 4j + 2dx1 + dx2): a gather is ~2-3x faster than the
        # 6-d permute copy
        src = ws.get("up.order", (16 * gh * gw,), torch.empty(0, dtype=torch.long, device=y.device))
        if ws.get_tag("up.order") != (gh, gw):
            order = torch.arange(16 * gh * gw, device=y.device).view(gh, gw, 2, 2, 2, 2)
            src.copy_(order.permute(0, 2, 4, 1, 3, 5).reshape(-1))
            ws.set_tag("up.order", (gh, gw))
        return m.view(b * c, -1).index_select(1, src).view(b, c, 4 * gh, 4 * gw)


def _hyper_product(y2: torch.Tensor, hyper: torch.Tensor, out: torch.Tensor) -> None:
    """out (C, rows) = hyper (C, c2) @ y2 (rows, c2).T, one matrix-vector product per mask:
    MKL runs the same product as a GEMM with so few columns far slower (vit_b, one mask:
    1.15 ms against a block-diagonal (128, 4) matrix, 0.24 ms as ``mv``)."""
    for k in range(hyper.shape[0]):
        torch.mv(y2, hyper[k], out=out[k])
