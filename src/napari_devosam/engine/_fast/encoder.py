"""SAM's image encoder with its attention in PyTorch's fused scaled-dot-product kernels (private).

``segment_anything``'s ``Attention`` forms each head's whole (tokens x tokens) score matrix, adds
the decomposed relative-position bias and takes the softmax: in vit_b's global blocks that is
12 x 4096 x 4096 floats (805 MB) at least twice per image. ``F.scaled_dot_product_attention``
(flash attention on a CPU; flash / memory-efficient kernels on CUDA) never forms it, but a bias
of that shape would have to be materialised as a mask. The bias is a sum of a term per (query,
key row) and a term per (query, key column), so it folds into the dot product:

    q.k * scale + rel_h[q, kh] + rel_w[q, kw] = [q * scale, rel_h[q], rel_w[q]] . [k, e_kh, e_kw]

with ``e_kh``, ``e_kw`` the one-hot vectors of the key's row and column: queries gain h + w
columns, keys the matching one-hot columns, and SDPA runs with scale 1. Values are zero-padded to
the same width (the fused kernels want one head size; padded to a multiple of 8 for CUDA's).

Measured on this project's 2-core CPU, vit_b, one 1024 x 1024 input: 14.3-16.7 s -> 8.4-8.6 s,
peak RSS 3.6 -> 1.5 GiB, features equal to the stock encoder's to ~1e-6 relative.

The widening costs FLOPs: a head of 24 channels over a 32 x 32 grid becomes 88 wide. On a CPU,
global blocks (``EXPLICIT_FROM`` tokens or more) therefore form the scores explicitly, a band of
queries at a time (``_banded``): the bias of a band is ``CHUNK`` floats at most, so memory stays
bounded as with SDPA. One torch thread, same run (benchmarks/bench_views.py's CPU): a global
block of the bundled models 11.3 -> 9.7 ms, of vit_b 1.06 -> 0.73 s; windowed blocks stay on
SDPA, which is faster there (window 8: 1.4 against 1.8 ms; vit_b's 14: 78 against 98 ms).
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F

EXPLICIT_FROM = 512  # tokens: a CPU attention over at least this many forms scores in bands
CHUNK = 1 << 20  # floats of scores (and bias) in one band of ``_banded``


@contextmanager
def fused_attention(encoder):
    """Within the ``with`` block, the attention modules of ``encoder`` (a ``segment_anything``
    ``ImageEncoderViT``) run :func:`attention`; the model is unchanged afterwards.

    Only the instances' ``forward`` is swapped, so calling ``encoder(x)`` inside keeps the
    module's hooks and anything else wrapped around it. Other threads calling the same encoder
    meanwhile get the same result through the same kernels; overlapping blocks (two embedding
    workers) leave the model unchanged too: our own swap is never what gets restored.
    """
    mods = [blk.attn for blk in encoder.blocks]
    saved = [_foreign_forward(m) for m in mods]
    for m in mods:
        m.forward = partial(attention, m)
    try:
        yield encoder
    finally:
        for m, f in zip(mods, saved, strict=True):
            if f is not None:
                m.forward = f
            elif "forward" in m.__dict__:
                del m.forward


def _foreign_forward(mod):
    """The instance-level ``forward`` someone else set on ``mod`` (None: the class's, or ours)."""
    f = mod.__dict__.get("forward")
    return None if isinstance(f, partial) and f.func is attention else f


def attention(attn, x: torch.Tensor) -> torch.Tensor:
    """``segment_anything``'s encoder ``Attention.forward`` on x (B, h, w, C) through SDPA."""
    b, h, w, _ = x.shape
    heads = attn.num_heads
    qkv = attn.qkv(x).reshape(b, h * w, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # (B, heads, h*w, d)
    d = q.shape[-1]
    if not attn.use_rel_pos:
        out = F.scaled_dot_product_attention(q, k, v, scale=attn.scale)
    elif x.device.type == "cpu" and h * w >= EXPLICIT_FROM:
        out = _banded(attn, q, k, v, h, w)
    else:
        q, k, v = _fold_rel_pos(attn, q, k, v, h, w)
        out = F.scaled_dot_product_attention(q, k, v, scale=1.0)[..., :d]
    out = out.reshape(b, heads, h, w, d).permute(0, 2, 3, 1, 4).reshape(b, h, w, heads * d)
    return attn.proj(out)


def _fold_rel_pos(attn, q, k, v, h: int, w: int):
    """Queries, keys and values widened so that ``q.k`` is the scaled score plus the
    decomposed relative-position bias (see the module docstring)."""
    from segment_anything.modeling.image_encoder import get_rel_pos

    b, heads, n, d = q.shape
    rh = get_rel_pos(h, h, attn.rel_pos_h).to(q.dtype)  # (h, h, d): query row, key row
    rw = get_rel_pos(w, w, attn.rel_pos_w).to(q.dtype)
    qg = q.reshape(b, heads, h, w, d)
    rel_h = torch.einsum("bnhwc,hkc->bnhwk", qg, rh).reshape(b, heads, n, h)
    rel_w = torch.einsum("bnhwc,wkc->bnhwk", qg, rw).reshape(b, heads, n, w)
    eye_h = torch.eye(h, dtype=q.dtype, device=q.device)
    eye_w = torch.eye(w, dtype=q.dtype, device=q.device)
    onehot = torch.cat([eye_h.repeat_interleave(w, 0), eye_w.repeat(h, 1)], dim=1)  # (n, h+w)
    width = d + h + w
    pad = -width % 8
    qa = torch.cat([q * attn.scale, rel_h, rel_w], dim=-1)
    ka = torch.cat([k, onehot.expand(b, heads, n, h + w)], dim=-1)
    return F.pad(qa, (0, pad)), F.pad(ka, (0, pad)), F.pad(v, (0, width + pad - d))


def _banded(attn, q, k, v, h: int, w: int) -> torch.Tensor:
    """Attention with the decomposed relative-position bias, the scores formed explicitly for
    a band of queries at a time (at most ``CHUNK`` floats): ``softmax(q.k * scale + rel_h +
    rel_w) v`` as ``segment_anything``'s ``Attention``. Shapes ``(B, heads, h*w, d)`` in and
    out."""
    from segment_anything.modeling.image_encoder import get_rel_pos

    b, heads, n, d = q.shape
    bh = b * heads
    rh = get_rel_pos(h, h, attn.rel_pos_h).to(q.dtype)
    rw = get_rel_pos(w, w, attn.rel_pos_w).to(q.dtype)
    qg = q.reshape(bh, h, w, d)
    rel_h = torch.einsum("bhwc,hkc->bhwk", qg, rh).reshape(bh, n, h, 1)
    rel_w = torch.einsum("bhwc,wkc->bhwk", qg, rw).reshape(bh, n, 1, w)
    qs = q.reshape(bh, n, d) * attn.scale
    kt = k.reshape(bh, n, d).transpose(1, 2)
    vv = v.reshape(bh, n, d)
    out = torch.empty_like(qs)
    band = max(1, CHUNK // (bh * n))
    for start in range(0, n, band):
        rows = slice(start, start + band)
        bias = (rel_h[:, rows] + rel_w[:, rows]).reshape(bh, -1, n)
        scores = torch.baddbmm(bias, qs[:, rows], kt)
        out[:, rows] = torch.bmm(scores.softmax(dim=-1), vv)
    return out.reshape(b, heads, n, d)
