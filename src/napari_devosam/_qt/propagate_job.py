"""The Propagate panel's work away from the GUI thread: snapshot, embeddings, apply, review.

- ``prepare`` (store thread): the seeds' plane and a ``StoreSnapshot`` of the line of planes
  the run reads, so that the propagation worker never touches the live store;
- ``PrefetchingEmbeddings`` (propagation worker): ``embedding_for`` of
  ``tracking.propagate``; the embedding of the next plane on the way is computed in another
  thread while the current plane decodes, through the annotator's (locked) embedding cache, so
  planes embedded before are not encoded again;
- ``propagation_job`` (propagation worker): ``store_tracks.propagate_in_store`` on the
  snapshot, yielding ``Progress``, returning a ``StorePlan``; nothing is written;
- ``apply_and_review`` (store thread): ``apply_plan`` (one undo step) and the review entries
  with the store's object ids;
- ``tracks_data`` (store thread): the Tracks layer's data for a line of planes.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np


@dataclass
class Request:
    """What the user asked for: seeds on ``plane`` (or the object ``selected``: "propagate
    from here"), along leading ``axis``, ``direction``, inclusive ``bounds``, ``params``."""

    plane: tuple | None
    axis: int
    direction: str
    bounds: tuple[int, int]
    params: object
    selected: int | None = None

    @property
    def redo(self) -> bool:
        return self.selected is not None


@dataclass
class ReviewEntry:
    """A row of the review list: ``object_id`` is 0 when no object is left there."""

    plane: tuple
    track: int
    object_id: int
    reason: str
    confidence: float

    def text(self) -> str:
        where = "plane " + ",".join(str(i) for i in self.plane)
        conf = "" if np.isnan(self.confidence) else f" ({self.confidence:.2f})"
        return f"{where}  track {self.track}: {self.reason}{conf}"


class StoreSnapshot:
    """What ``propagate_in_store`` reads of a store, copied: ``shape``, ``objects`` and the
    labels of the planes on the line through ``plane`` along ``axis`` (a dict by plane)."""

    def __init__(self, store, plane: tuple, axis: int):
        self.shape = tuple(store.shape)
        self.objects = store.objects  # already a copy
        n = self.shape[axis]
        line = [plane[:axis] + (i,) + plane[axis + 1:] for i in range(n)]
        self.labels = {p: np.array(store.labels[p]) for p in line}


def prepare(store, request: Request):
    """On the store thread: ``(store, seed plane, object ids or None, snapshot)``.

    Raises ``ValueError`` (for a notification) when there is nothing to propagate."""
    from napari_devosam.tracking.store_tracks import seeds_from_store

    plane, ids = request.plane, None
    if request.selected is not None:
        record = store.objects.get(int(request.selected))
        if record is None:
            raise ValueError(f"object {request.selected} no longer exists: select another one")
        plane, ids = tuple(record["plane"]), [int(request.selected)]
    seeds_from_store(store, plane, ids)  # raises when the plane has no objects
    lo, hi = request.bounds
    if not lo <= plane[request.axis] <= hi:
        raise ValueError(f"the seed plane {plane} lies outside the range {lo}..{hi}")
    return store, plane, ids, StoreSnapshot(store, plane, request.axis)


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


def visiting_order(shape, plane, request: Request) -> list[tuple]:
    """The planes a run visits, in order (forward leg first)."""
    from napari_devosam.tracking.propagate import plane_legs

    axis = request.axis
    legs = plane_legs(shape[axis], plane[axis], request.direction, request.bounds)
    return [plane[:axis] + (i,) + plane[axis + 1:] for leg in legs for i in leg]


def propagation_job(sam, image, snapshot, plane, ids, request: Request, embeddings):
    """Propagate in the worker; yields ``Progress``, returns the ``StorePlan``."""
    from napari_devosam.tracking.store_tracks import propagate_in_store

    try:
        return (yield from propagate_in_store(
            sam, image, snapshot, plane, object_ids=ids, axis=request.axis,
            direction=request.direction, bounds=request.bounds, params=request.params,
            redo=request.redo, embedding_for=embeddings))
    finally:
        embeddings.close()


def apply_and_review(store, expected, plan, info) -> tuple[list[int], list[ReviewEntry], bool]:
    """On the store thread: commit ``plan`` as one undo step; the new object ids, the review
    entries with the store's ids, and whether an undo step was recorded (not when the run
    neither added nor removed anything). Refuses (``RuntimeError``) when the store is not the
    one the run read."""
    from napari_devosam.tracking.store_tracks import apply_plan, plan_changes, track_table

    if store is not expected:
        raise RuntimeError("the image changed during the run: nothing was applied")
    stepped = plan_changes(store, plan)
    ids = apply_plan(store, plan, info)
    new_tracks: dict[int, int] = {}
    for obj, oid in zip(plan.result.objects, ids, strict=True):
        if obj.track < 0 and oid:
            new_tracks.setdefault(obj.track, oid)
    table = track_table(store.objects)
    entries = []
    for item in plan.result.review:
        track = new_tracks.get(item.track, item.track)
        oid = table.get(track, {"planes": {}})["planes"].get(tuple(item.plane), 0)
        entries.append(ReviewEntry(tuple(item.plane), track, int(oid), item.reason,
                                   float(item.confidence)))
    entries.sort(key=lambda e: (e.plane, e.track))
    return ids, entries, stepped


def tracks_data(store, plane, axis: int, only_if_tracked: bool = False):
    """On the store thread: ``(data, graph, object ids)`` for the Tracks layer of the line
    through ``plane`` along ``axis`` (``data`` None when it holds no object). With
    ``only_if_tracked``, None unless some object was made by propagation (a store reopened)."""
    from napari_devosam.tracking.store_tracks import tracks_layer_data

    objects = store.objects
    if only_if_tracked and not any("track" in r for r in objects.values()):
        return None
    data, graph = tracks_layer_data(store, plane, axis)
    return (data if len(data) else None), graph, set(objects)
