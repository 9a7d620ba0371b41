"""Checks of output paths, made before any compute so that a bad ``--out`` fails at once.

Each raises ``ValueError`` with one sentence in the user's terms (what is wrong and what to
give instead); nothing is created.
"""

from __future__ import annotations

import os
from pathlib import Path

TIFF_SUFFIXES = (".tif", ".tiff")


def output_file(path: str | os.PathLike, suffixes: tuple[str, ...] = TIFF_SUFFIXES,
                what: str = "label image", inputs=()) -> Path:
    """``path`` as a file we can write: not a folder, a suffix from ``suffixes``, in a folder
    that exists (or can be created) and is writable, and none of the files ``inputs`` (writing
    would destroy an input)."""
    path = Path(path).expanduser()
    for source in inputs:
        if _same_file(path, source):
            raise ValueError(f"{path} is also an input; write the {what} to another file, or "
                             "the input would be overwritten")
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


def output_folder(path: str | os.PathLike, what: str = "output folder", inputs=(),
                  writes=None) -> Path:
    """``path`` as a folder we can write into: not a file, creatable and writable. ``inputs``
    lying directly in it whose name ``writes(name)`` says we write (or remove) there are
    refused: they would be overwritten."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file; the {what} must be a folder")
    if writes is not None and path.is_dir():
        for source in inputs:
            source = Path(source).expanduser()
            if (source.is_file() and _same_file(source.parent, path)
                    and writes(source.name)):
                raise ValueError(f"the input {source.name} lies in {path}, where the output "
                                 f"would overwrite it; choose another {what}")
    _check_folder(path)
    return path


def _same_file(a, b) -> bool:
    """True when paths ``a`` and ``b`` both exist and are the same file or folder."""
    try:
        return os.path.samefile(Path(a).expanduser(), Path(b).expanduser())
    except OSError:
        return False


def _check_folder(folder: Path) -> None:
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"cannot create {folder}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write in {existing}: no permission; choose another folder")
