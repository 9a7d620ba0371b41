"""Measured encoder times: how long one plane took through a model's image encoder here.

``compute_embeddings`` (the one encoder door) records every batch it runs, so that a panel can
say before a run how long its planes will take (planes to embed x seconds per plane) from a
time measured on this machine, with this model, in this process. Keyed by the model object
(``id``, weakly: a closed model is forgotten). No torch import here.
"""

from __future__ import annotations

import contextlib
import threading
import weakref

_lock = threading.Lock()
_seconds: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def record(sam, n_planes: int, seconds: float) -> None:
    """``n_planes`` went through ``sam``'s encoder in ``seconds`` (one batch)."""
    if n_planes <= 0 or seconds <= 0:
        return
    # an object that cannot be weakly referenced (TypeError) is not remembered
    with _lock, contextlib.suppress(TypeError):
        _seconds[sam] = seconds / n_planes  # the latest batch: warm, this device


def seconds_per_plane(sam) -> float | None:
    """The encoder's measured seconds per plane for ``sam``, or None before its first plane."""
    if sam is None:
        return None
    with _lock:
        try:
            return _seconds.get(sam)
        except TypeError:
            return None
