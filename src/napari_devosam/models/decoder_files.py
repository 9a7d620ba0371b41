"""Fine-tuned decoder files: SAM's mask decoder (and prompt encoder) in safetensors.

A decoder file holds the tensors ``mask_decoder.*`` (always, all of them) and
``prompt_encoder.*`` (all or none), with their model's state-dict names, plus string
metadata:

- ``format`` = "devosam-decoder", ``format_version`` = "1";
- ``base_model``: the architecture it was trained on ("vit_b", ..., "custom-<width>");
- ``base_encoder_hash``: ``models.identity.encoder_hash`` of the image encoder it was trained
  with (a decoder only makes sense on the embeddings it was trained on);
- ``package_version``, ``created`` (ISO 8601, UTC);
- ``extra``: JSON of the caller's metadata (training settings, data set, ...).

``apply_decoder`` refuses a file made for another base (architecture or encoder weights).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import torch

from napari_devosam._version import __version__
from napari_devosam.models.identity import architecture_name, encoder_hash
from napari_devosam.utils.atomic import atomic_path

FORMAT = "devosam-decoder"
FORMAT_VERSION = "1"
_PREFIXES = ("mask_decoder.", "prompt_encoder.")


def save_decoder(sam, path: str | os.PathLike, *, base_model: str | None = None,
                 metadata: dict | None = None, include_prompt_encoder: bool = True) -> Path:
    """Write ``sam``'s mask decoder (and prompt encoder) to ``path`` atomically; returns the path.

    ``base_model`` defaults to ``architecture_name(sam)`` and must equal it if given.
    ``metadata`` must be JSON-serialisable; it is stored as the ``extra`` field.
    """
    from safetensors.torch import save_file

    actual = architecture_name(sam)
    if base_model is not None and base_model != actual:
        raise ValueError(f"base_model {base_model!r} does not match the model's architecture "
                         f"{actual!r}")
    prefixes = _PREFIXES if include_prompt_encoder else _PREFIXES[:1]
    tensors = {k: v.detach().to("cpu").contiguous().clone()
               for k, v in sam.state_dict().items() if k.startswith(prefixes)}
    try:
        extra = json.dumps(metadata or {}, sort_keys=True)
    except TypeError as exc:
        raise ValueError(f"decoder metadata must be JSON-serialisable: {exc}") from None
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "base_model": actual,
        "base_encoder_hash": encoder_hash(sam),
        "package_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "extra": extra,
    }
    path = Path(path).expanduser()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def read_decoder_metadata(path: str | os.PathLike) -> dict:
    """The metadata of decoder file ``path``, with ``extra`` decoded from JSON into a dict.

    Raises ``FileNotFoundError``, or ``ValueError`` if the file is not a devosam decoder.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"decoder file {path} does not exist")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except Exception as exc:
        raise ValueError(f"{path} is not a readable safetensors decoder file "
                         f"({str(exc)[:120]})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a devosam decoder file (format "
                         f"{meta.get('format')!r}, expected {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has decoder format version {meta.get('format_version')!r}; "
                         f"this version of napari-devosam reads version {FORMAT_VERSION}")
    try:
        meta["extra"] = json.loads(meta.get("extra") or "{}")
    except json.JSONDecodeError:
        raise ValueError(f"{path} has corrupt metadata (extra is not JSON)") from None
    return meta


def apply_decoder(sam, path: str | os.PathLike) -> dict:
    """Load decoder file ``path`` into ``sam`` in place; returns its metadata.

    Everything is checked before any weight changes. ``ValueError`` (naming the file) if
    the file is not a devosam decoder, was made for another base model or encoder (the
    message gives the expected and found values), or its tensors do not match the model's
    names and shapes.
    """
    from safetensors.torch import load_file

    path = Path(path).expanduser()
    meta = read_decoder_metadata(path)
    arch = architecture_name(sam)
    if meta.get("base_model") != arch:
        raise ValueError(f"decoder {path} was trained for base model {meta.get('base_model')!r}, "
                         f"but the loaded model is {arch!r}")
    enc = encoder_hash(sam)
    if meta.get("base_encoder_hash") != enc:
        raise ValueError(f"decoder {path} was trained on another {arch} image encoder "
                         f"(expected encoder hash {enc[:12]}..., file names "
                         f"{str(meta.get('base_encoder_hash'))[:12]}...)")
    tensors = load_file(str(path), device="cpu")
    own = {k: v for k, v in sam.state_dict(keep_vars=True).items() if k.startswith(_PREFIXES)}
    unknown = [k for k in tensors if k not in own]
    if unknown:
        raise ValueError(f"decoder {path} has tensors this model lacks (e.g. {unknown[0]})")
    for prefix in _PREFIXES:
        mine = [k for k in own if k.startswith(prefix)]
        present = [k for k in mine if k in tensors]
        if (present or prefix == "mask_decoder.") and len(present) != len(mine):
            missing = next(k for k in mine if k not in tensors)
            raise ValueError(f"decoder {path} is incomplete: it lacks {missing}")
    for k, v in tensors.items():
        if v.shape != own[k].shape:
            raise ValueError(f"decoder {path} does not fit the model: {k} is "
                             f"{tuple(v.shape)} instead of {tuple(own[k].shape)}")
    with torch.no_grad():
        for k, v in tensors.items():
            own[k].copy_(v.to(device=own[k].device, dtype=own[k].dtype))
    return meta
