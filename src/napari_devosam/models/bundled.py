"""The model shipped inside the package: ``embryo_tiny``, a small SAM trained on our synthetic
embryos (``tools/train_embryo_tiny.py``; numbers in docs/models.md).

It is package data (``models/weights/``), found by wheel and editable installs alike, and it
loads through the same safe path as any checkpoint: safetensors (no pickle), SHA256 checked
against the registry before anything is read. Its architecture is recorded in the file's
metadata (``config``), which is trusted only after the hash matched. A missing or corrupted
file is an error naming the file and how to reinstall; there is no fallback to random weights.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import partial
from importlib.resources import files
from pathlib import Path

from napari_devosam.models.registry import BUNDLED, BundledModel

REINSTALL = "pip install --force-reinstall --no-deps napari-devosam"


def bundled_path(name: str) -> Path:
    """Where the bundled model ``name`` lies in the installed package."""
    return Path(str(files("napari_devosam.models").joinpath("weights", BUNDLED[name].filename)))


def verified_path(name: str) -> Path:
    """``bundled_path(name)`` after checking its size and SHA256 against the registry.

    Raises ``FileNotFoundError`` (missing) or ``ValueError`` (corrupted), naming the file and
    the reinstall command.
    """
    entry: BundledModel = BUNDLED[name]
    path = bundled_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"the bundled model file {path} is missing: the installation "
                                f"is incomplete; reinstall with `{REINSTALL}`")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if path.stat().st_size != entry.size or digest != entry.sha256:
        raise ValueError(f"the bundled model file {path} is corrupted (SHA256 {digest}, "
                         f"expected {entry.sha256}); reinstall with `{REINSTALL}`")
    return path


def metadata(name: str) -> dict:
    """The bundled file's metadata, JSON values decoded (config, training, metrics, ...)."""
    from safetensors import safe_open

    with safe_open(str(verified_path(name)), "pt") as f:
        raw = f.metadata() or {}
    out = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


FORMAT = "napari-devosam embryo_tiny v1"  # metadata "format" of files the training script writes
_LIMITS = {"img_size": 4096, "patch_size": 64, "encoder_embed_dim": 2048, "encoder_depth": 64,
           "prompt_embed_dim": 1024, "decoder_depth": 16, "decoder_mlp_dim": 8192}


def file_builder(path: str | os.PathLike):
    """A builder (as ``builder``) for a ``.safetensors`` file written by
    ``tools/train_embryo_tiny.py`` (a retrained embryo_tiny, metadata ``format`` =
    ``FORMAT``), from the ``config`` in its metadata; ``None`` for any other file.

    Raises ``ValueError`` for such a file whose config is unreadable or out of bounds.
    """
    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            raw = f.metadata() or {}
    except Exception:  # noqa: BLE001 - not readable here: read_state_dict says why
        return None
    if raw.get("format") != FORMAT:
        return None
    try:
        config = json.loads(raw["config"])
        too_big = [k for k, top in _LIMITS.items() if not 0 < int(config[k]) <= top]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is an embryo_tiny file whose architecture (metadata "
                         f"'config') cannot be read: {exc}") from None
    if too_big:
        raise ValueError(f"{path} is an embryo_tiny file whose architecture is out of bounds "
                         f"({', '.join(too_big)})")
    return partial(build_sam, config)


def builder(name: str):
    """A callable building the bundled model's empty ``Sam`` (for ``build_from_state_dict``)."""
    return partial(build_sam, metadata(name)["config"])


def build_sam(config: dict):
    """A ``segment_anything`` ``Sam`` of the shape ``config`` describes (random weights).

    Keys: img_size, patch_size, encoder_embed_dim, encoder_depth, encoder_num_heads,
    encoder_window_size, encoder_global_attn_indexes, encoder_mlp_ratio, prompt_embed_dim,
    decoder_depth, decoder_mlp_dim, decoder_num_heads, iou_head_depth, iou_head_hidden_dim,
    mask_in_chans, num_multimask_outputs, pixel_mean, pixel_std.
    """
    import torch
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    c = config
    dim, grid = c["prompt_embed_dim"], c["img_size"] // c["patch_size"]
    encoder = ImageEncoderViT(
        img_size=c["img_size"], patch_size=c["patch_size"], embed_dim=c["encoder_embed_dim"],
        depth=c["encoder_depth"], num_heads=c["encoder_num_heads"],
        mlp_ratio=c["encoder_mlp_ratio"], out_chans=dim, qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
        window_size=c["encoder_window_size"],
        global_attn_indexes=tuple(c["encoder_global_attn_indexes"]),
    )
    prompt_encoder = PromptEncoder(embed_dim=dim, image_embedding_size=(grid, grid),
                                   input_image_size=(c["img_size"], c["img_size"]),
                                   mask_in_chans=c["mask_in_chans"])
    decoder = MaskDecoder(
        num_multimask_outputs=c["num_multimask_outputs"],
        transformer=TwoWayTransformer(depth=c["decoder_depth"], embedding_dim=dim,
                                      mlp_dim=c["decoder_mlp_dim"],
                                      num_heads=c["decoder_num_heads"]),
        transformer_dim=dim, iou_head_depth=c["iou_head_depth"],
        iou_head_hidden_dim=c["iou_head_hidden_dim"],
    )
    return Sam(image_encoder=encoder, prompt_encoder=prompt_encoder, mask_decoder=decoder,
               pixel_mean=c["pixel_mean"], pixel_std=c["pixel_std"]).eval()
