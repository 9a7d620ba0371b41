"""Whole-model files: a fine-tuned SAM (image encoder included) in safetensors.

Written by ``finetune`` when the encoder was trained too (``RunSettings.train_whole``). The
file is the bundled models' own format (``bundled.FORMAT``): every tensor of the ``Sam``'s
state dict plus string metadata, ``config`` (the architecture, ``model_config``) as JSON, and
``extra`` (the caller's metadata: training settings, data, scores). So it loads through the
same safe path as the bundled model and any checkpoint, ``load_model(path)`` or
``--model path`` (``bundled.file_builder`` builds the architecture from ``config``; no
pickle). Write atomically.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from napari_devosam._version import __version__
from napari_devosam.models.bundled import FORMAT
from napari_devosam.utils.atomic import atomic_path


def model_config(sam) -> dict:
    """The architecture of a ``segment_anything`` ``Sam`` as ``bundled.build_sam``'s config.

    Raises ``ValueError`` for a model that is not SAM's ViT encoder + two-way decoder.
    """
    try:
        enc, pe, dec = sam.image_encoder, sam.prompt_encoder, sam.mask_decoder
        blocks, layers = list(enc.blocks), list(dec.transformer.layers)
        width = int(enc.patch_embed.proj.out_channels)
        return {
            "name": "finetuned",
            "img_size": int(enc.img_size),
            "patch_size": int(enc.patch_embed.proj.kernel_size[0]),
            "encoder_embed_dim": width,
            "encoder_depth": len(blocks),
            "encoder_num_heads": int(blocks[0].attn.num_heads),
            "encoder_window_size": max(int(b.window_size) for b in blocks),
            "encoder_global_attn_indexes": [i for i, b in enumerate(blocks)
                                            if int(b.window_size) == 0],
            "encoder_mlp_ratio": blocks[0].mlp.lin1.out_features / width,
            "prompt_embed_dim": int(pe.embed_dim),
            "decoder_depth": len(layers),
            "decoder_mlp_dim": int(layers[0].mlp.lin1.out_features),
            "decoder_num_heads": int(layers[0].self_attn.num_heads),
            "iou_head_depth": int(dec.iou_prediction_head.num_layers),
            "iou_head_hidden_dim": int(dec.iou_prediction_head.layers[0].out_features),
            "mask_in_chans": int(pe.mask_downscaling[3].out_channels),
            "num_multimask_outputs": int(dec.num_multimask_outputs),
            "pixel_mean": [round(float(v), 4) for v in sam.pixel_mean.flatten().tolist()],
            "pixel_std": [round(float(v), 4) for v in sam.pixel_std.flatten().tolist()],
        }
    except (AttributeError, IndexError, TypeError) as exc:
        raise ValueError(f"the model is not a segment_anything Sam with a ViT encoder "
                         f"({exc}); it cannot be written as a whole-model file") from None


def save_model(sam, path: str | os.PathLike, *, metadata: dict | None = None) -> Path:
    """Write all of ``sam``'s weights to ``path`` (safetensors, atomically); returns the path.

    Load it with ``models.loading.load_model(path)``. ``metadata`` must be JSON-serialisable
    (``ValueError`` otherwise); it is stored as ``extra``.
    """
    from safetensors.torch import save_file

    try:
        extra = json.dumps(metadata or {}, sort_keys=True)
    except TypeError as exc:
        raise ValueError(f"model metadata must be JSON-serialisable: {exc}") from None
    config = model_config(sam)
    tensors = {k: v.detach().to("cpu").float().contiguous().clone()
               for k, v in sam.state_dict().items()}
    meta = {"format": FORMAT, "config": json.dumps(config), "extra": extra,
            "package_version": __version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds")}
    path = Path(path).expanduser()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def is_model_file(path: str | os.PathLike) -> bool:
    """True if ``path`` is a whole-model file (``save_model``), False for anything else."""
    path = Path(path).expanduser()
    if path.suffix != ".safetensors" or not path.is_file():
        return False
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return (f.metadata() or {}).get("format") == FORMAT
    except Exception:  # noqa: BLE001 - unreadable: not one
        return False
