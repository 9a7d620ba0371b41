"""Model identity: architecture names and memoised weight hashes."""

from __future__ import annotations

import torch

import napari_devosam.models.identity as ident
from napari_devosam.models.identity import architecture_name, encoder_hash, model_hash
from napari_devosam.testing import tiny_sam


def test_encoder_hash_identity_and_memo(monkeypatch):
    a, b, c = tiny_sam(seed=0), tiny_sam(seed=0), tiny_sam(seed=1)
    assert encoder_hash(a) == encoder_hash(b) != encoder_hash(c)
    assert len(encoder_hash(a)) == 64 and model_hash(a) == model_hash(b)
    calls = []
    real = ident.hash_state_dict
    monkeypatch.setattr(ident, "hash_state_dict", lambda s: calls.append(1) or real(s))
    first = encoder_hash(a)
    assert encoder_hash(a) == first and calls == []  # memoised
    with torch.no_grad():
        a.mask_decoder.iou_token.weight.add_(1.0)
    assert encoder_hash(a) == first and calls == []  # the decoder is not part of it
    assert model_hash(a) != model_hash(b)
    calls.clear()
    with torch.no_grad():
        a.image_encoder.pos_embed.add_(1.0)
    assert encoder_hash(a) != first and len(calls) == 1  # in-place change invalidates the memo


def test_architecture_names_of_official_shapes():
    from segment_anything import sam_model_registry

    for name in ("vit_b", "vit_l", "vit_h"):
        with torch.device("meta"):
            sam = sam_model_registry[name](checkpoint=None)
        assert architecture_name(sam) == name
