"""Attention between prompt tokens and image tokens for the fast SAM decoder (private).

Variants of ``segment_anything``'s ``Attention`` that give the same result with less work when
one side is a handful of prompt tokens: "cached" takes image-side projections computed once per
image, "folded" multiplies the prompt side's projections into the weights so the image tokens
meet a ``256 x (heads * n)`` matrix instead of being projected (see ``kernels``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from napari_devosam.engine._fast import onednn_matmul as onednn
from napari_devosam.engine._fast.workspace import softmax_into


def _heads(attn) -> tuple[int, int]:
    h = attn.num_heads
    return h, attn.internal_dim // h


def _fold_pays(attn, n_tokens: int) -> bool:
    """Folding costs ~heads*n per image token, projecting costs ~internal_dim."""
    return attn.num_heads * n_tokens < attn.internal_dim


def _split(x: torch.Tensor, attn) -> torch.Tensor:
    """(..., m, heads*d) -> (..., heads, m, d) contiguous."""
    h, d = _heads(attn)
    return x.unflatten(-1, (h, d)).transpose(-3, -2).contiguous()


def _add_scores(ws, name, s, a, x):
    """``s (B, m, hw) + a (B, m, C) @ x (B, hw, C).mT``: in place, or for one prompt on a CPU
    a fresh oneDNN result kept in the workspace, one per size (see _onednn_matmul)."""
    if s.shape[0] == 1 and onednn.usable(s, a, x):
        key = f"{name}.nt{s.shape[1]}"
        ws.release(key)  # the previous result of this size: its memory comes straight back
        return ws.keep(key, onednn.matmul_nt(a[0], x[0], add=s[0]))[None]
    return s.baddbmm_(a, x.transpose(1, 2))


# ---- attention variants ------------------------------------------------------------------


def _tok_to_img_cached(ws, attn, q_tok, k, v, mask=None):
    """Tokens attend to image keys/values already projected: k, v (..., heads, hw, d).

    ``mask = (g1 (B, r + 1, hw), wk (h*d, r + 1), wv (h*d, r + 1))`` adds rank-r terms to the
    keys (``g1.mT @ wk.T``) and values (``g1.mT @ wv.T``) without forming them; g1's last row is
    ones, so the last columns of wk, wv are biases (a key bias only shifts softmax rows).
    """
    h, d = _heads(attn)
    q = _split(F.linear(q_tok, attn.q_proj.weight, attn.q_proj.bias), attn)  # (B, h, n, d)
    q = q * (1.0 / math.sqrt(d))
    b, _, n, _ = q.shape
    hw = k.shape[-2]
    # scores in the workspace: fresh MiB-sized tensors can page-fault (see Workspace)
    s = torch.matmul(q, k.transpose(-1, -2), out=ws.get("t2i0.s", (b, h, n, hw), q))
    if mask is not None:
        g1, wk, wv = mask
        s.view(b, h * n, hw).baddbmm_((q @ wk.view(h, d, -1)).flatten(1, 2), g1)
    p = softmax_into(ws, "t2i0.p", s, -1)
    o = p @ v  # (B, h, n, d)
    if mask is not None:  # probabilities sum to 1: the ones row of g1 adds the value bias
        pg = torch.bmm(p.flatten(1, 2), g1.transpose(1, 2)).view(*p.shape[:3], -1)  # (B,h,n,r)
        o = o + pg @ wv.view(h, d, -1).transpose(-1, -2)
    return F.linear(o.transpose(1, 2).flatten(2), attn.out_proj.weight, attn.out_proj.bias)


def _tok_to_img_folded(ws, attn, q_tok, x, pe_k, name="t2i"):
    """Tokens attend to image tokens x (B, hw, C): keys x + PE, values x.

    ``pe_k`` (h, hw, d) is the PE's key projection (once per model), so the PE's share of the
    scores is a per-head product with the d-dim queries and x + PE is never formed. ``name``:
    prefix of the workspace buffers (one per call site).
    """
    h, d = _heads(attn)
    b, n, c = q_tok.shape
    hw = x.shape[1]
    q = F.linear(q_tok, attn.q_proj.weight, attn.q_proj.bias) * (1.0 / math.sqrt(d))
    q = q.view(b, n, h, d)
    s = torch.matmul(
        q.transpose(1, 2), pe_k.transpose(-1, -2), out=ws.get(name + ".s", (b, h, n, hw), x)
    )
    wk = attn.k_proj.weight.view(h, d, c)
    qk = torch.einsum("bnhd,hdc->bhnc", q, wk).reshape(b, h * n, c)
    s = _add_scores(ws, name + ".s", s.view(b, h * n, hw), qk, x)
    p = softmax_into(ws, name + ".p", s, -1)
    if b == 1 and onednn.usable(p, x):
        z = onednn.matmul_nt(p[0], x[0].t()).view(b, h, n, c)
    else:
        z = (p @ x).view(b, h, n, c)
    wv = attn.v_proj.weight.view(h, d, c)
    o = torch.einsum("bhnc,hdc->bnhd", z, wv).reshape(b, n, h * d) + attn.v_proj.bias
    return F.linear(o, attn.out_proj.weight, attn.out_proj.bias)


def _img_to_tok_values(
    ws, attn, v_tok, probs, residual, inplace=False, terms=None, out_name="i2t.o"
):
    """probs (B, h, n, hw) -> ``residual`` (B|1, hw, C) + attention output incl. out_proj.

    Folded when it pays: returns ``(y, fold)`` with ``fold = (probs (B, h*n, hw), m (B, h*n,
    C))`` and ``y = residual + probs.mT @ m``; out_proj's bias is inside ``m`` (as bias / heads
    on every row: each head's probabilities over the tokens sum to 1). Otherwise ``fold`` is
    None. ``inplace``: ``residual`` (B, hw, C) may be overwritten (saves a copy). ``terms =
    (cols (B, r, hw), rows (B, r, C))`` adds ``cols.mT @ rows`` to y (in the same product).
    ``out_name``: the workspace buffer for y when not ``inplace``.
    """
    h, d = _heads(attn)
    b, n, c = v_tok.shape
    hw = probs.shape[-1]
    v = F.linear(v_tok, attn.v_proj.weight, attn.v_proj.bias).view(b, n, h, d)
    if _fold_pays(attn, n):
        wo = attn.out_proj.weight.view(c, h, d)
        m = torch.einsum("bnhd,chd->bhnc", v, wo).add_(attn.out_proj.bias / h)
        m = m.reshape(b, h * n, c)
        p = pa = probs.flatten(1, 2)
        ma = m
        if terms is not None:
            shape = (b, h * n + terms[0].shape[1], hw)
            pa = torch.cat([p, terms[0]], dim=1, out=ws.get("i2t.pa", shape, p))
            ma = torch.cat([m, terms[1]], dim=1)
        if inplace:
            return residual.baddbmm_(pa.transpose(1, 2), ma), (p, m)
        out = ws.get(out_name, (b, hw, c), v_tok)
        return torch.baddbmm(residual, pa.transpose(1, 2), ma, out=out), (p, m)
    out = ws.get(out_name, (b, hw, c), v_tok)
    o = probs.transpose(-1, -2) @ v.transpose(1, 2)  # (B, h, hw, d)
    out = torch.addmm(
        attn.out_proj.bias, o.transpose(1, 2).reshape(b * hw, h * d), attn.out_proj.weight.t(),
        out=out.view(b * hw, c),
    ).view(b, hw, c)  # fmt: skip
    out.add_(residual)
    if terms is not None:
        out.baddbmm_(terms[0].transpose(1, 2), terms[1])
    return out, None


def _img_to_tok_cached(
    ws, attn, q_img, k_tok, v_tok, residual, mask=None, terms=None, out_name="i2t.o"
):
    """Image tokens (queries already projected, (B|1, h, hw, d)) attend to the prompt tokens;
    returns ``residual`` + the attention output as :func:`_img_to_tok_values`.

    ``mask = (g1 (B, r + 1, hw), wq (h*d, r + 1))`` adds ``g1.mT @ wq.T`` (the last row of g1 is
    ones: a bias) to the queries without forming them. ``terms``: extra low-rank terms of y
    (:func:`_img_to_tok_values`).
    """
    h, d = _heads(attn)
    k = _split(F.linear(k_tok, attn.k_proj.weight, attn.k_proj.bias), attn)  # (B, h, n, d)
    k = k * (1.0 / math.sqrt(d))
    b, _, n, _ = k.shape
    hw = q_img.shape[-2]
    s = torch.matmul(k, q_img.transpose(-1, -2), out=ws.get("i2t0.s", (b, h, n, hw), k))
    if mask is not None:
        g1, wq = mask
        s.view(b, h * n, hw).baddbmm_((k @ wq.view(h, d, -1)).flatten(1, 2), g1)
    # softmax over the few tokens with hw innermost: far faster than a short last dim
    probs = softmax_into(ws, "i2t.p0", s, -2)
    return _img_to_tok_values(ws, attn, v_tok, probs, residual, terms=terms, out_name=out_name)


def _img_to_tok_folded(ws, attn, x, pe_q, k_tok, v_tok):
    """Image tokens x (B, hw, C) (queries x + PE) attend to the prompt tokens; returns x
    (overwritten) + the attention output as :func:`_img_to_tok_values`.

    ``pe_q`` (h, hw, d) is the PE's query projection with the query bias (once per model).
    """
    h, d = _heads(attn)
    b, n, c = k_tok.shape
    hw = x.shape[1]
    k = F.linear(k_tok, attn.k_proj.weight, attn.k_proj.bias).view(b, n, h, d)
    k = k * (1.0 / math.sqrt(d))
    a = torch.einsum("hdc,bnhd->bhnc", attn.q_proj.weight.view(h, d, c), k).reshape(b, h * n, c)
    s = torch.matmul(
        k.transpose(1, 2), pe_q.transpose(-1, -2), out=ws.get("i2t.s", (b, h, n, hw), x)
    )
    s = _add_scores(ws, "i2t.s", s.view(b, h * n, hw), a, x).view(b, h, n, hw)
    probs = softmax_into(ws, "i2t.p", s, -2)
    return _img_to_tok_values(ws, attn, v_tok, probs, x, inplace=True)
