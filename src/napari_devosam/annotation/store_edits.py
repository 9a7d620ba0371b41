"""Pixel edits of an ``AnnotationStore`` (brush, eraser, fill corrections) as undo steps.

An edit action is ``{"kind": "edit", "plane", "pixels" (flat indices into the plane), "old",
"new" (their values before/after), "records": {id: (record before or None, record after or
None)}, "objects": [{"id"}...]}``. ``edit_action`` builds it (and does it) on a
``committed.CommittedObjects``; ``apply_edit`` replays it either way. The store saves it like
a commit (the plane file, then ``store.json``, atomically) and undoes/redoes it on the same
history.

Rules (the store's id rules hold): painting with the id of an object of the same plane
grows it; painting 0 erases; an object erased completely is removed (like a delete); any other
id becomes a new object (``"source": "manual"``, no prompts), keeping its id when it is at
least ``next_id`` and getting a fresh one otherwise (ids are never reused, and an object lives
on one plane).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np


def edit_action(content, plane_index, pixels, values, previous=None) -> tuple[dict, list[int]]:
    """Set the plane's pixels ``pixels`` (flat indices into the ``(H, W)`` plane) to ``values``
    (label ids; 0 erases) in ``content`` (a ``CommittedObjects``), records included.

    ``previous``: the values before the change when the caller already wrote ``values`` into
    the labels (a viewer painting the live array); default: read from the labels. Returns
    ``(the action, ids of the objects it created)``. ``ValueError`` for a bad plane or pixel
    indices outside the plane.
    """
    plane_index = content.check_plane(plane_index)
    flat = content.plane(plane_index).ravel()
    pixels = np.asarray(pixels, dtype=np.int64).reshape(-1)
    values = np.broadcast_to(np.asarray(values, dtype=np.uint32), pixels.shape).copy()
    if pixels.size and (pixels.min() < 0 or pixels.max() >= flat.size):
        raise ValueError(f"pixel indices outside the plane of {flat.size} pixels")
    if previous is None:
        previous = flat[pixels].copy()
    previous = np.broadcast_to(np.asarray(previous, dtype=np.uint32), pixels.shape).copy()
    mine = {i for i, o in content.records.items() if tuple(o["plane"]) == plane_index}
    created, painted = [], values.copy()
    for value in np.unique(painted):
        if value == 0 or int(value) in mine:
            continue
        new_id = max(int(value), content.next_id)
        values[painted == value] = new_id
        content.next_id = new_id + 1
        created.append(new_id)
    flat[pixels] = values
    records = _edit_records(content, plane_index, flat, set(np.unique(previous).tolist())
                            | set(np.unique(values).tolist()), created)
    action = {"kind": "edit", "plane": plane_index, "pixels": pixels, "old": previous,
              "new": values, "records": records,
              "objects": [{"id": i} for i in sorted(records)]}
    return action, created


def _edit_records(content, plane_index, flat, ids, created) -> dict:
    """Update the records of ``ids`` after an edit; returns ``{id: (before, after)}``."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    records = {}
    for oid in sorted(int(i) for i in ids if i):
        before = content.records.get(oid)
        area = int(np.count_nonzero(flat == oid))
        if not area:
            after = None
        elif oid in created or before is None:
            after = {"plane": list(plane_index), "prompts": {}, "created": stamp,
                     "area": area, "source": "manual"}
        else:
            after = {**before, "area": area, "edited": stamp}
        records[oid] = (before, after)
        content.set_record(oid, after)
    return records


def apply_edit(content, action: dict, forward: bool) -> None:
    """Do (``forward``) or revert an edit action in ``content``."""
    flat = content.plane(action["plane"]).ravel()
    flat[action["pixels"]] = action["new"] if forward else action["old"]
    for oid, (before, after) in action["records"].items():
        content.set_record(oid, after if forward else before)
