"""ConvTranspose #1 of SAM's mask head carried through the decoder's layers (private).

The first ``ConvTranspose2d`` of ``output_upscaling`` is linear, and each two-way layer ends
in ``norm4``, a LayerNorm: per image token an affine map given the token's mean and rstd. So
the product of the final image tokens with the ConvTranspose (``up1_w``, 256 x 4*c1) can be
assembled without ever multiplying the (hw, 256) tokens by it. With ``H_l`` = ``up1_w`` scaled
by the norm4 gains of layers l.., and layer l's output ``x_l = rstd_l * (y_l - mean_l) * gamma_l
+ beta_l`` where ``y_l = x_(l-1) + probs_l^T @ m_l`` (the folded image->token attention),

    x_L @ up1_w + b = S * (x_0 @ H_0 + sum_l (P_l / S_(l-1))^T @ M_l) + up_last

with ``S_l = rstd_0 * ... * rstd_l`` per token, ``P_l = [probs_l; mean_l; 1]`` (a few rows per
token) and ``M_l = [m_l @ H_l; -colsum(H_l); beta_(l-1) @ H_l]``. ``x_0 @ H_0`` is cached per
image; a click adds one (hw x K) @ (K x 4*c1) product, K = sum of the layers' rows, and one
scaling pass. Deferring the rstd scaling to the end saves a pass over the (hw, 4*c1) result per
layer.
"""

from __future__ import annotations

import torch


class UpconvCarry:
    """Collects each layer's low-rank terms; ``result`` forms the ConvTranspose #1 output.

    ``base`` is the image's cached ``x0 @ H_0`` (hw, C'). Invalid (``result`` None) as soon as
    one layer did not fold its attention (its update is then not low rank).
    """

    def __init__(self, base: torch.Tensor):
        self.base = base
        self.valid = True
        self._cols: list[torch.Tensor] = []
        self._rows: list[torch.Tensor] = []
        self._scale: torch.Tensor | None = None  # S_(l-1), (B, hw, 1)

    def add_layer(self, ws, i, w, fold, mean, rstd, extra=None) -> None:
        """Layer ``i``'s norm4 terms.

        ``fold = (probs (B, hn, hw), m (B, hn, 256))`` from the folded attention or None;
        ``mean``/``rstd`` (B, hw, 1) the layer's norm4 statistics; ``extra = (gT (B, r, hw),
        wr (r, C'), br (C',))`` a rank-r term on the layer's input (a mask prompt, layer 0).
        """
        if not self.valid or fold is None:
            self.valid = False
            return
        p, m = fold
        b, _, hw = p.shape
        ones = torch.ones(b, 1, hw, dtype=p.dtype, device=p.device)
        const = w.up_const[i].expand(b, 1, -1)
        cols = [p, mean.transpose(1, 2), ones]
        rows = [m @ w.up_h[i], -w.up_hsum[i].expand(b, 1, -1), const]
        if extra is not None:
            gt, wr, br = extra
            cols.append(gt)
            rows = [*rows[:2], const + br, wr.expand(b, -1, -1)]
        k = sum(c.shape[1] for c in cols)
        # own buffer per layer: probs' workspace buffer is reused by later layers
        pa = torch.cat(cols, dim=1, out=ws.get(f"carry.p{i}", (b, k, hw), p))
        if self._scale is not None:
            pa.div_(self._scale.transpose(1, 2))
            self._scale = self._scale * rstd
        else:
            self._scale = rstd.clone()
        self._cols.append(pa)
        self._rows.append(torch.cat(rows, dim=1))

    def result(self, ws, up_last: torch.Tensor, out_name: str = "carry.out") -> torch.Tensor | None:
        """(B, hw, C') = final tokens @ up1_w + up1_b (in workspace buffer ``out_name``), or None
        if a layer did not fold."""
        if not self.valid or not self._cols:
            return None
        cols, rows = self._cols, self._rows
        b, _, hw = cols[0].shape
        if len(cols) > 1:
            k = sum(c.shape[1] for c in cols)
            pa = torch.cat(cols, dim=1, out=ws.get("carry.p", (b, k, hw), cols[0]))
        else:
            pa = cols[0]
        ma = torch.cat(rows, dim=1)
        out = ws.get(out_name, (b, hw, ma.shape[-1]), pa)
        out = torch.baddbmm(self.base, pa.transpose(1, 2), ma, out=out)
        return torch.addcmul(up_last, out, self._scale, out=out)
