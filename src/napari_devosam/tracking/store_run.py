"""A run on an annotation store across three threads (the Propagate panel's), without Qt.

A store has one thread that reads and writes it (the annotator's store thread); propagation
runs in another, on a copy:

1. ``prepare_store_run`` (store thread): the seed plane (the selected object's, for
   "propagate from here"), the checks, and a ``StoreSnapshot`` of the line of planes the run
   reads, in a ``StoreRun``;
2. ``run_in_store`` (propagation worker): ``store_tracks.propagate_in_store`` on the
   snapshot, with the ``PrefetchingEmbeddings`` of the run's planes (``StoreRun.order``),
   yielding ``Progress`` and returning a ``StorePlan``; nothing is written;
3. ``apply_and_review`` (store thread): ``apply_plan`` (one undo step) and the review entries
   with the store's object ids (new tracks' placeholder ids mapped to the objects made).

``tracks_data`` (store thread) gives the napari Tracks layer's data of a line of planes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from napari_devosam.tracking.request import TrackingRequest
from napari_devosam.tracking.store_tracks import StoreSnapshot
from napari_devosam.utils.text import plane_name


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


@dataclass
class StoreRun:
    """A run ready to start: the ``store`` it read, the ``request`` with its seed plane
    settled, the seed ``object_ids`` (None: every committed object of the plane) and the
    ``snapshot`` it propagates on."""

    store: object
    request: TrackingRequest
    object_ids: list[int] | None
    snapshot: StoreSnapshot

    @property
    def order(self) -> list[tuple]:
        """The planes the run visits, in order (forward leg first): ``request.route``."""
        return self.request.route.planes


def prepare_store_run(store, request: TrackingRequest) -> StoreRun:
    """On the store thread: the ``StoreRun`` of ``request`` on ``store``.

    Raises ``ValueError`` (for a notification) when there is nothing to propagate: the
    selected object is gone, the plane has no committed objects, or the seed plane lies
    outside ``request.bounds``."""
    from napari_devosam.tracking.store_tracks import seeds_from_store

    plane, ids = tuple(request.plane), None
    if request.selected is not None:
        record = store.objects.get(int(request.selected))
        if record is None:
            raise ValueError(f"object {request.selected} no longer exists: select another one")
        plane, ids = tuple(record["plane"]), [int(request.selected)]
    seeds_from_store(store, plane, ids)  # raises when the plane has no objects
    lo, hi = request.bounds
    if not lo <= plane[request.axis] <= hi:
        raise ValueError(f"the seed plane ({plane_name(plane)}) lies outside the range "
                         f"{lo}..{hi}")
    settled = replace(request, shape=tuple(store.shape), plane=plane)
    settled.route  # noqa: B018 - computed here, once: a bad range is refused on this thread
    return StoreRun(store, settled, ids, StoreSnapshot(store, plane, request.axis))


def run_in_store(sam, image, run: StoreRun, embeddings, **hooks):
    """Propagate in the worker with ``embeddings`` (``embedding_for``, closed at the end);
    yields ``Progress``, returns the ``StorePlan``. ``hooks``: ``decoder`` of
    ``propagate``."""
    from napari_devosam.tracking.store_tracks import propagate_in_store

    request = run.request
    try:
        return (yield from propagate_in_store(
            sam, image, run.snapshot, request.plane, object_ids=run.object_ids,
            axis=request.axis, direction=request.direction, bounds=request.bounds,
            params=request.params, redo=request.redo, route=request.route,
            embedding_for=embeddings, **hooks))
    finally:
        embeddings.close()


def apply_and_review(store, run: StoreRun, plan, info) -> tuple[list[int], list[ReviewEntry],
                                                                bool]:
    """On the store thread: commit ``plan`` as one undo step; the new object ids, the review
    entries with the store's ids, and whether an undo step was recorded (not when the run
    neither added nor removed anything). Refuses (``RuntimeError``) when ``store`` is not the
    one the run read."""
    from napari_devosam.tracking.store_tracks import apply_plan, plan_changes, track_table

    if store is not run.store:
        raise RuntimeError("the image changed during the run")
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
