"""Model names: the official Segment Anything checkpoints (name, URL, hash, size, architecture,
licence) and the models bundled inside the package (``BUNDLED``, with their aliases).

Official checkpoints are Meta's SAM (``vit_b``, ``vit_l``, ``vit_h``) and micro-sam's
light-microscopy generalists (``vit_b_lm``, ``vit_l_lm``: SAM fine-tuned on microscopy, same
architectures), with URLs and xxh128 hashes from micro-sam's own registry.

No torch here: the GUI can list models without loading anything heavy. Download locations
can be changed for mirrors (and tests): ``DEVOSAM_MODEL_URL_<NAME>`` (e.g.
``DEVOSAM_MODEL_URL_VIT_B_LM``) is one model's full URL; ``DEVOSAM_MODEL_BASE_URL`` is a URL
prefix to which each checkpoint's cache file name is appended, for every official model
(``file://`` URLs work too). Without either, each model comes from its publisher.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
BASE_URL_ENV = "DEVOSAM_MODEL_BASE_URL"
URL_ENV_PREFIX = "DEVOSAM_MODEL_URL_"

META_LICENCE = "Apache-2.0 (Meta AI, Segment Anything)"
META_CITATION = "Kirillov et al., Segment Anything, ICCV 2023"
MICROSAM_LICENCE = "CC-BY-4.0 (micro-sam, via bioimage.io)"
MICROSAM_CITATION = ("Archit et al., Segment Anything for Microscopy, Nature Methods 2025 "
                     "(https://doi.org/10.1038/s41592-024-02580-4)")
_MICROSAM_URL = "https://uk1s3.embassy.ebi.ac.uk/public-datasets/bioimage.io/"


@dataclass(frozen=True)
class Checkpoint:
    """One downloadable checkpoint.

    ``filename`` is its name in the cache folder. ``url`` is the publisher's download URL;
    ``None`` means "Meta's server + ``filename``" (see ``download_url`` for overrides).
    ``known_hash`` is pooch's form, ``"<algorithm>:<lowercase hex>"`` (``sha256`` or
    ``xxh128``; a bare hex string is a SHA256). ``size`` is in bytes, ``None`` where the
    publisher does not state it. ``architecture`` is the SAM architecture it loads into
    ("vit_b", "vit_l", "vit_h"); ``encoder_width``/``encoder_depth`` describe its image encoder
    ViT. ``licence``/``citation``/``about`` are shown to users (docs, ``--help``).
    """

    name: str
    filename: str
    known_hash: str
    size: int | None
    encoder_width: int
    encoder_depth: int
    url: str | None = None
    architecture: str = ""
    licence: str = META_LICENCE
    citation: str = META_CITATION
    about: str = "Segment Anything, trained on natural images (SA-1B)"

    @property
    def arch(self) -> str:
        """The SAM architecture name ("vit_b", ...): ``architecture``, else ``name``."""
        return self.architecture or self.name

    def download_url(self) -> str:
        """Where this checkpoint is downloaded from: ``DEVOSAM_MODEL_URL_<NAME>``, else
        ``DEVOSAM_MODEL_BASE_URL`` + ``filename``, else ``url``, else Meta's server."""
        override = os.environ.get(URL_ENV_PREFIX + self.name.upper(), "").strip()
        if override:
            return override
        if os.environ.get(BASE_URL_ENV, "").strip() or self.url is None:
            return base_url() + self.filename
        return self.url


CHECKPOINTS: dict[str, Checkpoint] = {
    c.name: c
    for c in (
        Checkpoint(
            name="vit_b",
            filename="sam_vit_b_01ec64.pth",
            known_hash="sha256:ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
            size=375_042_383,
            encoder_width=768,
            encoder_depth=12,
        ),
        Checkpoint(
            name="vit_l",
            filename="sam_vit_l_0b3195.pth",
            known_hash="sha256:3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
            size=1_249_524_607,
            encoder_width=1024,
            encoder_depth=24,
        ),
        Checkpoint(
            name="vit_h",
            filename="sam_vit_h_4b8939.pth",
            known_hash="sha256:a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
            size=2_564_550_879,
            encoder_width=1280,
            encoder_depth=32,
        ),
        Checkpoint(
            name="vit_b_lm",
            filename="vit_b_lm.pt",
            known_hash="xxh128:fe9252a29f3f4ea53c15a06de471e186",
            size=None,
            encoder_width=768,
            encoder_depth=12,
            url=_MICROSAM_URL + "diplomatic-bug/1.2/files/vit_b.pt",
            architecture="vit_b",
            licence=MICROSAM_LICENCE,
            citation=MICROSAM_CITATION,
            about="micro-sam's light-microscopy generalist (vit_b), SAM fine-tuned on microscopy",
        ),
        Checkpoint(
            name="vit_l_lm",
            filename="vit_l_lm.pt",
            known_hash="xxh128:017f20677997d628426dec80a8018f9d",
            size=None,
            encoder_width=1024,
            encoder_depth=24,
            url=_MICROSAM_URL + "idealistic-rat/1.2/files/vit_l.pt",
            architecture="vit_l",
            licence=MICROSAM_LICENCE,
            citation=MICROSAM_CITATION,
            about="micro-sam's light-microscopy generalist (vit_l), SAM fine-tuned on microscopy",
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
    # embryo_tiny's architecture trained further on realistic synthetic nuclei, degraded
    # phantoms and pseudo-labelled real C. elegans frames (tools/train_embryo.py)
    "embryo_v1": BundledModel(
        name="embryo_v1",
        filename="embryo.safetensors",
        sha256="d196e511a884faecc5e24080d34e6f5f4f9fc05d60d9fd2ed3d0342b7209b871",
        size=6_214_024,
    ),
    # embryo_v1 trained further for object-scale prompting (zoomed views, engine/zoom.py):
    # objects at 48-192 px of the input, textured and dim touching nuclei (tools/train_embryo.py
    # --object-scale)
    "embryo_v2": BundledModel(
        name="embryo_v2",
        filename="embryo_v2.safetensors",
        sha256="befe9ce4e2e4fcb40e7f34941fb49ab3fa1d8ff61f09a22fb90baa12bbb72869",
        size=6_214_656,
    ),
}
# "demo" named a random model before 0.2; "embryo" names the recommended bundled model
ALIASES = {"demo": "embryo_tiny", "embryo": "embryo_v2"}
ALL_MODEL_NAMES: tuple[str, ...] = (*MODEL_NAMES, *BUNDLED)


def canonical_name(name):
    """``name`` with aliases resolved ("demo" -> "embryo_tiny"); other values unchanged."""
    return ALIASES.get(name, name) if isinstance(name, str) else name


def timing_key(name, device, precision) -> str:
    """The key of the times recorded for model ``name`` (a registry or bundled name, an alias,
    or a checkpoint path) on ``device`` at encoder ``precision``: aliases resolved, so
    ``--model demo`` and the panel's ``embryo_tiny`` read and write one record."""
    from napari_devosam.utils.estimate import record_key

    return record_key(canonical_name(name), device, precision)


def is_bundled(value) -> bool:
    """True if ``value`` names a model shipped inside the package (aliases included)."""
    return isinstance(value, str) and canonical_name(value) in BUNDLED

# The SAM architectures (Meta's entries: name == architecture), by image encoder width.
ARCHITECTURES: dict[str, Checkpoint] = {n: c for n, c in CHECKPOINTS.items() if c.arch == n}
ARCH_BY_WIDTH: dict[int, str] = {c.encoder_width: c.name for c in ARCHITECTURES.values()}


def base_url() -> str:
    """The URL prefix for official checkpoints (``DEVOSAM_MODEL_BASE_URL`` or Meta's server)."""
    url = os.environ.get(BASE_URL_ENV, "").strip() or DEFAULT_BASE_URL
    return url if url.endswith("/") else url + "/"


def get_checkpoint(name: str | Checkpoint) -> Checkpoint:
    """The registry entry for ``name`` ("vit_b", "vit_b_lm", ...); a ``Checkpoint`` passes through.

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


RECOMMENDED_BUNDLED = "embryo"  # the recommended bundled model's name, once it is registered
FALLBACK_BUNDLED = "embryo_tiny"


def recommended_bundled() -> str:
    """The bundled model to use when none is named: ``embryo`` where that name is registered
    (in ``BUNDLED`` or ``ALIASES``), else ``embryo_tiny``."""
    return RECOMMENDED_BUNDLED if is_bundled(RECOMMENDED_BUNDLED) else FALLBACK_BUNDLED
