"""SAM's mask decoder for B prompts on one image, with gradients, at a fraction of the work.

``decode_fast`` has the signature and the results of ``tokens.decode`` (the stock
``PromptEncoder`` + ``MaskDecoder.predict_masks``), outputs and gradients equal to float
rounding (tests/finetune/test_finetune_fast_decoding.py), in plain differentiable torch ops.
The stock decoder repeats the image embedding for every prompt and projects all h*w image tokens in
every attention; with n prompt tokens (5 output tokens + the prompt's points) and ``heads``
heads, most of that is avoidable:

* Token -> image attention: the key projection folds into the queries,
  ``q . (W_k x + b_k) = (W_k^T q) . x + q . b_k``, and the value projection moves behind the
  softmax, ``softmax(s) (x W_v^T + b_v) = (softmax(s) x) W_v^T + b_v`` (rows sum to 1). The
  image tokens meet a ``(heads * n) x 256`` matrix instead of two ``256 x 128`` projections.
* Image -> token attention: the image queries' projection folds into the token keys, and the
  token values times the output projection form one ``(heads * n) x 256`` matrix, so the
  output is ``probs^T @ M + b_out`` without a per-token 128-wide value or a 128 x 256 product.
* Layer 0 without a mask prompt sees the same image side for every prompt (embedding +
  ``no_mask_embed``, and the positional encoding): its matrix products run once per image as
  one ``(B * heads * n) x 256 x hw`` product; with a mask prompt the per-prompt part enters
  as a rank-16 term (the mask branch ends in a 1x1 conv from 16 channels).
* The last token -> image attention runs only for the tokens that are read (IoU token and
  the wanted mask tokens), and only the wanted masks are formed.
* The upscaling head runs channels-last: each ``ConvTranspose2d(k=2, s=2)`` is one matmul.

Folding pays while ``heads * n`` is below the attention width (128 for the official models,
i.e. up to 15 prompt tokens); with more tokens the stock attention modules are used.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from napari_devosam.engine._fast.tokens import Prompts, sparse_embeddings


def _fold_pays(attn, n_tokens: int) -> bool:
    return attn.num_heads * n_tokens < attn.internal_dim


def _mm_image(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``a (B, m, C) @ x^T``: x (hw, C) shared by the batch (one big product) or (B, hw, C)."""
    return a @ (x.t() if x.dim() == 2 else x.transpose(1, 2))


class ImageSide:
    """Image tokens (hw, C) shared by all prompts plus an optional per-prompt rank-r part.

    ``tokens = base + g @ w.T + bias`` with ``g`` (B, hw, r), ``w`` (C, r), ``bias`` (C,);
    without ``g`` the tokens are ``base`` (+ ``bias`` if given) for every prompt.
    """

    def __init__(self, base, g=None, w=None, bias=None):
        self.base, self.g, self.w, self.bias = base, g, w, bias

    def scores(self, a: torch.Tensor) -> torch.Tensor:
        """``a (B, m, C)`` times the tokens^T: (B, m, hw)."""
        s = _mm_image(a, self.base)
        if self.bias is not None:
            s = s + (a @ self.bias)[..., None]
        if self.g is not None:
            s = s + (a @ self.w) @ self.g.transpose(1, 2)
        return s

    def weighted(self, p: torch.Tensor) -> torch.Tensor:
        """``p (B, m, hw)`` with rows summing to 1, times the tokens: (B, m, C)."""
        z = p @ self.base
        if self.g is not None:
            z = z + (p @ self.g) @ self.w.t()
        if self.bias is not None:
            z = z + self.bias
        return z

    def dense(self) -> torch.Tensor:
        """The tokens themselves: (hw, C) if shared, else (B, hw, C)."""
        x = self.base if self.bias is None else self.base + self.bias
        if self.g is not None:
            x = x + self.g @ self.w.t()
        return x


def _as_side(x) -> ImageSide:
    return x if isinstance(x, ImageSide) else ImageSide(x)


def tok_to_img(attn, q_tok: torch.Tensor, keys, values) -> torch.Tensor:
    """``attn(q=q_tok, k=keys, v=values)`` with keys/values (hw, C), (B, hw, C) or ImageSide.

    q_tok (B, n, C) -> (B, n, C).
    """
    b, n, c = q_tok.shape
    keys, values = _as_side(keys), _as_side(values)
    if not _fold_pays(attn, n):
        k, v = keys.dense(), values.dense()
        return attn(q=q_tok, k=k.expand(b, *k.shape[-2:]), v=v.expand(b, *v.shape[-2:]))
    h = attn.num_heads
    d = attn.internal_dim // h
    q = (F.linear(q_tok, attn.q_proj.weight, attn.q_proj.bias) * (1.0 / math.sqrt(d)))
    q = q.view(b, n, h, d)
    qk = torch.einsum("bnhd,hdc->bhnc", q, attn.k_proj.weight.view(h, d, c)).reshape(b, h * n, c)
    qb = torch.einsum("bnhd,hd->bhn", q, attn.k_proj.bias.view(h, d)).reshape(b, h * n, 1)
    p = torch.softmax(keys.scores(qk) + qb, dim=-1)  # (B, h*n, hw)
    z = values.weighted(p).view(b, h, n, c)
    o = torch.einsum("bhnc,hdc->bnhd", z, attn.v_proj.weight.view(h, d, c)).reshape(b, n, h * d)
    return F.linear(o + attn.v_proj.bias, attn.out_proj.weight, attn.out_proj.bias)


def img_to_tok(attn, queries, k_tok: torch.Tensor, v_tok: torch.Tensor,
               residual: torch.Tensor) -> torch.Tensor:
    """``residual + attn(q=queries, k=k_tok, v=v_tok)``: image queries (hw, C), (B, hw, C) or
    ImageSide attend to the tokens k_tok, v_tok (B, n, C); residual (hw, C) or (B, hw, C);
    returns (B, hw, C)."""
    b, n, c = k_tok.shape
    queries = _as_side(queries)
    if not _fold_pays(attn, n):
        x = queries.dense()
        return residual + attn(q=x.expand(b, *x.shape[-2:]), k=k_tok, v=v_tok)
    h = attn.num_heads
    d = attn.internal_dim // h
    k = (F.linear(k_tok, attn.k_proj.weight, attn.k_proj.bias) * (1.0 / math.sqrt(d)))
    k = k.view(b, n, h, d)
    a = torch.einsum("bnhd,hdc->bhnc", k, attn.q_proj.weight.view(h, d, c)).reshape(b, h * n, c)
    ab = torch.einsum("bnhd,hd->bhn", k, attn.q_proj.bias.view(h, d)).reshape(b, h * n, 1)
    s = queries.scores(a) + ab
    p = torch.softmax(s.view(b, h, n, -1), dim=2).view(b, h * n, -1)  # over the tokens
    v = F.linear(v_tok, attn.v_proj.weight, attn.v_proj.bias).view(b, n, h, d)
    m = torch.einsum("bnhd,chd->bhnc", v, attn.out_proj.weight.view(c, h, d)).reshape(b, h * n, c)
    # each image token's probabilities sum to 1 per head, so to ``heads`` over all rows of m:
    # the output bias rides along as bias / heads on every row
    m = m + attn.out_proj.bias / h
    return torch.baddbmm(residual, p.transpose(1, 2), m)


def _layer0_sides(sam, features: torch.Tensor, pos: torch.Tensor, mask_input):
    """Layer 0's keys (values of token -> image), keys + PE, and the dense keys for the
    residual, as ImageSides; shared by the batch without a mask prompt."""
    pe_enc = sam.prompt_encoder
    feats = features[0].flatten(1).t().contiguous()  # (hw, C)
    if mask_input is None:
        x = feats + pe_enc.no_mask_embed.weight[0]
        return ImageSide(x), ImageSide(x + pos), x
    conv = pe_enc.mask_downscaling[-1]  # 1x1 conv from 16 channels
    g = pe_enc.mask_downscaling[:-1](mask_input).flatten(2).transpose(1, 2)  # (B, hw, 16)
    w = conv.weight.flatten(1)
    keys = ImageSide(feats, g, w, conv.bias)
    return keys, ImageSide(feats + pos, g, w, conv.bias), keys.dense()


def _upscale(dec, x: torch.Tensor, hyper: torch.Tensor, grid) -> torch.Tensor:
    """``output_upscaling`` and the hypernetwork product on channels-last x (B, hw, C);
    hyper (B, M, c2) -> masks (B, M, 4h, 4w)."""
    ct1, ln, act1, ct2, act2 = dec.output_upscaling
    b, m = hyper.shape[:2]
    gh, gw = grid
    c1, c2 = ct1.out_channels, ct2.out_channels
    # ConvTranspose2d(k=2, s=2): columns (dy, dx, c_out)
    w1 = ct1.weight.permute(0, 2, 3, 1).reshape(ct1.in_channels, 4 * c1)
    y = torch.addmm(ct1.bias.repeat(4), x.reshape(-1, x.shape[-1]), w1).view(-1, c1)
    y = act1(F.layer_norm(y, (c1,), ln.weight, ln.bias, ln.eps))
    w2 = ct2.weight.permute(0, 2, 3, 1).reshape(c1, 4 * c2)
    y = act2(torch.addmm(ct2.bias.repeat(4), y, w2))  # rows (b, i, j, dy1, dx1)
    out = torch.bmm(y.view(b, -1, c2), hyper.transpose(1, 2))  # (B, hw*16, M)
    out = out.view(b, gh, gw, 2, 2, 2, 2, m).permute(0, 7, 1, 3, 5, 2, 4, 6)
    return out.reshape(b, m, 4 * gh, 4 * gw)


def decode_fast(sam, features: torch.Tensor, prompts: Prompts,
                mask_input: torch.Tensor | None = None,
                dense_pe: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-res logits ``(B, C, 4h, 4w)`` and predicted IoU ``(B, C)``, as ``tokens.decode``.

    ``features`` ``(1, 256, h, w)``; ``mask_input`` ``(B, 1, 4h, 4w)`` logits or None;
    ``dense_pe`` (``prompt_encoder.get_dense_pe()``) may be passed to avoid recomputing it.
    C = 3 with ``prompts.multimask`` else 1. Differentiable w.r.t. the mask decoder's and the
    prompt encoder's parameters.
    """
    pe_enc, dec = sam.prompt_encoder, sam.mask_decoder
    tr = dec.transformer
    if features.dim() != 4 or features.shape[0] != 1:
        raise ValueError(f"features must have shape (1, C, h, w), got {tuple(features.shape)}")
    sparse = sparse_embeddings(pe_enc, prompts.coords, prompts.labels)
    b = sparse.shape[0]
    out_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
    qpe = torch.cat([out_tokens.unsqueeze(0).expand(b, -1, -1), sparse], dim=1)  # (B, n, C)
    if dense_pe is None:
        dense_pe = pe_enc.get_dense_pe()
    pos = dense_pe[0].flatten(1).t().contiguous()  # (hw, C)
    grid = tuple(features.shape[-2:])

    values, keys_pe, x = _layer0_sides(sam, features, pos, mask_input)
    q = qpe
    for i, layer in enumerate(tr.layers):
        if layer.skip_first_layer_pe:
            q = layer.self_attn(q=q, k=q, v=q)
        else:
            qq = q + qpe
            q = q + layer.self_attn(q=qq, k=qq, v=q)
        q = layer.norm1(q)
        if i > 0:
            values, keys_pe = x, x + pos
        q = layer.norm2(q + tok_to_img(layer.cross_attn_token_to_image, q + qpe, keys_pe, values))
        q = layer.norm3(q + layer.mlp(q))
        x = layer.norm4(img_to_tok(layer.cross_attn_image_to_token, keys_pe, q + qpe, q, x))

    # the final attention, only for the tokens that are read: IoU token + wanted mask tokens
    keep = 1 + dec.num_mask_tokens if prompts.multimask else 2
    qf = q[:, :keep]
    att = tok_to_img(tr.final_attn_token_to_image, qf + qpe[:, :keep], x + pos, x)
    qf = tr.norm_final_attn(qf + att)

    iou = dec.iou_prediction_head(qf[:, 0])
    wanted = range(1, dec.num_mask_tokens) if prompts.multimask else range(1)
    iou = iou[:, wanted.start:wanted.stop]
    mlps = dec.output_hypernetworks_mlps
    hyper = torch.stack([mlps[k](qf[:, 1 + k]) for k in wanted], dim=1)  # (B, C, c2)
    return _upscale(dec, x, hyper, grid), iou
