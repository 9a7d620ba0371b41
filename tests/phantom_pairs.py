"""Test data shared by several test modules: phantom image/label folders and random planes."""

from __future__ import annotations

import numpy as np

from napari_devosam.io.write import write_tiff
from napari_devosam.synthetic.phantoms import make_embryo


def write_pairs(root, n, *, shape=(64, 64), n_cells=4, prefix="plane", first_seed=0):
    """``root/images`` + ``root/labels``: ``n`` phantom embryos (seeds ``first_seed + i``) as
    matching TIFFs named ``{prefix}{i}.tif``; returns ``root``."""
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, labels = make_embryo(shape=shape, n_cells=n_cells, seed=first_seed + i)
        write_tiff(root / "images" / f"{prefix}{i}.tif", image)
        write_tiff(root / "labels" / f"{prefix}{i}.tif", labels.astype(np.uint16))
    return root


def random_plane(seed=0, shape=(90, 130), dtype=np.uint16):
    """A seeded random plane of 0..3999 values."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4000, size=shape).astype(dtype)
