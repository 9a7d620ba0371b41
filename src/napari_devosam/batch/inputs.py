"""Which files a batch reads, and how: files, folders (their images, not recursive), globs.

TIFF (OME-TIFF included) and PNG/JPEG go through ``export.image_io.read_image``; CZI, ND2
and LIF through ``bioio`` (optional: ``pip install 'napari-devosam[bioio]'``).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np

PLAIN_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
BIOIO_SUFFIXES = (".czi", ".nd2", ".lif")
IMAGE_SUFFIXES = PLAIN_SUFFIXES + BIOIO_SUFFIXES
_GLOB_CHARS = "*?["


class BioioMissingError(RuntimeError):
    """A microscopy file needs the optional ``bioio`` readers."""


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and \
        not path.name.startswith(".")


def _glob_base(pattern: str) -> Path:
    """The folder part of ``pattern`` before its first wildcard."""
    head = pattern
    for ch in _GLOB_CHARS:
        head = head.split(ch, 1)[0]
    return Path(os.path.dirname(head) or ".")


def find_inputs(inputs: list[str], out_dir: str | os.PathLike | None = None) -> list[Path]:
    """The image files named by ``inputs``, sorted within each input, duplicates dropped.

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
        if any(ch in text for ch in _GLOB_CHARS) and not path.exists():
            files = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True))
            files = [p for p in files if _is_image(p)]
            if not files:
                raise ValueError(f"no image file matches {text!r}")
            _check_out(out, _glob_base(os.path.expanduser(text)), inside="**" in text)
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if _is_image(p))
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


def stems(paths: list[Path]) -> dict[Path, str]:
    """A unique output name per input: its stem (``.ome`` dropped), ``-2``, ``-3`` on clashes."""
    taken: dict[str, int] = {}
    out = {}
    for p in paths:
        stem = p.name[: -len(p.suffix)] if p.suffix else p.name
        stem = stem[:-4] if stem.lower().endswith(".ome") else stem
        n = taken.get(stem, 0) + 1
        taken[stem] = n
        out[p] = stem if n == 1 else f"{stem}-{n}"
    return out


def read_any(path: str | os.PathLike) -> np.ndarray:
    """The pixels of ``path``: ``read_image`` for TIFF/PNG, ``bioio`` for CZI/ND2/LIF.

    A bioio image becomes ``(T, Z, Y, X)`` of its first channel with length-1 T/Z dropped.
    """
    from napari_devosam.export.image_io import checked_image, read_image

    path = Path(path)
    if path.suffix.lower() not in BIOIO_SUFFIXES:
        return read_image(path)
    try:
        from bioio import BioImage
    except ImportError:
        raise BioioMissingError(
            f"reading {path.suffix} files needs bioio: pip install 'napari-devosam[bioio]'"
        ) from None
    try:
        data = np.asarray(BioImage(path).get_image_data("TZYX", C=0))
    except Exception as exc:  # noqa: BLE001 - any reader failure: not an image we can read
        raise ValueError(f"cannot read {path} with bioio: {exc}") from exc
    lead = [n for n in data.shape[:2] if n > 1]
    return checked_image(data.reshape(*lead, *data.shape[2:]), path)


def read_first_plane(path: str | os.PathLike) -> np.ndarray:
    """The first plane of ``path`` (index 0 of every leading T/Z axis, as
    ``engine.stacks.first_plane(read_any(path))``), reading only that plane where the format
    allows: one TIFF page, one bioio plane. ``(Y, X)`` or ``(Y, X, C)``, original dtype.

    Raises what ``read_any`` raises.
    """
    from napari_devosam.engine.stacks import first_plane

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in BIOIO_SUFFIXES:
        return first_plane(_bioio_first_plane(path))
    if suffix in (".tif", ".tiff") and path.is_file():
        page = _tiff_first_page(path)
        if page is not None:
            from napari_devosam.engine.stacks import canonical_axes
            from napari_devosam.export.image_io import checked_image

            return first_plane(checked_image(canonical_axes(page), path))
    return first_plane(read_any(path))


def _tiff_first_page(path: Path) -> np.ndarray | None:
    """Page 0 of the first series when the series is a stack of such pages (its shape ends
    with the page's shape), else ``None`` (then the caller reads the whole file)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            page = series.keyframe
            shape, page_shape = tuple(series.shape), tuple(page.shape)
            if len(page_shape) < 2 or shape[len(shape) - len(page_shape):] != page_shape:
                return None
            return np.asarray(tif.asarray(key=0, series=0)).reshape(page_shape)
    except Exception:  # noqa: BLE001 - read_any gives the one readable error for a bad file
        return None


def _bioio_first_plane(path: Path) -> np.ndarray:
    """``(Y, X)`` at T=0, Z=0 of the first channel, read alone (``read_any``'s axis rule)."""
    try:
        from bioio import BioImage
    except ImportError:
        return read_any(path)  # raises the install hint
    try:
        data = np.asarray(BioImage(path).get_image_data("YX", T=0, Z=0, C=0))
    except Exception as exc:  # noqa: BLE001 - as read_any: not an image we can read
        raise ValueError(f"cannot read {path} with bioio: {exc}") from exc
    from napari_devosam.export.image_io import checked_image

    return checked_image(data, path)

