"""Choosing the torch device: "auto" (cuda, then mps, then cpu) or an explicit one.

``DEVOSAM_DEVICE`` replaces "auto" (and ``None``) when set, so a managed install can pin
a device without changing code; an explicit device argument always wins over it.
"""

from __future__ import annotations

import os

import torch

DEVICE_ENV = "DEVOSAM_DEVICE"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """The devices usable here, best first, e.g. ``["cuda:0", "cuda:1", "cpu"]``."""
    found = []
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        found.append("mps")
    found.append("cpu")
    return found


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The ``torch.device`` for ``device``.

    ``"auto"`` or ``None``: ``DEVOSAM_DEVICE`` if set, else the first of cuda, mps, cpu
    that is available. Explicit values: ``"cpu"``, ``"cuda"`` (the current CUDA device,
    returned with its index), ``"cuda:N"``, ``"mps"``, or a ``torch.device``. A device
    that is unknown or not available here raises ``ValueError`` naming the available ones.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        env = os.environ.get(DEVICE_ENV, "").strip()
        if env and env.lower() != "auto":
            return _explicit(env, source=f" (from {DEVICE_ENV})")
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    return _explicit(device)


def _explicit(device: str | torch.device, source: str = "") -> torch.device:
    available = ", ".join(available_devices())
    if isinstance(device, str):
        try:
            dev = torch.device(device.strip().lower())
        except (RuntimeError, ValueError):
            raise ValueError(
                f"unknown device {device!r}{source}: use auto, cpu, cuda, cuda:N or mps "
                f"(available here: {available})"
            ) from None
    elif isinstance(device, torch.device):
        dev = device
    else:
        raise ValueError(f"device must be a string or torch.device, not {type(device).__name__}")

    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(dev)!r}{source} is not available: CUDA is not "
                             f"usable here (available: {available})")
        index = torch.cuda.current_device() if dev.index is None else dev.index
        if not 0 <= index < torch.cuda.device_count():
            raise ValueError(f"device {str(dev)!r}{source} does not exist "
                             f"(available: {available})")
        return torch.device("cuda", index)
    if dev.type == "mps":
        if not _mps_available():
            raise ValueError(f"device 'mps'{source} is not available here (available: {available})")
        return torch.device("mps")
    raise ValueError(f"unsupported device {str(dev)!r}{source}: use auto, cpu, cuda, cuda:N or "
                     f"mps (available here: {available})")
