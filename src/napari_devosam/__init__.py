"""Segment Anything annotation of grayscale embryo microscopy, for napari and Python.

Heavy modules (torch, segment_anything) load lazily: importing this package, as napari
does when it scans plugins, costs nothing.
"""

from importlib import import_module

from ._version import __version__

_LAZY = {
    "to_rgb": "napari_devosam.image",
    "Normalization": "napari_devosam.image",
    "load_model": "napari_devosam.model_loading",
    "Predictor": "napari_devosam.predictor",
    "EmbeddingCache": "napari_devosam.embeddings",
    "PlaneEmbedding": "napari_devosam.embeddings",
    "embed_plane": "napari_devosam.embeddings",
    "embed_stack": "napari_devosam.embeddings",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'napari_devosam' has no attribute {name!r}")
