"""Segment Anything annotation of grayscale embryo microscopy, for napari and Python.

The whole workflow from Python, one name per step::

    import napari_devosam as ds
    sam = ds.load_model("vit_b")
    result = ds.segment_all(plane, sam)                  # every cell of a plane
    store = ds.AnnotationStore.for_image(path, image)    # committed objects, undo/redo
    run = ds.propagate(sam, stack, seeds)                # a generator: tracks through T/Z
    train = ds.finetune(bundle_dir, sam, out="d.safetensors")  # a generator too

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
    "AnnotationStore": "napari_devosam.annotation.store",
    "segment_all": "napari_devosam.automatic.core",
    "propagate": "napari_devosam.tracking.propagate",
    # ``finetune`` is also the name of a subpackage, which Python binds here whenever it is
    # imported: the package itself is the face, and calling it calls ``finetune.train.finetune``
    "finetune": "napari_devosam.finetune",
}

__all__ = ["__version__", *_LAZY]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def __getattr__(name: str):
    if name == "finetune":
        return _import_module(_LAZY[name])
    if name in _LAZY:
        return getattr(_import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'napari_devosam' has no attribute {name!r}")
