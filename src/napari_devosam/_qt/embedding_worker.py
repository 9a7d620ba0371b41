"""Computing plane embeddings for the annotator in napari ``thread_worker``s.

``EmbeddingJobs`` keeps the embeddings of recently visited planes in memory, starts one
worker for the plane the user looks at (with an indeterminate bar in napari's activity dock)
and one for "Precompute all planes" (a bar counting planes). Results come back on the GUI
thread through ``ready(plane, embedding)``; results of an outdated request (another model or
image since) are dropped. ``cancel()`` stops what can be stopped: a stack between planes, a
plane before its encoder starts (a running encoder finishes; its result is cached).

``to_embed(planes)`` counts the planes not known to be in the cache (embedded here, by a
finished Precompute or by a run: ``mark_cached``), for the estimates before long work; with
no cache folder on disk every plane counts (the memory holds only a few).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict

import numpy as np
from qtpy.QtCore import QObject, Signal

from napari_devosam._qt.workers import create_job
from napari_devosam.engine.embeddings import embed_plane, embed_stack
from napari_devosam.utils.background import niced
from napari_devosam.utils.text import plane_name

MEMORY_PLANES = 8


def _plane_job(sam, plane_data, cache, normalization):
    yield  # a worker cancelled before it starts never runs the encoder
    return embed_plane(sam, plane_data, cache, normalization)


def _stack_job(sam, stack, cache, normalization):
    # at low priority, so that clicks stay fast while the whole stack is embedded
    yield from niced(embed_stack, sam, stack, cache, normalization, keep=False)


def _emit(obj, name: str, *args) -> None:
    """Emit ``obj.name`` unless the Qt object is gone (its widget closed while a worker ran)."""
    with contextlib.suppress(RuntimeError):
        getattr(obj, name).emit(*args)


class EmbeddingJobs(QObject):
    """Embeddings of one image's planes for one model."""

    ready = Signal(object, object)  # plane, PlaneEmbedding
    busy_changed = Signal()
    precompute_done = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._memory: OrderedDict[tuple, object] = OrderedDict()
        self._plane_worker = None
        self._plane_worker_plane = None
        self._stack_worker = None
        self._generation = 0
        self._announced: set[str] = set()
        self._cached: set[tuple] = set()  # planes of this image and model known in the cache
        self._all_cached = False  # a Precompute of this image and model finished
        self.sam = self.cache = self.normalization = self.image = None

    def reset(self, sam, cache, image_data, normalization=None) -> None:
        """Use another model and/or image: forget embeddings held and outdated requests."""
        self.cancel()
        # a cancelled worker may still run: a new request must not wait for its (dropped) result
        self._plane_worker = self._plane_worker_plane = None
        self._generation += 1
        self._memory.clear()
        self._cached.clear()
        self._all_cached = False
        self.sam, self.cache, self.image, self.normalization = sam, cache, image_data, \
            normalization

    def mark_cached(self, planes) -> None:
        """``planes`` (index tuples) of the current image went into the cache (a run)."""
        self._cached.update(tuple(p) for p in planes if p is not None)

    def to_embed(self, planes) -> int:
        """How many of ``planes`` (index tuples) are not known to be in the cache."""
        planes = [tuple(p) for p in planes]
        folder = getattr(self.cache, "cache_dir", None)
        if folder is None or getattr(self.cache, "disk_error", None):
            return len(planes)
        if self._all_cached:
            return 0
        return sum(1 for p in planes if p not in self._cached)

    @property
    def computing_plane(self):
        """The plane whose embedding a worker is computing, or None."""
        return self._plane_worker_plane if self._plane_worker is not None else None

    @property
    def precomputing(self) -> bool:
        return self._stack_worker is not None

    def request(self, plane: tuple) -> bool:
        """Get ``plane``'s embedding: at once (returns True, ``ready`` emitted) when held in
        memory, else from a worker (False; ``ready`` follows)."""
        if self.sam is None or self.image is None:
            return False
        emb = self._memory.get(plane)
        if emb is not None:
            self._memory.move_to_end(plane)
            self.ready.emit(plane, emb)
            return True
        if self._plane_worker is not None:
            if self._plane_worker_plane == plane:
                return False
            self._plane_worker.quit()
        data = np.asarray(self.image[plane])
        gen = self._generation
        worker = create_job(
            _plane_job, self.sam, data, self.cache, self.normalization,
            progress={"total": 0, "desc": f"SAM embedding of {plane_name(plane)}"},
        )
        worker.returned.connect(lambda emb, p=plane, g=gen: self._on_plane(p, g, emb))
        worker.errored.connect(self._on_error)
        worker.finished.connect(lambda w=worker: self._plane_finished(w))
        self._plane_worker, self._plane_worker_plane = worker, plane
        worker.start()
        self.busy_changed.emit()
        return False

    def _announce_cache(self) -> None:
        """One notification per cache failure: embeddings then stay in memory only."""
        error = getattr(self.cache, "disk_error", None)
        if error and error not in self._announced:
            from napari.utils.notifications import show_warning

            self._announced.add(error)
            show_warning(f"{error}; embeddings are kept in memory only (the annotator works, "
                         "but revisited planes may be computed again)")

    def _on_plane(self, plane, generation, emb) -> None:
        self._announce_cache()
        if generation != self._generation or emb is None:
            return
        self._memory[plane] = emb
        self._cached.add(tuple(plane))
        self._memory.move_to_end(plane)
        while len(self._memory) > MEMORY_PLANES:
            self._memory.popitem(last=False)
        _emit(self, "ready", plane, emb)

    def _plane_finished(self, worker) -> None:
        if self._plane_worker is worker:
            self._plane_worker = self._plane_worker_plane = None
            _emit(self, "busy_changed")

    def precompute(self, n_planes: int):
        """Embed (and cache) every plane of the image in a worker; returns the worker."""
        if self.sam is None or self.image is None or self._stack_worker is not None:
            return None
        worker = create_job(
            _stack_job, self.sam, self.image, self.cache, self.normalization,
            progress={"total": n_planes, "desc": "SAM embeddings of all planes"},
        )
        worker.errored.connect(self._on_error)
        worker.returned.connect(lambda _, g=self._generation: self._precomputed(g))
        worker.finished.connect(lambda w=worker: self._stack_finished(w))
        self._stack_worker = worker
        worker.start()
        self.busy_changed.emit()
        return worker

    def _precomputed(self, generation) -> None:
        if generation == self._generation:  # every plane of this image, this model
            self._all_cached = True

    def _stack_finished(self, worker) -> None:
        self._announce_cache()
        if self._stack_worker is worker:
            self._stack_worker = None
            _emit(self, "busy_changed")
            _emit(self, "precompute_done")

    def _on_error(self, exc) -> None:
        from napari.utils.notifications import show_error

        show_error(f"Computing the SAM embedding failed: {exc}")

    def cancel(self) -> None:
        for worker in (self._plane_worker, self._stack_worker):
            if worker is not None:
                worker.quit()
