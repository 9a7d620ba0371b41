"""Model names: the official Segment Anything checkpoints (name, URL, SHA256, size, encoder
shape) and the models bundled inside the package (``BUNDLED``, with their aliases).

No torch here: the GUI can list models without loading anything heavy. The download
location can be changed for mirrors (and tests) with ``DEVOSAM_MODEL_BASE_URL``: a URL
prefix to which the checkpoint's file name is appended (``file://`` URLs work too).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
BASE_URL_ENV = "DEVOSAM_MODEL_BASE_URL"


@dataclass(frozen=True)
class Checkpoint:
    """One downloadable checkpoint.

    ``url`` is the full download URL; ``None`` means "``base_url()`` + ``filename``", so the
    official entries follow ``DEVOSAM_MODEL_BASE_URL``. ``sha256`` is lowercase hex and
    ``size`` is in bytes. ``encoder_width``/``encoder_depth`` describe the image encoder ViT.
    """

    name: str
    filename: str
    sha256: str
    size: int
    encoder_width: int
    encoder_depth: int
    url: str | None = None

    def download_url(self) -> str:
        """Where this checkpoint is downloaded from."""
        return self.url if self.url is not None else base_url() + self.filename


CHECKPOINTS: dict[str, Checkpoint] = {
    c.name: c
    for c in (
        Checkpoint(
            name="vit_b",
            filename="sam_vit_b_01ec64.pth",
            sha256="ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
            size=375_042_383,
            encoder_width=768,
            encoder_depth=12,
        ),
        Checkpoint(
            name="vit_l",
            filename="sam_vit_l_0b3195.pth",
            sha256="3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
            size=1_249_524_607,
            encoder_width=1024,
            encoder_depth=24,
        ),
        Checkpoint(
            name="vit_h",
            filename="sam_vit_h_4b8939.pth",
            sha256="a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
            size=2_564_550_879,
            encoder_width=1280,
            encoder_depth=32,
        ),
    )
}

MODEL_NAMES: tuple[str, ...] = tuple(CHECKPOINTS)


@dataclass(frozen=True)
class BundledModel:
    """A model shipped inside the package (``models/weights/<filename>``, safetensors)."""

    name: str
    filename: str
    sha256: str
    size: int


BUNDLED: dict[str, BundledModel] = {
    "embryo_tiny": BundledModel(
        name="embryo_tiny",
        filename="embryo_tiny.safetensors",
        sha256="6fd035745b179fedd9d09c8d44053b2ef5c9e941685bea6b5bb8cc19f00ad190",
        size=6_213_352,
    ),
}
ALIASES = {"demo": "embryo_tiny"}  # "demo" named a random model before 0.2
ALL_MODEL_NAMES: tuple[str, ...] = (*MODEL_NAMES, *BUNDLED)


def canonical_name(name):
    """``name`` with aliases resolved ("demo" -> "embryo_tiny"); other values unchanged."""
    return ALIASES.get(name, name) if isinstance(name, str) else name


def is_bundled(value) -> bool:
    """True if ``value`` names a model shipped inside the package (aliases included)."""
    return isinstance(value, str) and canonical_name(value) in BUNDLED

ARCH_BY_WIDTH: dict[int, str] = {c.encoder_width: c.name for c in CHECKPOINTS.values()}


def base_url() -> str:
    """The URL prefix for official checkpoints (``DEVOSAM_MODEL_BASE_URL`` or Meta's server)."""
    url = os.environ.get(BASE_URL_ENV, "").strip() or DEFAULT_BASE_URL
    return url if url.endswith("/") else url + "/"


def get_checkpoint(name: str | Checkpoint) -> Checkpoint:
    """The registry entry for ``name`` ("vit_b", "vit_l", "vit_h"); a ``Checkpoint`` passes through.

    Raises ``ValueError`` naming the known models for an unknown name.
    """
    if isinstance(name, Checkpoint):
        return name
    try:
        return CHECKPOINTS[name]
    except (KeyError, TypeError):
        known = ", ".join(ALL_MODEL_NAMES)
        raise ValueError(
            f"unknown model {name!r}: use one of {known} or the path of a local checkpoint"
        ) from None


def is_model_name(value) -> bool:
    """True if ``value`` names a registry checkpoint (as opposed to a file path)."""
    return isinstance(value, str) and value in CHECKPOINTS
