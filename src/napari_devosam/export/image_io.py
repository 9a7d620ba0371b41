"""Reading microscopy images and writing label images.

``read_image`` returns the pixel data as stored: TIFF through tifffile (any dtype, stacks
with their leading axes), PNG/JPEG and other formats through scikit-image. ``write_tiff``
writes atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_devosam.engine.stacks import canonical_axes
from napari_devosam.utils.atomic import atomic_path
from napari_devosam.utils.paths import TIFF_SUFFIXES, output_file


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The pixel data of an image file, original dtype, shape as stored (e.g. (T, Z, Y, X))
    except for channel axes: a trailing lone channel or gray + alpha axis is reduced to the gray
    channel (``engine.stacks.canonical_axes``, the rule the API and the GUI follow too).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for one that cannot be
    read as an image.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}")
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            data = np.asarray(tifffile.imread(path))
        else:
            from skimage import io as skio

            data = np.asarray(skio.imread(path))
    except Exception as exc:  # noqa: BLE001 - any reader failure means: not an image we can read
        what = ("it is not a readable TIFF file" if path.suffix.lower() in TIFF_SUFFIXES
                else f"no image reader understands this {path.suffix or 'extension-less'} file")
        raise ValueError(f"cannot read {path} as an image: {what} (damaged, or another "
                         f"format; the reader said: {exc})") from exc
    return checked_image(canonical_axes(data), path)


def checked_image(data: np.ndarray, path) -> np.ndarray:
    """``data`` read from ``path`` if it is a plane or a stack (>= 2D, no empty axis, numbers);
    else ``ValueError``: a damaged file can "read" as an empty or 1D array."""
    if data.ndim < 2 or 0 in data.shape or data.dtype.kind not in "uifb":
        raise ValueError(f"cannot read {path} as an image: it gives {data.ndim}D data of "
                         f"shape {data.shape} ({data.dtype}), not a plane or a stack")
    return data


def label_dtype(labels) -> np.dtype:
    """The one rule for label images we write: uint16 when every id fits, else uint32.

    Raises ``ValueError`` for negative ids or ids beyond uint32.
    """
    labels = np.asarray(labels)
    if labels.size and labels.min() < 0:
        raise ValueError("labels with negative values cannot be saved as a label image")
    top = int(labels.max()) if labels.size else 0
    if top > np.iinfo(np.uint32).max:
        raise ValueError(f"label id {top} does not fit into uint32")
    return np.dtype(np.uint16 if top <= np.iinfo(np.uint16).max else np.uint32)


def write_tiff(path: str | os.PathLike, array: np.ndarray, **metadata) -> Path:
    """Write ``array`` to ``path`` as TIFF (zlib-compressed), atomically; returns the path.

    Only ``(..., H, W, 3|4)`` uint8 arrays are written as colour; everything else (labels,
    grayscale planes and stacks, even with 3 or 4 leading planes) as grayscale pages.
    Raises ``ValueError`` for a path that is a folder or does not end in .tif/.tiff (a TIFF
    under another name would mislead every other tool).
    """
    import tifffile

    path = output_file(path, what="TIFF image")
    array = np.asarray(array)
    colour = array.ndim >= 3 and array.shape[-1] in (3, 4) and array.dtype == np.uint8
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, array, compression="zlib", metadata=dict(metadata),
                         photometric="rgb" if colour else "minisblack")
    return path
