"""What an ``AnnotationStore`` holds in memory, and the actions that change it.

``CommittedObjects`` owns the labels array (the image's shape without RGB, ``uint32``), the
record of every object and the next free id. Every change is an *action*, a dict that can be
done and undone:

- ``{"kind": "commit" | "delete", "plane", "objects": [{"id", "pixels" (flat indices into
  the plane), "record"}]}``;
- ``{"kind": "edit", ...}``: brush/eraser/fill corrections (``store_edits``);
- ``{"kind": "batch", "steps": [...], "planes": [...], ...}``: many planes, one undo step
  (``store_batch``);
- ``{"kind": "records", ...}``: track fields of records, no pixel (``store_records``).

The builders (``commit_action``, ``delete_action``, ``store_edits.edit_action``,
``store_batch.batch_action``) do their change in memory and return the action; ``apply``
replays one forward or backward (undo/redo, and rolling back a change that could not be
saved). Ids are never reused: ``next_id`` only grows.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from napari_devosam.annotation import store_edits, store_records
from napari_devosam.engine.stacks import PlaneIndex
from napari_devosam.utils.jsonable import jsonable
from napari_devosam.utils.text import plane_name


class CommittedObjects:
    """The labels, object records and next id of one store; ``shape`` may be None until
    ``reset`` gives it (a store opened from its folder alone)."""

    def __init__(self, shape: tuple[int, ...] | None) -> None:
        self.shape = shape
        self._labels: np.ndarray | None = None
        self.records: dict[int, dict] = {}
        self.next_id = 1

    @property
    def labels(self) -> np.ndarray:
        if self._labels is None:
            self._labels = np.zeros(self.shape, dtype=np.uint32)
        return self._labels

    def reset(self, shape, labels: np.ndarray, records: dict[int, dict], next_id: int) -> None:
        """Replace everything (a store read from disk)."""
        self.shape, self._labels = tuple(shape), labels
        self.records, self.next_id = records, int(next_id)

    # -- planes ---------------------------------------------------------------------------
    def check_plane(self, plane_index) -> PlaneIndex:
        """``plane_index`` as a tuple of ints; ``ValueError`` when it is not a plane here."""
        if not isinstance(plane_index, (tuple, list)):
            plane_index = np.atleast_1d(plane_index).tolist()
        index = tuple(int(i) for i in plane_index)
        lead = self.shape[:-2]
        if len(index) != len(lead) or any(not 0 <= i < n for i, n in zip(index, lead,
                                                                          strict=True)):
            raise ValueError(f"{plane_name(index)} does not fit labels of shape {self.shape}")
        return index

    def plane(self, plane_index) -> np.ndarray:
        """The live ``(H, W)`` view of one plane of ``labels``."""
        return self.labels[self.check_plane(plane_index)]

    def planes(self) -> list[PlaneIndex]:
        """Plane indices that hold at least one object, sorted."""
        return sorted({tuple(o["plane"]) for o in self.records.values()})

    def take_id(self) -> int:
        oid = self.next_id
        self.next_id += 1
        return oid

    def set_record(self, oid: int, record: dict | None) -> None:
        if record is None:
            self.records.pop(oid, None)
        else:
            self.records[oid] = record

    # -- actions --------------------------------------------------------------------------
    def commit_action(self, plane_index, masks, prompts=None, info=None):
        """One object per mask on a plane, each taking only background pixels (done in
        memory). Returns ``(action or None when no mask added a pixel, ids)``, one id per
        mask, 0 for a mask that added nothing. ``ValueError`` for a bad plane or shapes."""
        plane_index = self.check_plane(plane_index)
        masks = [np.asarray(m, dtype=bool) for m in masks]
        if prompts is None:
            prompts = [{} for _ in masks]
        if len(prompts) != len(masks):
            raise ValueError(f"got {len(masks)} masks but {len(prompts)} prompt sets")
        plane = self.plane(plane_index)
        for m in masks:
            if m.shape != plane.shape:
                raise ValueError(f"mask shape {m.shape} does not match the plane {plane.shape}")
        ids, changes = [], []
        created = datetime.now(UTC).isoformat(timespec="seconds")
        for mask, prompt in zip(masks, prompts, strict=True):
            free = np.flatnonzero(mask.ravel() & (plane.ravel() == 0))
            if free.size == 0:
                ids.append(0)
                continue
            oid = self.take_id()
            plane.ravel()[free] = oid  # the next masks see this object's pixels as taken
            record = {"plane": list(plane_index), "prompts": jsonable(prompt),
                      "created": created, "area": int(free.size), **jsonable(info or {})}
            changes.append({"id": oid, "pixels": free, "record": record})
            ids.append(oid)
        if not changes:
            return None, ids
        action = {"kind": "commit", "plane": plane_index, "objects": changes}
        self.apply(action, forward=True, paint=False)
        return action, ids

    def delete_action(self, object_id: int) -> dict:
        """Remove one object (done in memory); ``ValueError`` for an unknown id."""
        object_id = int(object_id)
        if object_id not in self.records:
            raise ValueError(f"there is no object with id {object_id}")
        record = self.records[object_id]
        plane_index = tuple(record["plane"])
        pixels = np.flatnonzero(self.plane(plane_index).ravel() == object_id)
        action = {"kind": "delete", "plane": plane_index,
                  "objects": [{"id": object_id, "pixels": pixels, "record": record}]}
        self.apply(action, forward=True)
        return action

    def apply(self, action: dict, forward: bool, paint: bool = True) -> None:
        """Do (``forward``) or revert an action in memory."""
        if action["kind"] == "edit":
            store_edits.apply_edit(self, action, forward)
            return
        if action["kind"] == "records":
            store_records.apply_records(self, action, forward)
            return
        if action["kind"] == "batch":
            for step in action["steps"] if forward else reversed(action["steps"]):
                self.apply(step, forward)
            return
        adds = (action["kind"] == "commit") == forward
        plane = self.plane(action["plane"]).ravel()
        for change in action["objects"]:
            if adds:
                if paint:
                    plane[change["pixels"]] = change["id"]
                self.records[change["id"]] = change["record"]
            else:
                plane[change["pixels"]] = 0
                self.records.pop(change["id"], None)
