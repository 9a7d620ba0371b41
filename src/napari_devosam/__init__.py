"""Segment Anything annotation of grayscale embryo microscopy, for napari and Python.

Heavy modules (torch, segment_anything) load lazily: importing this package, as napari
does when it scans plugins, costs nothing.
"""

from importlib import import_module as _import_module

from napari_devosam._version import __version__

_LAZY = {
    "to_rgb": "napari_devosam.engine.image",
    "Normalization": "napari_devosam.engine.image",
    "load_model": "napari_devosam.models.loading",
    "Predictor": "napari_devosam.engine.predictor",
    "EmbeddingCache": "napari_devosam.engine.embeddings",
    "PlaneEmbedding": "napari_devosam.engine.embeddings",
    "embed_plane": "napari_devosam.engine.embeddings",
    "embed_stack": "napari_devosam.engine.embeddings",
}

__all__ = ["__version__", *_LAZY]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(_import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'napari_devosam' has no attribute {name!r}")
