"""Embeddings of a run's planes, the next one computed while the current one decodes.

``PrefetchingEmbeddings`` is an ``embedding_for`` of ``tracking.propagate``: while propagation
decodes plane ``k``, one encoder thread embeds plane
``k + 1`` of the run's ``Route``, through a (locked) ``EmbeddingCache``, so planes embedded
before are not encoded again. Used by the Propagate panel's runs (``tracking.store_run``).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np


class PrefetchingEmbeddings:
    """``embedding_for(plane)`` that computes the next plane of ``order`` in the background.

    One encoder thread: asking for plane ``k`` queues ``k`` (unless it is queued already) and
    then ``k``'s successor, and waits for ``k`` only; so the encoder works on ``k + 1`` while
    the caller decodes ``k``. Embeddings go through ``cache`` (planes seen before are read,
    not encoded). ``close()`` drops queued planes; one running finishes into the cache.
    """

    def __init__(self, sam, image, order, cache=None, normalization=None):
        self.sam, self.image, self.cache, self.normalization = sam, image, cache, normalization
        self.order = [tuple(p) for p in order]
        self._next = {p: q for p, q in zip(self.order, self.order[1:], strict=False)}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="devosam-prefetch")
        self._futures: dict = {}
        self._lock = threading.Lock()
        self.handled: list = []  # planes the encoder thread took, in order

    def _compute(self, plane):
        from napari_devosam.engine.embeddings import embed_plane

        self.handled.append(plane)
        return embed_plane(self.sam, np.asarray(self.image[plane]), self.cache,
                           self.normalization)

    def _future(self, plane):
        future = self._futures.get(plane)
        if future is None:
            future = self._futures[plane] = self._pool.submit(self._compute, plane)
        return future

    def __call__(self, plane):
        plane = tuple(int(i) for i in plane)
        with self._lock:
            future = self._future(plane)
            following = self._next.get(plane)
            for other in [p for p in self._futures if p not in (plane, following)]:
                self._futures.pop(other).cancel()  # a leg that ended early
            if following is not None:
                self._future(following)
        try:
            return future.result()
        finally:
            with self._lock:
                self._futures.pop(plane, None)

    def close(self) -> None:
        with self._lock:
            for future in self._futures.values():
                future.cancel()
            self._futures.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
