"""Fast CPU kernels for SAM's mask decoder, algebraically equal to ``segment_anything``'s.

Private module behind :class:`.decoder.FastDecoder`. The decoder's work is
dominated by projections of the 4096 image tokens; with a handful of prompt tokens most of
them can be avoided:

* Layer 0 sees the image embedding plus a dense prompt embedding that is the constant
  ``no_mask_embed`` unless a mask is given, so its image-side projections (token->image keys and
  values, image->token queries) depend only on the image: :class:`ImageState` computes them once
  per image. A mask prompt enters them as a rank-16 correction (the mask branch ends in a 1x1
  conv from 16 channels, which folds into the projection weights).
* Attention between ``n`` prompt tokens and the image is "folded" when ``n * heads`` is below
  the attention width: instead of projecting every image token, the prompt side's query (or key,
  value, output) projections are multiplied into the weights, so the image tokens only meet a
  ``256 x (heads * n)`` matrix. Softmax is unchanged: a key bias adds a constant per query row,
  and attention rows sum to 1 so the value bias passes through (``_decoder_attention``). Keys
  and queries of layers 1.. are image tokens + PE: the PE's share of the scores is a per-head
  product with the PE's projections, made once per model (``DecoderWeights.pe_*``).
* The first ``ConvTranspose2d`` of the mask head is linear and each layer's ``norm4`` is affine
  per token, so its product with the final image tokens is carried through the layers as the
  cached ``x0 @ H_0`` plus low-rank updates from the folded attention (``_decoder_carry``).
* The last token->image attention only runs for the tokens that are read (IoU + wanted masks).
* ``ConvTranspose2d(k=2, s=2)`` is a matmul on channels-last tokens; only the wanted masks'
  hypernetwork products are formed (a single-mask click forms one) (``_mask_head``).
* The token MLPs use oneDNN's pre-packed weights (``_packed_mlp``); a mask prompt's features
  are two patch matmuls with centred convs (``_mask_prompt``).
* Big temporaries live in a reused workspace (``_workspace``: fresh pages cost more than the
  math).

Upsampling to the plane is in ``_mask_upscale``.

All tensors are float32; results match the stock modules to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from napari_devosam.engine._fast.attention import (
    _fold_pays,
    _img_to_tok_cached,
    _img_to_tok_folded,
    _split,
    _tok_to_img_cached,
    _tok_to_img_folded,
)
from napari_devosam.engine._fast.carry import UpconvCarry
from napari_devosam.engine._fast.mask_head import MaskHead
from napari_devosam.engine._fast.mask_prompt import MaskFeatures
from napari_devosam.engine._fast.packed_mlp import PackedMLP
from napari_devosam.engine._fast.workspace import SLOTS, Workspace, layer_norm_into


@dataclass
class DecoderWeights:
    """Tensors derived from the decoder/prompt-encoder weights; rebuild after a weight change."""

    image_pe: torch.Tensor  # (hw, 256) dense positional encoding, channels last
    no_mask: torch.Tensor  # (256,) no_mask_embed
    mask_w: torch.Tensor  # (256, 16) last 1x1 conv of the mask branch
    mask_b: torch.Tensor  # (256,)
    up1_w: torch.Tensor  # (256, 4 * c1) ConvTranspose2d #1 as a matmul, columns (dy, dx, c)
    up1_b: torch.Tensor  # (4 * c1,)
    head: MaskHead  # the rest of output_upscaling + the hypernetwork product
    grid: tuple[int, int]
    # ConvTranspose #1 pushed back through the layers' norm4 (see _decoder_carry)
    up_h: list[torch.Tensor]  # H_l = diag(gamma_l ... gamma_last) up1_w, (256, 4 * c1)
    up_hsum: list[torch.Tensor]  # column sums of H_l
    up_const: list[torch.Tensor]  # beta_(l-1) @ H_l (0 for l = 0)
    up_last: torch.Tensor  # beta_last @ up1_w + up1_b
    # a mask prompt adds g @ mask_w.T + mask_b - no_mask to layer 0's keys (g: 16 channels);
    # its effect on layer 0's projections, as (out, 17) maps of [g; 1] (bias in the last
    # column; the key bias only shifts softmax rows), and on ConvTranspose #1:
    mask_k: torch.Tensor
    mask_v: torch.Tensor
    mask_q: torch.Tensor
    mask_up: torch.Tensor  # (16, 4 * c1)
    mask_upb: torch.Tensor  # (4 * c1,)
    # the PE's share of the image-side keys / queries of layers 1.. and the final attention,
    # each (heads, hw, d) (None for layer 0, whose projections are cached per image)
    pe_t2i: list
    pe_i2t: list
    pe_final: torch.Tensor
    mlps: list  # PackedMLP per layer
    mask_features: MaskFeatures  # mask_downscaling[:-1]

    @classmethod
    def from_sam(cls, sam) -> DecoderWeights:
        pe_enc = sam.prompt_encoder
        dec = sam.mask_decoder
        with torch.inference_mode():
            pe = pe_enc.get_dense_pe()[0]  # (256, h, w)
            grid = (pe.shape[1], pe.shape[2])
            conv = pe_enc.mask_downscaling[-1]
            ct1 = dec.output_upscaling[0]
            c1 = ct1.out_channels
            up1_w = ct1.weight.permute(0, 2, 3, 1).reshape(ct1.in_channels, 4 * c1).contiguous()
            up1_b = ct1.bias.repeat(4)
            norms = [layer.norm4 for layer in dec.transformer.layers]
            hs = [up1_w]
            for ln in reversed(norms):
                hs.insert(0, ln.weight[:, None] * hs[0])
            hs = hs[:-1]  # H_0 .. H_last
            # out_proj biases reach the carry through the folded values (see _img_to_tok_values)
            const = [torch.zeros_like(hs[0][0])]
            const += [norms[i - 1].bias @ hs[i] for i in range(1, len(hs))]
            mask_w = conv.weight[:, :, 0, 0].clone()
            t2i0 = dec.transformer.layers[0].cross_attn_token_to_image
            i2t0 = dec.transformer.layers[0].cross_attn_image_to_token
            delta_b = conv.bias - pe_enc.no_mask_embed.weight[0]
            return cls(
                image_pe=pe.flatten(1).t().contiguous(),
                no_mask=pe_enc.no_mask_embed.weight[0].clone(),
                mask_w=mask_w,
                mask_b=conv.bias.clone(),
                up1_w=up1_w,
                up1_b=up1_b,
                head=MaskHead(dec, grid),
                grid=grid,
                up_h=hs,
                up_hsum=[h.sum(0) for h in hs],
                up_const=const,
                up_last=norms[-1].bias @ up1_w + up1_b,
                mask_k=_with_bias(t2i0.k_proj.weight @ mask_w, None),
                mask_v=_with_bias(t2i0.v_proj.weight @ mask_w, t2i0.v_proj.weight @ delta_b),
                mask_q=_with_bias(i2t0.q_proj.weight @ mask_w, i2t0.q_proj.weight @ delta_b),
                mask_up=mask_w.t() @ hs[0],
                mask_upb=delta_b @ hs[0],
                pe_t2i=[None] + [_pe_proj(pe, layer.cross_attn_token_to_image, "k_proj")
                                 for layer in dec.transformer.layers[1:]],
                pe_i2t=[None] + [_pe_proj(pe, layer.cross_attn_image_to_token, "q_proj")
                                 for layer in dec.transformer.layers[1:]],
                pe_final=_pe_proj(pe, dec.transformer.final_attn_token_to_image, "k_proj"),
                mlps=[PackedMLP(layer.mlp) for layer in dec.transformer.layers],
                mask_features=MaskFeatures(pe_enc),
            )  # fmt: skip


def _with_bias(w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """(out, r) map and (out,) bias -> (out, r + 1) map of [g; 1] (zero bias if None)."""
    b = torch.zeros_like(w[:, :1]) if b is None else b[:, None]
    return torch.cat([w, b], dim=1)


def _pe_proj(pe, attn, name: str) -> torch.Tensor:
    """(256, h, w) dense PE -> its projection by ``attn.<name>`` (with bias), (heads, hw, d)."""
    proj = getattr(attn, name)
    return _split(F.linear(pe.flatten(1).t(), proj.weight, proj.bias), attn)


class ImageState:
    """Prompt-independent part of the decoder for one image embedding (features (1, 256, h, w))."""

    def __init__(self, sam, weights: DecoderWeights, features: torch.Tensor):
        if features.dim() != 4 or features.shape[0] != 1:
            raise ValueError(f"features must have shape (1, C, h, w), got {tuple(features.shape)}.")
        if tuple(features.shape[2:]) != weights.grid:
            grid = tuple(features.shape[2:])
            raise ValueError(f"features grid {grid} does not match the model's {weights.grid}.")
        layer0 = sam.mask_decoder.transformer.layers[0]
        with torch.inference_mode():
            feats = features[0].flatten(1).t().float()  # (hw, 256)
            self.x0 = (feats + weights.no_mask).contiguous()  # layer-0 keys without a mask prompt
            xp = self.x0 + weights.image_pe
            t2i, i2t = layer0.cross_attn_token_to_image, layer0.cross_attn_image_to_token
            self.k0 = _split(F.linear(xp, t2i.k_proj.weight, t2i.k_proj.bias), t2i)
            self.v0 = _split(F.linear(self.x0, t2i.v_proj.weight, t2i.v_proj.bias), t2i)
            self.q0 = _split(F.linear(xp, i2t.q_proj.weight, i2t.q_proj.bias), i2t)
            self.c0 = self.x0 @ weights.up_h[0]  # (hw, 4 * c1), see _norm4


# ---- the decoder ----------------------------------------------------------------------------


def decode(sam, w: DecoderWeights, img: ImageState, sparse, mask_input, multimask, ws=None):
    """SAM's ``MaskDecoder`` for one image embedding and ``B`` prompts.

    ``sparse`` (B, n, 256) are the prompt encoder's sparse embeddings; ``mask_input``
    (B, 1, 4h, 4w) low-res logits or None; ``ws`` a :class:`Workspace` to reuse. Returns fresh
    low-res logits (B, C, 4h, 4w) and predicted IoU (B, C), C = 3 with ``multimask`` else 1: the
    masks ``MaskDecoder.forward`` returns.
    """
    ws = ws if ws is not None else Workspace()
    dec = sam.mask_decoder
    b = sparse.shape[0]
    out_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
    tokens = torch.cat([out_tokens.unsqueeze(0).expand(b, -1, -1), sparse], dim=1)
    mask_terms = _mask_terms(w, ws, mask_input, b)
    carry = UpconvCarry(img.c0)
    q, x = _first_layer(dec.transformer.layers[0], w, ws, img, tokens, mask_terms, carry)
    q, x = _later_layers(dec.transformer, w, ws, tokens, q, x, carry)
    return _outputs(dec, w, ws, tokens, q, x, carry, multimask)


def _mask_terms(w: DecoderWeights, ws, mask_input, b: int) -> dict:
    """The mask prompt's contributions as low-rank terms (empty without a mask prompt).

    The mask enters layer 0's keys through a 1x1 conv from 16 channels g: every effect of it
    is a rank-16 term, and none of the (hw, C) tensors is formed.
    """
    if mask_input is None:
        return {"t2i": None, "i2t": None, "extra": None, "residual": None}
    g = w.mask_features(mask_input, ws)  # (B, 16, hw)
    ones = torch.ones(b, 1, g.shape[-1], dtype=g.dtype, device=g.device)
    g1 = ws.get("mask.g1", (b, g.shape[1] + 1, g.shape[2]), g)
    g1 = torch.cat([g, ones], dim=1, out=g1)  # (B, 17, hw): [g; 1] carries the biases
    # the residual: keys + g @ mask_w.T + mask_b - no_mask
    mw = torch.cat([w.mask_w.t(), (w.mask_b - w.no_mask)[None]]).expand(b, -1, -1)
    return {"t2i": (g1, w.mask_k, w.mask_v), "i2t": (g1, w.mask_q),
            "extra": (g, w.mask_up, w.mask_upb), "residual": (g1, mw)}


def _first_layer(layer0, w: DecoderWeights, ws, img: ImageState, tokens, mask_terms, carry):
    """Two-way layer 0: its image-side projections come from the per-image cache."""
    qpe = tokens
    q = tokens
    if layer0.skip_first_layer_pe:
        q = layer0.self_attn(q=q, k=q, v=q)
    else:
        qq = q + qpe
        q = q + layer0.self_attn(q=qq, k=qq, v=q)
    q = layer0.norm1(q)
    t2i = _tok_to_img_cached(ws, layer0.cross_attn_token_to_image, q + qpe, img.k0, img.v0,
                             mask_terms["t2i"])
    q = layer0.norm2(q + t2i)
    q = layer0.norm3(q + w.mlps[0](q))
    y, fold = _img_to_tok_cached(
        ws, layer0.cross_attn_image_to_token, img.q0, q + qpe, q, img.x0, mask_terms["i2t"],
        mask_terms["residual"], out_name=SLOTS[0]
    )
    return q, _norm4(ws, layer0.norm4, y, fold, carry, w, 0, mask_terms["extra"])


def _later_layers(tr, w: DecoderWeights, ws, qpe, q, x, carry):
    """Two-way layers 1.., folded where folding pays for this number of tokens."""
    n = qpe.shape[1]
    pe = w.image_pe
    for i, layer in enumerate(tr.layers[1:], start=1):
        qq = q + qpe
        q = layer.norm1(q + layer.self_attn(q=qq, k=qq, v=q))
        t2i = layer.cross_attn_token_to_image
        if _fold_pays(t2i, n):
            q = layer.norm2(q + _tok_to_img_folded(ws, t2i, q + qpe, x, w.pe_t2i[i]))
        else:
            q = layer.norm2(q + t2i(q=q + qpe, k=x + pe, v=x))
        q = layer.norm3(q + w.mlps[i](q))
        i2t = layer.cross_attn_image_to_token
        if _fold_pays(i2t, n):
            y, fold = _img_to_tok_folded(ws, i2t, x, w.pe_i2t[i], q + qpe, q)  # x is overwritten
        else:
            y, fold = x + i2t(q=x + pe, k=q + qpe, v=q), None
        x = _norm4(ws, layer.norm4, y, fold, carry, w, i)
    return q, x


def _outputs(dec, w: DecoderWeights, ws, qpe, q, x, carry, multimask):
    """Final token->image attention (only for the tokens read), IoU head and mask head."""
    tr = dec.transformer
    keep = 1 + dec.num_mask_tokens if multimask else 2
    qf, qpef = q[:, :keep], qpe[:, :keep]
    fin = tr.final_attn_token_to_image
    if _fold_pays(fin, keep):
        att = _tok_to_img_folded(ws, fin, qf + qpef, x, w.pe_final, name="fin")
    else:
        att = fin(q=qf + qpef, k=x + w.image_pe, v=x)
    qf = tr.norm_final_attn(qf + att)

    iou = dec.iou_prediction_head(qf[:, 0])
    mlps = dec.output_hypernetworks_mlps
    idx = range(1, dec.num_mask_tokens) if multimask else range(1)
    iou = iou[:, 1:] if multimask else iou[:, :1]
    hyper = torch.stack([mlps[i](qf[:, 1 + i]) for i in idx], dim=1)  # (B, C, c2)
    x_slot = SLOTS[1 - (len(tr.layers) - 1) % 2]  # x is dead from here on: reuse its slot
    up1 = carry.result(ws, w.up_last, SLOTS[0] if x_slot == SLOTS[1] else SLOTS[1])
    if up1 is None:  # a layer did not fold: ConvTranspose #1 on the final tokens
        b = qf.shape[0]
        rows = x.shape[0] * x.shape[1]
        up1 = ws.get("up1", (rows, w.up1_w.shape[1]), x)
        up1 = torch.addmm(w.up1_b, x.reshape(rows, -1), w.up1_w, out=up1).view(b, -1, up1.shape[1])
    return w.head(ws, up1, hyper, ln_name=x_slot), iou


def _norm4(ws, ln, y, fold, carry: UpconvCarry, w: DecoderWeights, i: int, extra=None):
    """Layer i's norm4 on y = x + attention output; records the layer's low-rank terms in
    ``carry`` (see ``_decoder_carry``). Layer 0's y is in ``SLOTS[0]``, layer i's output goes
    to ``SLOTS[1 - i % 2]`` and becomes layer i+1's y (updated in place)."""
    x, mean, rstd = layer_norm_into(ws, SLOTS[1 - i % 2], y, ln)  # y is in the other slot
    carry.add_layer(ws, i, w, fold, mean, rstd, extra)
    return x
