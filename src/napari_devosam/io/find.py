"""Which image files a list of inputs names: files, folders (their images, not recursive),
globs. Used by ``devosam batch`` and by image series (``devosam annotate FOLDER``)."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from napari_devosam.io.read import IMAGE_SUFFIXES

GLOB_CHARS = "*?["


def is_image_file(path: Path) -> bool:
    """A visible file whose suffix is one of ``IMAGE_SUFFIXES`` (what folders and globs give)."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and \
        not path.name.startswith(".")


def glob_matches(text: str) -> list[Path] | None:
    """The image files the glob ``text`` matches, sorted; ``None`` when ``text`` is no glob
    (no wildcard, or an existing path whose name holds one)."""
    if not any(ch in text for ch in GLOB_CHARS) or Path(text).expanduser().exists():
        return None
    files = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True))
    return [p for p in files if is_image_file(p)]


def _glob_base(pattern: str) -> Path:
    """The folder part of ``pattern`` before its first wildcard."""
    head = pattern
    for ch in GLOB_CHARS:
        head = head.split(ch, 1)[0]
    return Path(os.path.dirname(head) or ".")


def find_inputs(inputs: list[str], out_dir: str | os.PathLike | None = None) -> list[Path]:
    """The image files named by ``inputs``, sorted within each input, duplicates dropped,
    resolved. A file named on its own is taken whatever its suffix (reading it says whether it
    is an image); folders and globs give only ``is_image_file`` files.

    Raises ``ValueError`` (one sentence) for a glob that matches nothing, a folder without
    images, a missing file, or an output folder (``out_dir``, when given) inside an input
    folder.
    """
    if not inputs:
        raise ValueError("no input: give image files, folders or globs")
    out = None if out_dir is None else Path(out_dir).expanduser().resolve()
    found: list[Path] = []
    for text in inputs:
        path = Path(text).expanduser()
        files = glob_matches(text)
        if files is not None:
            if not files:
                raise ValueError(f"no image file matches {text!r}")
            _check_out(out, _glob_base(os.path.expanduser(text)), inside="**" in text)
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if is_image_file(p))
            if not files:
                raise ValueError(f"no image in folder {path} (looked for "
                                 f"{', '.join(IMAGE_SUFFIXES)})")
            _check_out(out, path)
        elif path.is_file():
            files = [path]
        else:
            raise ValueError(f"no such file or folder: {text}")
        found.extend(files)
    unique = dict.fromkeys(p.resolve() for p in found)
    return list(unique)


def _check_out(out: Path | None, folder: Path, inside: bool = True) -> None:
    """An output folder in (or, with ``inside``, under) an input folder: reruns would take
    the outputs for inputs."""
    folder = folder.resolve()
    if out is None:
        return
    if out == folder or (inside and folder in out.parents):
        raise ValueError(f"the output folder {out} is inside the input folder {folder}; "
                         "choose an output folder outside the inputs")
