"""Multi-plane changes of an ``AnnotationStore`` as one undo step (used by tracking).

A mixin of ``annotation.store.AnnotationStore``: it uses the store's in-memory action format
(``{"kind", "plane", "objects": [{"id", "pixels", "record"}]}``). A batch action is
``{"kind": "batch", "steps": [delete and commit actions], "planes": [...], "objects": [the
committed changes]}``; ``AnnotationStore._apply`` replays its steps in order (undo: reversed)
and ``save`` writes every plane it touches before the single ``store.json`` replacement, so
a batch is atomic on disk like a single commit.

Track fields (all optional, so stores written before tracking load unchanged): ``"track"``
(the track id; default: the object's own id) and ``"parent"`` (the mother's track id).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from napari_devosam.utils.jsonable import jsonable


class BatchEdits:
    """``apply_batch``: deletes plus commits over many planes, one undo step."""

    def _delete_action(self, object_id: int) -> dict:
        record = self._objects[object_id]
        plane_index = tuple(record["plane"])
        pixels = np.flatnonzero(self._plane_view(plane_index).ravel() == object_id)
        return {"kind": "delete", "plane": plane_index,
                "objects": [{"id": object_id, "pixels": pixels, "record": record}]}

    def apply_batch(self, deletes=(), commits=()) -> list[int]:
        """Delete the objects ``deletes`` (ids), then commit ``commits`` (``(plane, mask (H, W)
        bool, record dict)``, each taking only background pixels), persisted as one undo step.
        A negative ``"track"`` in a record stands for the id of the first object committed
        with it (a new track), in that record and in later ``"parent"`` fields. Returns the new
        ids, one per commit (0: no pixel added). Unknown ids raise ``ValueError``."""
        if any(int(i) not in self._objects for i in deletes):
            raise ValueError(f"unknown object ids in {list(deletes)}")
        steps, ids, new_tracks = [], [], {}
        created = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            for oid in deletes:
                steps.append(self._delete_action(int(oid)))
                self._apply(steps[-1], forward=True)
            for plane_index, mask, record in commits:
                plane_index = self._check_plane(plane_index)
                view = self._plane_view(plane_index)
                free = np.flatnonzero(np.asarray(mask, dtype=bool).ravel() & (view.ravel() == 0))
                ids.append(self._next_id if free.size else 0)
                if free.size:
                    record = {"plane": list(plane_index), "created": created,
                              "area": int(free.size), **jsonable(record)}
                    track, parent = record.get("track"), record.get("parent")
                    if track is not None and track < 0:
                        record["track"] = new_tracks.setdefault(track, self._next_id)
                    if parent is not None and parent < 0:
                        record["parent"] = new_tracks.get(parent)
                    steps.append({"kind": "commit", "plane": plane_index, "objects": [
                        {"id": self._next_id, "pixels": free, "record": record}]})
                    self._next_id += 1
                    self._apply(steps[-1], forward=True)
        except BaseException:
            for step in reversed(steps):
                self._apply(step, forward=False)
            raise
        if steps:
            action = {"kind": "batch", "plane": steps[0]["plane"], "steps": steps,
                      "planes": sorted({s["plane"] for s in steps}),
                      "objects": [c for s in steps if s["kind"] == "commit" for c in s["objects"]]}
            self._persist_or_revert(action, forward=True)
            self._undo.append(action)
            self._redo.clear()
        return ids
