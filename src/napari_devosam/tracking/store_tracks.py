"""Tracks in an ``AnnotationStore``: seeds from it, propagation results into it.

Every object record may carry ``"track"`` (its track id; default: the object's own id, so a
single committed object is a one-plane track) and ``"parent"`` (the mother's track id). The
same track id on two planes means the same cell. New tracks take the id of their first object
(ids are never reused, so track ids are unique too). These fields are optional: stores
written before tracking load and behave unchanged.

``propagate_in_store`` snapshots the line of planes it needs (``StoreSnapshot``), runs
``tracking.propagate`` and returns a ``StorePlan``; nothing changes until ``apply_plan``
commits it as one undo step (``AnnotationStore.apply_batch``). Rules: propagation never
overwrites a committed object; with ``redo=True`` ("propagate from here", e.g. after a
correction) the seed tracks' objects beyond the seed plane, and those of all their
descendants, are replaced; objects on ``overwrite_planes`` (planes the user chose) are
replaced whatever their track.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np

from napari_devosam.tracking.params import PropagationParams
from napari_devosam.tracking.propagate import propagate
from napari_devosam.tracking.records import Crop, Plane, Progress, PropagationResult, Seed
from napari_devosam.tracking.route import Route
from napari_devosam.utils.text import plane_name


def track_of(object_id: int, record: dict) -> int:
    """The track id of a store object (its own id when the record has none)."""
    track = record.get("track")
    return int(object_id if track is None else track)


def track_table(objects: dict[int, dict]) -> dict[int, dict]:
    """``{track: {"planes": {plane: object id}, "parent": track id or None}}`` from
    ``store.objects``."""
    table: dict[int, dict] = {}
    for oid, rec in sorted(objects.items()):
        entry = table.setdefault(track_of(oid, rec), {"planes": {}, "parent": None})
        entry["planes"][tuple(rec["plane"])] = oid
        if rec.get("parent") is not None:
            entry["parent"] = int(rec["parent"])
    return table


def descendants(table: dict[int, dict], tracks) -> set[int]:
    """``tracks`` and every track descending from them."""
    out, todo = set(), list(tracks)
    children: dict[int, list[int]] = {}
    for t, entry in table.items():
        if entry["parent"] is not None:
            children.setdefault(entry["parent"], []).append(t)
    while todo:
        t = todo.pop()
        if t not in out:
            out.add(t)
            todo.extend(children.get(t, []))
    return out


def seeds_from_store(store, plane, object_ids=None) -> list[Seed]:
    """Seeds from the committed objects on ``plane`` (all, or those in ``object_ids``).

    Raises ``ValueError`` when the plane has none of them."""
    plane = tuple(int(i) for i in plane)
    labels = store.labels[plane]
    seeds = []
    for oid, rec in sorted(store.objects.items()):
        if tuple(rec["plane"]) != plane or (object_ids is not None and oid not in object_ids):
            continue
        mask = labels == oid
        if mask.any():
            seeds.append(Seed(track_of(oid, rec), plane, mask, rec.get("parent")))
    if not seeds:
        raise ValueError(f"{plane_name(plane)} has no committed objects to propagate"
                         + _set_aside_note(store))
    return seeds


@dataclass
class StorePlan:
    """A finished run to apply: ``deletes`` (object ids replaced), ``result`` and the
    smallest object committed (``min_area`` pixels, once the pixels of objects kept are left
    out)."""

    result: PropagationResult
    deletes: list[int] = field(default_factory=list)
    min_area: int = 0  # PropagationParams.min_area: smaller objects are not committed


class StoreSnapshot:
    """What ``propagate_in_store`` reads of a store, copied: ``shape``, ``objects`` and the
    labels of the planes on the line through ``plane`` along ``axis`` (a dict by plane).

    Taken on the thread that owns the store; a run then never touches the live store."""

    def __init__(self, store, plane, axis: int):
        plane = tuple(int(i) for i in plane)
        self.shape = tuple(store.shape)
        self.objects = store.objects  # already a copy
        n = self.shape[axis]
        line = [plane[:axis] + (i,) + plane[axis + 1:] for i in range(n)]
        self.labels = {p: np.array(store.labels[p]) for p in line}


def _replaced(store, table, seeds, planes, redo: bool, overwrite) -> list[int]:
    """Object ids on ``planes`` that the run replaces."""
    objects = store.objects
    tracks = descendants(table, [s.track for s in seeds]) if redo else set()
    overwrite = {tuple(p) for p in overwrite}
    wanted = set(planes)
    return sorted(oid for oid, rec in objects.items()
                  if tuple(rec["plane"]) in wanted
                  and (track_of(oid, rec) in tracks or tuple(rec["plane"]) in overwrite))


def propagate_in_store(sam, image, store, plane, *, object_ids=None, axis: int = 0,
                       direction: str = "forward", bounds=None,
                       params: PropagationParams | None = None, cache=None,
                       normalization=None, redo: bool = False, overwrite_planes=(),
                       route: Route | None = None,
                       **hooks) -> Generator[Progress, None, StorePlan]:
    """Propagate the committed objects of ``plane`` through ``image`` (the store's image,
    ``(..., H, W)``); yields ``Progress``, returns a ``StorePlan`` for ``apply_plan``.

    The store is read once at the start (a ``StoreSnapshot``, unless ``store`` is one
    already) and never written here: a cancelled run leaves it exactly as it was. ``route``:
    the run's ``Route`` if computed already. ``hooks``: ``decoder`` and ``embedding_for`` of
    ``propagate``.
    """
    plane = tuple(int(i) for i in plane)
    if not isinstance(store, StoreSnapshot):
        store = StoreSnapshot(store, plane, axis) if store.shape[:-2] else store
    seeds = seeds_from_store(store, plane, object_ids)
    lead = tuple(store.shape[:-2])
    if route is None and lead:
        route = Route.through(lead, plane, axis, direction, bounds)
    planes = route.planes if lead else []
    table = track_table(store.objects)
    deletes = _replaced(store, table, seeds, planes, redo, overwrite_planes)
    gone = set(deletes)
    objects = store.objects
    snapshot = {p: store.labels[p] for p in planes}
    on_plane: dict[Plane, list[int]] = {}
    for oid, rec in objects.items():
        if oid not in gone and tuple(rec["plane"]) in snapshot:
            on_plane.setdefault(tuple(rec["plane"]), []).append(oid)
    seed_tracks = {s.track for s in seeds}

    def locked(p):
        lab = snapshot[p]
        return (lab != 0) & ~np.isin(lab, list(gone)) if gone else lab != 0

    def existing(p):
        return {track_of(oid, objects[oid]): Crop.from_mask(snapshot[p] == oid)
                for oid in on_plane.get(p, []) if track_of(oid, objects[oid]) in seed_tracks}

    result = yield from propagate(
        sam, image, seeds, axis=axis, direction=direction, bounds=bounds, params=params,
        cache=cache, normalization=normalization, locked_for=locked, existing_for=existing,
        route=route, **hooks)
    return StorePlan(result, deletes, (params or PropagationParams()).min_area)


def apply_plan(store, plan: StorePlan, info: dict | None = None) -> list[int]:
    """Commit a finished run as one undo step; returns the new object ids (0: no pixel left).
    A track's last object records why it ended (``"ended"``: "lost", "left the image", ...;
    not for divisions); the first object of a new track (``TrackedObject.start``) has
    ``"new_cell": True`` in its ``"prompts"`` (the review list reads it).

    Objects already deleted since the run started are skipped; new objects take only
    background pixels, as every commit does, and an object left with fewer than
    ``plan.min_area`` of them is not committed (id 0): new-user trial 20 propagated onto
    planes whose cells were already committed, and 1-18 px slivers of "new cells" between
    them were committed under a min area of 20."""
    if not plan_changes(store, plan):
        return []
    current = store.objects
    deletes = [i for i in plan.deletes if i in current]
    free = _free_pixels(store, deletes)
    commits = []
    last = {obj.track: i for i, obj in enumerate(plan.result.objects)}
    for i, obj in enumerate(plan.result.objects):
        record = {"track": obj.track, "parent": obj.parent, "confidence": obj.confidence,
                  "prompts": {"propagated": True, "predicted_iou": obj.pred_iou,
                              "iou_previous": obj.iou_prev, "division": obj.division,
                              **({"new_cell": True} if obj.start else {})},
                  **(info or {})}
        ended = plan.result.ended.get(obj.track)
        if last[obj.track] == i and ended is not None and ended[1] != "divided":
            record["ended"] = ended[1]  # why the track stops here (the lineage shows it)
        mask = obj.mask
        if plan.min_area and np.count_nonzero(mask & free(obj.plane)) < plan.min_area:
            mask = np.zeros_like(mask, dtype=bool)
        commits.append((obj.plane, mask, record))
    return store.apply_batch(deletes, commits)


def _free_pixels(store, deletes):
    """``free(plane)``: ``(H, W)`` bool, the plane's pixels a new object may take (background,
    or an object ``deletes`` removes), computed once per plane."""
    labels, gone, done = store.labels, np.asarray(deletes, dtype=np.int64), {}

    def free(plane):
        plane = tuple(plane)
        if plane not in done:
            lab = labels[plane]
            done[plane] = (lab == 0) | (np.isin(lab, gone) if gone.size else False)
        return done[plane]
    return free


def plan_changes(store, plan: StorePlan) -> bool:
    """Whether ``apply_plan`` would change ``store`` (and record an undo step): the run made
    objects, or some object it replaces still exists."""
    current = store.objects
    return bool(plan.result.objects) or any(i in current for i in plan.deletes)


def store_track_labels(store, plane, axis: int) -> tuple[np.ndarray, dict[int, int]]:
    """Track-id labels ``(F, H, W)`` int64 of the store's objects on the line of planes
    through ``plane`` along leading ``axis``, and ``{track: parent}`` of those tracks."""
    plane = tuple(int(i) for i in plane)
    n = store.shape[axis]
    objects = store.objects
    labels = np.zeros((n, *store.shape[-2:]), dtype=np.int64)
    parents, on_plane = {}, {}
    for oid, rec in objects.items():
        p = tuple(rec["plane"])
        if p[:axis] + p[axis + 1:] != plane[:axis] + plane[axis + 1:]:
            continue
        track = track_of(oid, rec)
        on_plane.setdefault(p, {})[oid] = track
        if rec.get("parent") is not None:
            parents[track] = int(rec["parent"])
    for p, tracks in on_plane.items():  # one lookup per plane, not one pass per object
        lut = np.zeros(max(tracks) + 1, dtype=np.int64)
        lut[list(tracks)] = list(tracks.values())
        ids = store.labels[p]
        labels[p[axis]] = np.where(ids < lut.size, lut[np.minimum(ids, lut.size - 1)], 0)
    return labels, parents


def tracks_layer_data(store, plane, axis: int) -> tuple[np.ndarray, dict[int, list[int]]]:
    """Data for a napari Tracks layer: ``(N, 4)`` float rows ``(track, index along axis, row,
    col)`` (centroids, sorted by track then index) and the lineage graph ``{daughter:
    [mother]}``."""
    labels, parents = store_track_labels(store, plane, axis)
    from napari_devosam.tracking.track_files import track_rows

    rows = track_rows(labels, parents)
    data = np.array([(r["track_id"], r["frame"], r["centroid_row"], r["centroid_col"])
                     for r in rows], dtype=np.float64).reshape(-1, 4)
    graph = {t: [p] for t, p in parents.items() if p in set(data[:, 0].astype(int).tolist())}
    return data, graph


def export_store_tracks(out_dir, store, plane, axis: int, geff: bool = False,
                        along_z: bool = False) -> dict:
    """Write the store's tracks on the line of planes through ``plane`` along leading ``axis``
    as they are (corrections included, nothing propagated) into ``out_dir``: the CTC result
    (``maskNNN.tif`` + ``res_track.txt``), ``tracks.csv`` and, with ``geff``, ``tracks.geff``.
    ``along_z``: the axis is Z (the CSV's ``z`` is then the frame index).

    Returns ``{"tracks": n (tracks.csv's), "ctc_tracks": n (the CTC result's: a track with a
    gap is split there), "divisions": n, "objects": n, "folder": Path}``. Raises
    ``ValueError`` when the line holds no object, or its tracks cannot be written in the CTC
    format (a daughter that starts before its mother).
    """
    from pathlib import Path

    from napari_devosam.tracking import track_files

    labels, parents = store_track_labels(store, plane, axis)
    if not labels.any():
        raise ValueError("no committed object on these planes: nothing to export"
                         + _set_aside_note(store))
    out = Path(out_dir)
    z_of_frame = track_files.frame_z(plane, along_z or (len(plane) == 2 and axis == 1))
    rows, track_rows = track_files.write_track_results(out, labels, parents, z_of_frame, geff)
    from napari_devosam.tracking.records import division_count

    return {"tracks": len({r["track_id"] for r in track_rows}), "ctc_tracks": len(rows),
            "divisions": division_count(parents), "objects": len(track_rows), "folder": out}


def _set_aside_note(store) -> str:
    """Where an unreadable store of this image went (``AnnotationStore.set_aside_note``); ""
    for a store snapshot, which has no folder."""
    note = getattr(store, "set_aside_note", None)
    return note() if note is not None else ""
