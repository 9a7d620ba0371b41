"""Multi-plane changes of an ``AnnotationStore`` as one undo step (used by tracking).

A batch action is ``{"kind": "batch", "steps": [delete and commit actions], "planes": [...],
"objects": [the committed changes]}`` (the action format of ``committed``).
``CommittedObjects.apply`` replays its steps in order (undo: reversed) and the store writes
every plane it touches before the single ``store.json`` replacement, so a batch is atomic on
disk like a single commit.

Track fields (all optional, so stores written before tracking load unchanged): ``"track"``
(the track id; default: the object's own id) and ``"parent"`` (the mother's track id).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from napari_devosam.utils.jsonable import jsonable


def batch_action(content, deletes=(), commits=(), next_id: int | None = None
                 ) -> tuple[dict | None, list[int]]:
    """Delete the objects ``deletes`` (ids), then commit ``commits`` (``(plane, mask (H, W)
    bool, record dict)``, each taking only background pixels) in ``content`` (a
    ``CommittedObjects``). A negative ``"track"`` in a record stands for the id of the first
    object committed with it (a new track), in that record and in later ``"parent"`` fields.
    ``next_id``: the new objects' ids start at least there (an import whose track ids lie
    below them); ids skipped are never used, like every id.

    Returns ``(the action, or None when nothing changed; the new ids, one per commit, 0: no
    pixel added)``. Unknown ids raise ``ValueError``; on any error nothing has changed.
    """
    if any(int(i) not in content.records for i in deletes):
        raise ValueError(f"unknown object ids in {list(deletes)}")
    if next_id is not None:
        content.next_id = max(content.next_id, int(next_id))
    steps, ids, new_tracks = [], [], {}
    created = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        for oid in deletes:
            steps.append(content.delete_action(int(oid)))
        for plane_index, mask, record in commits:
            plane_index = content.check_plane(plane_index)
            view = content.plane(plane_index)
            free = np.flatnonzero(np.asarray(mask, dtype=bool).ravel() & (view.ravel() == 0))
            ids.append(content.next_id if free.size else 0)
            if free.size:
                record = {"plane": list(plane_index), "created": created,
                          "area": int(free.size), **jsonable(record)}
                track, parent = record.get("track"), record.get("parent")
                if track is not None and track < 0:
                    record["track"] = new_tracks.setdefault(track, content.next_id)
                if parent is not None and parent < 0:
                    record["parent"] = new_tracks.get(parent)
                steps.append({"kind": "commit", "plane": plane_index, "objects": [
                    {"id": content.take_id(), "pixels": free, "record": record}]})
                content.apply(steps[-1], forward=True)
    except BaseException:
        for step in reversed(steps):
            content.apply(step, forward=False)
        raise
    if not steps:
        return None, ids
    action = {"kind": "batch", "plane": steps[0]["plane"], "steps": steps,
              "planes": sorted({s["plane"] for s in steps}),
              "objects": [c for s in steps if s["kind"] == "commit" for c in s["objects"]]}
    return action, ids
