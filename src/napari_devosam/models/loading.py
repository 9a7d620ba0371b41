"""Loading SAM models: official names or local checkpoints.

Which checkpoint ``load_model(model, ...)`` uses:

1. ``model`` is a path (``str``/``PathLike`` naming a file): that file.
2. ``model`` is ``None``: the default rule (``models.defaults.default_model``): the file
   named by ``DEVOSAM_CHECKPOINT`` if set, else the best cached official checkpoint, else
   the bundled model. Nothing is downloaded by default.
3. ``model`` names a bundled model ("embryo_tiny", alias "demo"): the file inside the
   package (``models.bundled``), hash-checked.
4. ``model`` names an official checkpoint ("vit_b"/"vit_l"/"vit_h", micro-sam's
   "vit_b_lm"/"vit_l_lm"): for Meta's three, the file named by ``DEVOSAM_CHECKPOINT`` if it
   holds that architecture (managed/offline installs); else the cached file, else it is
   downloaded (pooch, hash-checked) into ``download.model_cache_dir()``.

Local files are read with ``torch.load(..., weights_only=True)`` (a pickle that would run code
is refused) or, for ``.safetensors``, with safetensors. The file must hold a SAM state dict, at
the top level or nested under "model", "state_dict", "model_state" (micro-sam, torch_em) or
"model_state_dict", its keys optionally prefixed "module.", "sam." or "model.". The
architecture is detected from the image encoder's width and depth; other architectures load
only with an explicit ``builder`` (a callable returning a ``Sam`` of the right shape, e.g.
``napari_devosam.testing.tiny_sam``).
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Callable, Generator
from pathlib import Path

import torch

from napari_devosam.models import bundled
from napari_devosam.models.decoder_files import apply_decoder
from napari_devosam.models.defaults import default_model
from napari_devosam.models.download import CHECKPOINT_ENV, ensure_checkpoint
from napari_devosam.models.precision import check_supported, resolve_precision, set_precision
from napari_devosam.models.registry import (
    ALL_MODEL_NAMES,
    ARCH_BY_WIDTH,
    ARCHITECTURES,
    canonical_name,
    is_bundled,
    is_model_name,
)
from napari_devosam.utils.devices import resolve_device
from napari_devosam.utils.progress import drain_with_bar

PATCH_KEY = "image_encoder.patch_embed.proj.weight"
# segment_anything's build_sam normalisation; non-persistent buffers, so not in checkpoints.
_PIXEL_MEAN = (123.675, 116.28, 103.53)
_PIXEL_STD = (58.395, 57.12, 57.375)

StateDict = dict[str, torch.Tensor]


def load_model(model=None, device="auto", decoder=None, progress: bool = True, *,
               builder: Callable[[], torch.nn.Module] | None = None, precision="auto"):
    """A ``segment_anything.modeling.Sam`` in eval mode on ``device``.

    ``model``: a registry name ("vit_b_lm", "vit_b", "embryo_tiny", ...), a checkpoint path,
    or ``None``: the default rule (see the module docstring for the precedence).
    ``device``: see ``devices.resolve_device``.
    ``decoder``: path of a fine-tuned decoder file applied on top (``models.decoder_files``).
    ``progress``: show a download progress bar on stderr (needs tqdm).
    ``precision``: the image encoder's, "fp32" or "bf16" ("auto": ``DEVOSAM_PRECISION`` or
    fp32; see ``models.precision``); bf16 on a CPU without bf16 hardware warns.
    """
    return drain_with_bar(iter_load_model(model, device, decoder, builder=builder,
                                          precision=precision),
                          desc="downloading SAM checkpoint", enabled=progress, unit="B",
                          unit_scale=True, unit_divisor=1024)


def iter_load_model(model=None, device="auto", decoder=None, *,
                    builder: Callable[[], torch.nn.Module] | None = None, precision="auto"
                    ) -> Generator[tuple[int, int], None, torch.nn.Module]:
    """``load_model`` as a generator: yields download progress ``(done_bytes, total_bytes)``
    (nothing when no download is needed) and returns the ``Sam``. Closing it stops a
    download and leaves no partial file."""
    dev = resolve_device(device)
    precision = resolve_precision(precision)
    note = check_supported(precision, dev)  # raises where it cannot run at all
    if note:
        warnings.warn(note, RuntimeWarning, stacklevel=2)
    if decoder is not None and not Path(decoder).expanduser().is_file():
        raise FileNotFoundError(f"decoder file {decoder} does not exist")
    if model is None and not os.environ.get(CHECKPOINT_ENV, "").strip():
        model = default_model().model
    if is_bundled(model):
        name = canonical_name(model)
        path, state = bundled.verified_path(name), None
        builder = builder or bundled.builder(name)
    else:
        path, state = yield from _find_checkpoint(model)
        builder = builder or bundled.file_builder(path)  # a retrained embryo_tiny file
    if state is None:
        state = read_state_dict(path)
    bundled_format = is_bundled(model) or bundled.file_builder(path) is not None
    sam = build_from_state_dict(state, source=path, builder=builder)
    # a bundled model, or a file of its format (a retrained or whole fine-tuned one): small
    # enough that fine-tuning may train it whole (train_whole auto: finetune.settings)
    sam.devosam_bundled = bool(bundled_format)
    sam.to(dev).eval()
    set_precision(sam, precision)
    if decoder is not None:

        apply_decoder(sam, decoder)
    return sam


def _find_checkpoint(model):
    env = os.environ.get(CHECKPOINT_ENV, "").strip()
    env_path = Path(env).expanduser() if env else None
    if env_path is not None and not env_path.is_file() and (model is None or is_model_name(model)):
        raise FileNotFoundError(f"{CHECKPOINT_ENV} names {env_path}, which does not exist")
    if model is None:
        return env_path, None  # iter_load_model resolved None already where no env is set
    if is_model_name(model):
        if env_path is not None and model in ARCHITECTURES:
            state = read_state_dict(env_path)
            if detect_architecture(state, env_path, strict=False) == model:
                return env_path, state
        path = yield from ensure_checkpoint(model)
        return path, None
    path = Path(model).expanduser()
    if not path.exists():
        if isinstance(model, str) and not re.search(r"[/\\.]", model):
            known = ", ".join(ALL_MODEL_NAMES)
            raise ValueError(f"unknown model {model!r}: use one of {known} or a checkpoint path")
        raise FileNotFoundError(f"checkpoint file {path} does not exist")
    return path, None


def read_state_dict(path: str | os.PathLike) -> StateDict:
    """The SAM state dict in checkpoint file ``path`` (tensors on the CPU).

    Raises ``FileNotFoundError`` or a ``ValueError`` naming the file and the problem: a
    pickle with code in it (refused, never run), a truncated/corrupt or non-PyTorch file,
    or content that is not a SAM state dict.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint file {path} is empty")
    obj = _load_safetensors(path) if path.suffix == ".safetensors" else _load_torch(path)
    return _sam_state(obj, path)


# Layouts of SAM weights written by other tools: the weights dict under one of these keys
# (segment-anything: none; Lightning and many scripts: "state_dict"; micro-sam and torch_em:
# "model_state" beside "optimizer_state"; plain PyTorch examples: "model_state_dict"), with
# one of these key prefixes (DataParallel: "module."; micro-sam's wrappers: "sam."; "model.").
WEIGHT_KEYS = ("model", "state_dict", "model_state", "model_state_dict")
KEY_PREFIXES = ("module.", "sam.", "model.")


def _sam_state(obj, path: Path) -> StateDict:
    """The SAM state dict inside a loaded checkpoint object, in any known layout."""
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a SAM state dict")
    for candidate in [obj] + [obj[k] for k in WEIGHT_KEYS if isinstance(obj.get(k), dict)]:
        state = _strip_prefixes(candidate)
        if PATCH_KEY in state:
            bad = [k for k, v in state.items()
                   if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
            if bad:
                raise ValueError(f"{path} is not a SAM state dict: entry {bad[0]!r} is not a "
                                 "tensor")
            return state
        if state and all(isinstance(k, str) and k.startswith(("mask_decoder.", "prompt_encoder."))
                         for k in state) and any(k.startswith("mask_decoder.") for k in state):
            raise ValueError(f"{path} holds a mask decoder only (a fine-tuned decoder file), "
                             "not a whole model: give it as the decoder on top of a model "
                             "(--decoder FILE; load_model(model, decoder=FILE); the panel's "
                             "decoder box)")
    raise ValueError(f"{path} is not a SAM checkpoint in a known layout: {_describe(obj)}; "
                     f"expected SAM weights (with {PATCH_KEY}) at the top level or under "
                     f"{', '.join(repr(k) for k in WEIGHT_KEYS)}, key prefixes "
                     f"{', '.join(repr(p) for p in KEY_PREFIXES)} allowed")


def _strip_prefixes(state: dict) -> dict:
    keys = [k for k in state if isinstance(k, str)]
    for _ in KEY_PREFIXES:  # nested wrappers, e.g. "module.sam."
        prefix = next((p for p in KEY_PREFIXES if keys and all(k.startswith(p) for k in keys)),
                      None)
        if prefix is None:
            break
        state = {k[len(prefix):]: v for k, v in state.items()}
        keys = list(state)
    return state


def _describe(obj: dict) -> str:
    """The layout of a checkpoint dict in a few words: its top-level keys and what they hold."""
    parts = []
    for key, value in list(obj.items())[:6]:
        kind = (f"{len(value)} entries" if isinstance(value, dict)
                else "tensor" if isinstance(value, torch.Tensor) else type(value).__name__)
        parts.append(f"{key!r} ({kind})")
    more = f", ... ({len(obj)} keys)" if len(obj) > 6 else ""
    return "top-level keys " + ", ".join(parts) + more if parts else "an empty dict"


def _load_torch(path: Path):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True,
                              mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        if "unsupported global" in str(exc).lower():
            raise ValueError(
                f"refusing to load {path}: it contains pickled Python objects other than "
                f"tensors, which could run code (only plain state dicts are loaded)"
            ) from None
        raise ValueError(f"checkpoint file {path} is not a PyTorch checkpoint that can be "
                         f"loaded safely (torch.load with weights_only=True failed)") from None
    except Exception as exc:
        with open(path, "rb") as f:
            zipped = f.read(2) == b"PK"
        what = "is truncated or corrupt" if zipped else "is not a PyTorch checkpoint"
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"checkpoint file {path} {what} ({reason})") from None


def _load_safetensors(path: Path):
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:
        raise ValueError(f"checkpoint file {path} is not a readable safetensors file "
                         f"(truncated or corrupt?): {str(exc)[:120]}") from None


def detect_architecture(state: StateDict, source="checkpoint", strict: bool = True) -> str | None:
    """"vit_b"/"vit_l"/"vit_h" from a SAM state dict's image encoder (width, depth); micro-sam's
    checkpoints have these architectures too.

    For another architecture: ``ValueError`` naming ``source``, or ``None`` if not ``strict``.
    """
    width = int(state[PATCH_KEY].shape[0])
    blocks = (re.match(r"image_encoder\.blocks\.(\d+)\.", k) for k in state)
    depth = len({m.group(1) for m in blocks if m})
    arch = ARCH_BY_WIDTH.get(width)
    if arch is not None and ARCHITECTURES[arch].encoder_depth == depth:
        return arch
    if not strict:
        return None
    known = ", ".join(f"{c.name} ({c.encoder_width} wide, {c.encoder_depth} blocks)"
                      for c in ARCHITECTURES.values())
    raise ValueError(
        f"{source} has an image encoder {width} wide with {depth} blocks, which matches none of "
        f"{known}; load custom architectures with load_model(..., builder=...)"
    )


def build_from_state_dict(state: StateDict, source="checkpoint",
                          builder: Callable[[], torch.nn.Module] | None = None):
    """A CPU ``Sam`` holding ``state``: built by ``builder`` if given, else by architecture.

    Raises ``ValueError`` naming ``source`` when keys or shapes do not match.
    """
    if builder is not None:
        sam = builder()
        _check_compatible(sam.state_dict(), state, source, "the builder's")
        sam.load_state_dict(state)
        return sam.float()
    arch = detect_architecture(state, source)
    from segment_anything import sam_model_registry

    # Building on the meta device skips the random initialisation (seconds for vit_h).
    with torch.device("meta"):
        sam = sam_model_registry[arch](checkpoint=None)
    _check_compatible(sam.state_dict(), state, source, f"the {arch}")
    sam.load_state_dict(state, assign=True)
    sam.register_buffer("pixel_mean", torch.tensor(_PIXEL_MEAN).view(-1, 1, 1), False)
    sam.register_buffer("pixel_std", torch.tensor(_PIXEL_STD).view(-1, 1, 1), False)
    if any(t.is_meta for t in [*sam.parameters(), *sam.buffers()]):  # a newer segment_anything
        sam = sam_model_registry[arch](checkpoint=None)
        sam.load_state_dict(state)
    return sam.float()


def _check_compatible(expected, state: StateDict, source, what: str) -> None:
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} is {tuple(state[k].shape)} instead of {tuple(expected[k].shape)}"
              for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches (e.g. {shapes[0]})")
    if problems:
        raise ValueError(f"{source} does not match {what} architecture: " + "; ".join(problems))
