"""npe2 writer for Labels layers: one TIFF, atomically (no napari import)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_devosam.io.write import label_dtype, write_tiff
from napari_devosam.utils.paths import TIFF_SUFFIXES


def write_labels(path: str, data, meta: dict) -> list[str]:
    """Write a Labels layer's data to ``path`` (.tif/.tiff; a path without suffix gets .tif)
    as uint16/uint32 TIFF, 0 = background. Returns ``[path written]``.

    ``meta`` is napari's layer attributes; its ``name`` and ``scale`` go into the TIFF's
    metadata.
    """
    target = Path(path)
    if target.suffix.lower() not in TIFF_SUFFIXES:
        if target.suffix:
            raise ValueError(f"labels can only be saved as .tif or .tiff, not {target.suffix}")
        target = target.with_suffix(".tif")
    array = np.asarray(data)
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise ValueError(f"labels must be integers, got dtype {array.dtype}")
    meta = meta or {}
    info = {"name": str(meta.get("name", "labels"))}
    if meta.get("scale") is not None:
        info["scale"] = [float(s) for s in meta["scale"]]
    write_tiff(target, array.astype(label_dtype(array)), **info)
    return [str(target)]
