"""Cheap checks of the arguments that name models, devices and files, run before any heavy
import (torch, the model): a mistyped ``--model`` or ``--device`` ends in one stderr line
within a second, not after seconds of imports and loading (issue 25).

Nothing here imports torch; the full checks (a device that exists on this machine, a file
that is a real checkpoint) stay where the model is loaded.
"""

from __future__ import annotations

import re
from pathlib import Path

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_model(model) -> None:
    """``--model``: None (the default rule), a known name or alias, or an existing file.

    Raises ``ValueError`` for an unknown name (naming the known ones) and
    ``FileNotFoundError`` for a path that does not exist (the wording of
    ``models.loading``).
    """
    from napari_devosam.models.registry import MODEL_NAMES, is_bundled, is_model_name

    if model is None or is_bundled(model) or is_model_name(model):
        return
    path = Path(str(model)).expanduser()
    if path.is_dir():  # trial 18: a folder was said not to exist
        raise IsADirectoryError(f"{path} is a folder, not a checkpoint file (--model)")
    if path.exists():
        return
    if not re.search(r"[/\\.]", str(model)):
        raise ValueError(f"unknown model {model!r}: use one of {bundled_names()}, "
                         f"{', '.join(MODEL_NAMES)} or a checkpoint path")
    raise FileNotFoundError(f"checkpoint file {path} does not exist")


def bundled_names() -> str:
    """The bundled models as the CLI lists them, from ``models.registry``: the recommended
    one first (with the model it names when it is an alias), then every other name in
    ``BUNDLED`` with its aliases, e.g. ``"embryo (recommended; alias of embryo_v1),
    embryo_v1, embryo_tiny (alias demo)"``."""
    from napari_devosam.models.registry import ALIASES, BUNDLED, recommended_bundled

    best = recommended_bundled()
    target = ALIASES.get(best, best)
    entries = [f"{best} (recommended; alias of {target})" if best != target
               else f"{best} (recommended)"]
    for name in sorted(BUNDLED, key=lambda n: n != target):  # the recommended model's first
        aliases = [a for a, n in ALIASES.items() if n == name and a != best]
        if name == best:  # the recommended name is a bundled model's own name
            if aliases:
                entries[0] = f"{best} (recommended; alias {', '.join(aliases)})"
            continue
        entries.append(f"{name} (alias {', '.join(aliases)})" if aliases else name)
    return ", ".join(entries)


def check_device(device) -> None:
    """``--device``: auto, cpu, cuda, cuda:N or mps (whether it exists here is checked when
    the model loads). Raises ``ValueError``."""
    if device is None or DEVICE_PATTERN.match(str(device).strip().lower()):
        return
    raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps")


def check_file(path, flag: str, what: str = "file") -> None:
    """``flag`` names a file that must exist (``FileNotFoundError`` otherwise)."""
    if path is not None and Path(path).expanduser().is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a {what} ({flag})")
    if path is not None and not Path(path).expanduser().is_file():
        raise FileNotFoundError(f"{what} {path} does not exist ({flag})")


def check_model_args(args) -> None:
    """The model, device and decoder arguments of a parsed command (those it has)."""
    check_model(getattr(args, "model", None))
    check_device(getattr(args, "device", None))
    check_file(getattr(args, "decoder", None), "--decoder", "decoder file")
