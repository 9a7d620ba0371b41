"""Background work for the annotator: a thread-safe embedding cache and ordered store jobs.

The GUI thread never writes files: every ``AnnotationStore`` change runs on one background
thread, in submission order (a commit followed by an undo is applied in that order), and its
result comes back to the GUI thread through a Qt signal.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from qtpy.QtCore import QObject, Signal

from napari_devosam.engine.embeddings import EmbeddingCache


class LockedEmbeddingCache(EmbeddingCache):
    """``EmbeddingCache`` safe to share between the annotator's workers and other widgets.

    A failed disk write is announced by ``EmbeddingJobs`` as one napari notification.
    ``puts`` counts the embeddings put (computed, not read): a run's planes embedded are the
    difference over the run (``estimates.RunTiming``)."""

    warn_on_disk_error = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lock = threading.RLock()
        self.puts = 0

    def get(self, key, device=None):
        with self._lock:
            return super().get(key, device)

    def put(self, key, embedding):
        with self._lock:
            super().put(key, embedding)
            self.puts += 1

    def clear_memory(self):
        with self._lock:
            super().clear_memory()


class SerialJobs(QObject):
    """Run callables one after another on a background thread; report back on the GUI thread.

    ``submit(fn, *args, on_done=cb)`` runs ``fn(*args)`` after every earlier job; then, on the
    thread that owns this object (the GUI), ``cb(result, error)`` is called with one of the two
    set. ``wait()`` blocks until everything submitted so far has run (used when closing).
    """

    _finished = Signal(object, object, object)

    def __init__(self, parent=None, name: str = "devosam-store"):
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending = 0
        self._finished.connect(self._deliver)

    @property
    def busy(self) -> bool:
        return self._pending > 0

    def submit(self, fn, *args, on_done=None):
        self._pending += 1

        def run():
            try:
                result, error = fn(*args), None
            except Exception as exc:  # noqa: BLE001 - reported to the GUI as a notification
                result, error = None, exc
            self._finished.emit(on_done, result, error)

        return self._pool.submit(run)

    def _deliver(self, on_done, result, error):
        self._pending -= 1
        if on_done is not None:
            on_done(result, error)

    def wait(self) -> None:
        """Block until all submitted jobs ran (their callbacks follow on the event loop)."""
        self._pool.submit(lambda: None).result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
