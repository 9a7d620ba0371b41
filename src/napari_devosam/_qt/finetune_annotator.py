"""Finding the SAM annotator docked in the viewer, and what the fine-tune widget reuses of it.

The fine-tune widget trains on the annotator's model (no second load, same embedding cache)
and hands the trained decoder back through ``annotator.use_decoder(path)``. Everything here is
duck-typed so that the widgets do not import each other.
"""

from __future__ import annotations


def _is_annotator(widget) -> bool:
    return callable(getattr(widget, "use_decoder", None))


def find_annotator(viewer):
    """The first docked widget with a ``use_decoder`` method, or None."""
    if viewer is None:
        return None
    window = getattr(viewer, "window", None)
    docks = getattr(window, "dock_widgets", None)  # napari >= 0.6.2: the inner widgets
    if docks is None:
        return None
    try:
        widgets = list(docks.values())
    except Exception:  # noqa: BLE001 - a closing window: no annotator
        return None
    for widget in widgets:
        inner = getattr(widget, "native", widget)  # a magicgui container wraps a QWidget
        for candidate in (widget, inner):
            if _is_annotator(candidate):
                return candidate
    return None


def _predictor(annotator):
    return getattr(annotator, "predictor", None) if annotator is not None else None


def model_of(annotator):
    """The ``Sam`` loaded in ``annotator`` (``.sam`` or ``.predictor.sam``), or None."""
    if annotator is None:
        return None
    sam = getattr(annotator, "sam", None)
    if sam is None:
        sam = getattr(_predictor(annotator), "sam", None)
    return sam


def cache_of(annotator):
    """The annotator's embedding cache (``.cache`` or ``.predictor.cache``), or None.

    The annotator's cache is thread-safe (``jobs.LockedEmbeddingCache``), so the training
    worker can share it: planes embedded while annotating are not embedded again."""
    if annotator is None:
        return None
    cache = getattr(annotator, "cache", None)
    return cache if cache is not None else getattr(_predictor(annotator), "cache", None)


def normalization_of(annotator):
    """The annotator's ``image.Normalization`` (``.predictor.normalization``), or None.

    Fine-tuning with the same normalization makes the annotator's cached embeddings hits."""
    return getattr(_predictor(annotator), "normalization", None)
