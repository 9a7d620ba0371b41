"""Model identity: the architecture's name and SHA256 hashes of weights.

The embedding cache keys on ``encoder_hash``; fine-tuned decoder files name their base model
by it, so that a decoder is only applied on top of the encoder it was trained with.
"""

from __future__ import annotations

import hashlib
import threading
import weakref

import torch

from napari_devosam.models.registry import ARCH_BY_WIDTH, CHECKPOINTS


def architecture_name(sam) -> str:
    """"vit_b"/"vit_l"/"vit_h" for the official shapes, else ``"custom-<encoder width>"``."""
    encoder = sam.image_encoder
    width = int(encoder.patch_embed.proj.out_channels)
    arch = ARCH_BY_WIDTH.get(width)
    if arch is not None and CHECKPOINTS[arch].encoder_depth == len(encoder.blocks):
        return arch
    return f"custom-{width}"


_memo: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_memo_lock = threading.Lock()


def encoder_hash(sam) -> str:
    """SHA256 (hex) of the image encoder's weights: names, dtypes, shapes and bytes.

    Independent of the device. Memoised per module; recomputed only when one of its tensors
    was modified in place or replaced. The embedding cache keys on it and fine-tuned
    decoders name it as their base.
    """
    return _memo_hash(sam.image_encoder, "encoder")


def model_hash(sam) -> str:
    """SHA256 (hex) of the whole model's state dict, computed like ``encoder_hash``."""
    return _memo_hash(sam, "model")


def _memo_hash(module: torch.nn.Module, kind: str) -> str:
    state = module.state_dict(keep_vars=True)
    try:
        stamp = tuple((k, t.data_ptr(), t._version, str(t.device)) for k, t in state.items())
    except RuntimeError:  # inference-mode tensors have no version counter
        stamp = None
    with _memo_lock:
        cached = _memo.get(module, {}).get(kind)
    if stamp is not None and cached is not None and cached[0] == stamp:
        return cached[1]
    value = hash_state_dict(state)
    if stamp is not None:
        with _memo_lock:
            _memo.setdefault(module, {})[kind] = (stamp, value)
    return value


def hash_state_dict(state) -> str:
    """SHA256 (hex) over ``state``'s tensors in key order: name, dtype, shape, raw bytes."""
    digest = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        flat = t.to("cpu").contiguous().reshape(-1)
        if flat.dtype == torch.bool:
            flat = flat.to(torch.uint8)
        digest.update(memoryview(flat.view(torch.uint8).numpy()))
    return digest.hexdigest()
