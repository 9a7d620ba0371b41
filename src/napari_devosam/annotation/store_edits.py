"""Pixel edits of an ``AnnotationStore`` (brush, eraser, fill corrections) as undo steps.

A mixin of ``annotation.store.AnnotationStore``. An edit action is ``{"kind": "edit",
"plane", "pixels" (flat indices into the plane), "old", "new" (their values before/after),
"records": {id: (record before or None, record after or None)}, "objects": [{"id"}...]}``;
``AnnotationStore._apply`` hands it to ``_apply_edit``. It is saved like a commit (the plane
file, then ``store.json``, atomically) and undone/redone on the same stack.

Rules (the store's id rules hold): painting with the id of an object of the same plane
grows it; painting 0 erases; an object erased completely is removed (like a delete); any other
id becomes a new object (``"source": "manual"``, no prompts), keeping its id when it is at
least ``next_id`` and getting a fresh one otherwise (ids are never reused, and an object lives
on one plane).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np


class ManualEdits:
    """``apply_edit``: pixel corrections of one plane, one undo step."""

    def apply_edit(self, plane_index, pixels, values, previous=None) -> list[int]:
        """Set the plane's pixels ``pixels`` (flat indices into the ``(H, W)`` plane) to
        ``values`` (label ids; 0 erases) and persist, as one undo step.

        ``previous``: the values before the change when the caller already wrote ``values``
        into ``labels`` (a viewer painting the live array); default: read from ``labels``.
        Returns the ids of the objects it created. Raises ``ValueError`` for a bad plane or
        mismatched sizes, and ``OSError`` when the store cannot be written (the pixels then
        hold ``previous`` again).
        """
        plane_index = self._check_plane(plane_index)
        flat = self._plane_view(plane_index).ravel()
        pixels = np.asarray(pixels, dtype=np.int64).reshape(-1)
        values = np.broadcast_to(np.asarray(values, dtype=np.uint32), pixels.shape).copy()
        if pixels.size and (pixels.min() < 0 or pixels.max() >= flat.size):
            raise ValueError(f"pixel indices outside the plane of {flat.size} pixels")
        if previous is None:
            previous = flat[pixels].copy()
        previous = np.broadcast_to(np.asarray(previous, dtype=np.uint32), pixels.shape).copy()
        mine = {i for i, o in self._objects.items() if tuple(o["plane"]) == plane_index}
        created, painted = [], values.copy()
        for value in np.unique(painted):
            if value == 0 or int(value) in mine:
                continue
            new_id = max(int(value), self._next_id)
            values[painted == value] = new_id
            self._next_id = new_id + 1
            created.append(new_id)
        flat[pixels] = values
        records = self._edit_records(plane_index, flat, set(np.unique(previous).tolist())
                                     | set(np.unique(values).tolist()), created)
        action = {"kind": "edit", "plane": plane_index, "pixels": pixels, "old": previous,
                  "new": values, "records": records,
                  "objects": [{"id": i} for i in sorted(records)]}
        self._persist_or_revert(action, forward=True)
        self._undo.append(action)
        self._redo.clear()
        return created

    def _edit_records(self, plane_index, flat, ids, created) -> dict:
        """Update the records of ``ids`` after an edit; returns ``{id: (before, after)}``."""
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        records = {}
        for oid in sorted(int(i) for i in ids if i):
            before = self._objects.get(oid)
            area = int(np.count_nonzero(flat == oid))
            if not area:
                after = None
            elif oid in created or before is None:
                after = {"plane": list(plane_index), "prompts": {}, "created": stamp,
                         "area": area, "source": "manual"}
            else:
                after = {**before, "area": area, "edited": stamp}
            records[oid] = (before, after)
            self._set_record(oid, after)
        return records

    def _set_record(self, oid, record) -> None:
        if record is None:
            self._objects.pop(oid, None)
        else:
            self._objects[oid] = record

    def _apply_edit(self, action, forward) -> None:
        flat = self._plane_view(action["plane"]).ravel()
        flat[action["pixels"]] = action["new"] if forward else action["old"]
        for oid, (before, after) in action["records"].items():
            self._set_record(oid, after if forward else before)
