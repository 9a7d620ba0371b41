"""The first import of torch, torchvision and segment_anything: once, in one thread.

Importing torch's stack for the first time from two threads at once can leave a module half
initialised (seen as ``AttributeError: '_OpNamespace' 'prims' object has no attribute 'sum'``
when torchvision pulled in ``torch.distributed`` in a napari worker while the GUI thread was
importing too). ``ensure_imported()`` does the imports under one lock; call it on the GUI
thread when a widget is created (before it starts a worker), and at the start of any
background job that may be the first to need them: later calls return at once.
"""

from __future__ import annotations

import importlib
import threading

HEAVY_MODULES = ("torch", "torchvision", "segment_anything")

_lock = threading.Lock()
_done = False


def ensure_imported(modules: tuple[str, ...] = HEAVY_MODULES) -> None:
    """Import ``modules`` (in order) unless done already; thread-safe, one thread at a time.

    Raises the ``ImportError`` (or other error) of a module that cannot be imported; the
    next call tries again.
    """
    global _done
    if _done and modules == HEAVY_MODULES:
        return
    with _lock:
        if _done and modules == HEAVY_MODULES:
            return
        for name in modules:
            importlib.import_module(name)
        if modules == HEAVY_MODULES:
            _done = True


def imported() -> bool:
    """True once ``ensure_imported()`` has completed."""
    return _done
