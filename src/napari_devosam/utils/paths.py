"""Checks of output paths, made before any compute so that a bad ``--out`` fails at once.

Each raises ``ValueError`` with one sentence in the user's terms (what is wrong and what to
give instead); nothing is created.
"""

from __future__ import annotations

import os
from pathlib import Path

TIFF_SUFFIXES = (".tif", ".tiff")


def output_file(path: str | os.PathLike, suffixes: tuple[str, ...] = TIFF_SUFFIXES,
                what: str = "label image") -> Path:
    """``path`` as a file we can write: not a folder, a suffix from ``suffixes``, in a folder
    that exists (or can be created) and is writable."""
    path = Path(path).expanduser()
    example = f"{what.split()[-1]}{suffixes[0]}"
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name for the {what}, like "
                         f"{path / example}")
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"{path.name}: the {what} is written as {suffixes[0].lstrip('.')}; "
                         f"name the file with {' or '.join(suffixes)}, like "
                         f"{path.with_suffix(suffixes[0]).name}")
    _check_folder(path.parent)
    return path


def output_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """``path`` as a folder we can write into: not a file, creatable and writable."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file; the {what} must be a folder")
    _check_folder(path)
    return path


def _check_folder(folder: Path) -> None:
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"cannot create {folder}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write in {existing}: no permission; choose another folder")
