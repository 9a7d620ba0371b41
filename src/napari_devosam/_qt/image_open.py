"""Opening an image file as a napari layer bound to its file (so its annotation store is found
next to it): used by ``devosam annotate`` and by the series panel."""

from __future__ import annotations

import os
from pathlib import Path


def add_image_file(viewer, path: str | os.PathLike, data=None):
    """Add the pixels of ``path`` (read with ``io.read.read_image`` unless ``data`` is given)
    as an image layer named after the file, whose ``source.path`` is the file. Returns the layer.

    Raises ``OSError`` / ``ValueError`` when the file cannot be read (nothing is added then).
    """
    from napari.layers._source import layer_source

    path = Path(path).expanduser().absolute()
    if data is None:
        from napari_devosam.io.read import read_image

        data = read_image(path)
    name = path.name[: -len(path.suffix)] if path.suffix else path.name
    with layer_source(path=str(path)):
        return viewer.add_image(data, name=name)
