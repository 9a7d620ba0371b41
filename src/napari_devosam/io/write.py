"""Writing label images and planes as TIFF, atomically, and the one dtype rule for labels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_devosam.utils.atomic import atomic_path
from napari_devosam.utils.paths import output_file


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
