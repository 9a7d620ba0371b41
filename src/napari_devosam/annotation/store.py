"""The annotation store of one image: committed objects, persisted at every change.

``AnnotationStore`` is the face; it is made of three parts, each with one job:

- ``committed.CommittedObjects``: the labels, object records and next id in memory, and the
  actions that change them (commit, delete; ``store_edits``: brush/eraser/fill corrections;
  ``store_batch``: many planes as one step);
- ``store_files.StoreFiles``: the folder's files (``store.json`` and one file per plane),
  written so that a process killed at any moment leaves the previous or the new state;
- ``history.History``: the undo/redo stacks.

Every change is done in memory, then saved (the touched planes, then ``store.json``); when
saving fails, the change is undone in memory and the error raised. An unreadable store is
never overwritten: the folder is renamed to ``<folder>.corrupt-<time>`` and
:class:`StoreCorruptError` says where it went.

Rules of the labels: ``0`` is background; ids are ``1, 2, ...`` and never reused, not even
after a delete or an undo. A new object takes only background pixels of its plane: it never
overwrites a committed object (draw over an object after deleting it). Undo/redo are
object-level, per session (the history is not stored). One process per store at a time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from napari_devosam.annotation import store_location
from napari_devosam.annotation.committed import CommittedObjects
from napari_devosam.annotation.history import History
from napari_devosam.annotation.store_batch import batch_action
from napari_devosam.annotation.store_edits import edit_action
from napari_devosam.annotation.store_files import (  # noqa: F401 - re-exported
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    StoreCorruptError,
    StoreFiles,
)
from napari_devosam.annotation.store_location import (  # noqa: F401 - re-exported
    StoreMismatchError,
    default_store_root,
    locate_store,
)
from napari_devosam.annotation.store_records import records_action

image_hash = store_location.image_hash  # re-exported: its home is store_location


def label_shape(image_shape, rgb: bool | None = None) -> tuple[int, ...]:
    """The labels' shape for an image: its shape without a trailing RGB(A) channel axis."""
    shape = tuple(int(s) for s in image_shape)
    if rgb is None:
        rgb = len(shape) >= 3 and shape[-1] in (3, 4)
    return shape[:-1] if rgb else shape


class AnnotationStore:
    """Committed labels of one image (full image shape, uint32) plus each object's prompts.

    ``AnnotationStore(folder, image_shape)`` opens the store in ``folder`` (creating it on
    the first change) or loads what is there; ``for_image`` picks the folder for an image.
    Raises ``StoreCorruptError`` (unreadable store, moved aside), ``StoreMismatchError`` (the
    store records another image hash) or ``ValueError`` (another shape).
    ``history`` holds the session's undo/redo steps.
    """

    location = None  # the StoreLocation when opened with ``for_image``

    def __init__(self, folder, image_shape=None, *, image_hash: str | None = None,
                 image_path=None, rgb: bool | None = None):
        self.folder = Path(folder)
        self.image_hash = image_hash
        self.image_path = str(image_path) if image_path else None
        self.history = History()
        self._content = CommittedObjects(
            label_shape(image_shape, rgb) if image_shape is not None else None)
        self._files = StoreFiles(self.folder)
        if self._files.exists():
            self.load()
        elif self._content.shape is None:
            raise FileNotFoundError(f"no annotation store in {self.folder}")

    # -- choosing a folder ------------------------------------------------------------------
    @classmethod
    def for_image(cls, image_path, image_data, project_dir=None, *, rgb: bool | None = None):
        """The store of an image, in the folder ``store_location.locate_store`` picks (next
        to the file, else ``<project_dir or user data dir>/<hash>.devosam``; a folder holding
        another image's store is left alone). ``store.location`` tells where and whether it
        is writable. ``image_data`` may be lazy (dask): it is hashed block by block.
        Raises ``StoreCorruptError`` for an unreadable store (moved aside).
        """
        if not hasattr(image_data, "shape"):
            image_data = np.asarray(image_data)
        shape = label_shape(image_data.shape, rgb)
        location = locate_store(image_path, image_data, project_dir, label_shape=shape)
        store = cls(location.folder, image_data.shape, image_hash=location.image_hash,
                    image_path=image_path, rgb=rgb)
        store.location = location
        return store

    # -- reading ----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._content.shape

    @property
    def labels(self) -> np.ndarray:
        """The live labels array (image shape, uint32). Change it only through this class."""
        return self._content.labels

    @property
    def objects(self) -> dict[int, dict]:
        """id -> ``{"plane": [...], "prompts": {...}, "created": iso time, "area": int, ...}``.
        A copy: changing it changes nothing."""
        records = self._content.records
        copy = json.loads(json.dumps({str(k): v for k, v in records.items()}))
        return {int(k): v for k, v in copy.items()}

    def track_fields(self) -> dict[int, tuple]:
        """``{id: (plane tuple, track, parent or None, ended or None)}`` of every object (the
        track fields of ``store_records``; track defaults to the id), read without copying
        the records: what a lineage view needs, fast for 100 000s of objects."""
        out = {}
        for oid, rec in self._content.records.items():
            track = rec.get("track")
            out[oid] = (tuple(rec["plane"]), int(oid if track is None else track),
                        rec.get("parent"), rec.get("ended"))
        return out

    @property
    def next_id(self) -> int:
        return self._content.next_id

    @property
    def can_undo(self) -> bool:
        return self.history.can_undo

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo

    def planes(self) -> list[tuple[int, ...]]:
        """Plane indices that hold at least one object, sorted."""
        return self._content.planes()

    def set_aside_note(self) -> str:
        """``""``, or where unreadable stores of this folder were moved (``StoreCorruptError``),
        as a clause for a message that finds no objects: ``" (an unreadable store ... was
        moved to ...)"``."""
        kept = sorted(self.folder.parent.glob(f"{self.folder.name}.corrupt-*"))
        if not kept:
            return ""
        return (f" (an unreadable store of this image was moved to {kept[-1]}"
                + (f" and {len(kept) - 1} earlier" if len(kept) > 1 else "") + ")")

    def object_at(self, plane_index, point) -> int:
        """The id under ``point`` ``(row, col)`` on a plane, 0 for background or outside."""
        plane = self._content.plane(plane_index)
        r, c = (int(round(float(x))) for x in point)
        if 0 <= r < plane.shape[0] and 0 <= c < plane.shape[1]:
            return int(plane[r, c])
        return 0

    # -- changing ---------------------------------------------------------------------------
    def commit(self, plane_index, masks, prompts=None, info: dict | None = None) -> list[int]:
        """Add one object per mask on plane ``plane_index`` (the leading indices, ``()`` for a
        2D image) and persist. ``masks``: ``(H, W)`` bool arrays; ``prompts``: one dict per
        mask (JSON-able; numpy values are converted) or None; ``info``: extra fields stored
        with every object (e.g. the model). Each object takes only pixels that are background
        at commit time. Returns the new ids, one per mask; 0 for a mask that added no pixel.
        """
        action, ids = self._content.commit_action(plane_index, masks, prompts, info)
        self._keep(action)
        return ids

    def delete(self, object_id: int) -> None:
        """Remove one committed object (its id is not reused) and persist."""
        self._keep(self._content.delete_action(object_id))

    def apply_edit(self, plane_index, pixels, values, previous=None) -> list[int]:
        """Set the plane's pixels ``pixels`` (flat indices into the ``(H, W)`` plane) to
        ``values`` (label ids; 0 erases) and persist, as one undo step (rules:
        ``store_edits``).

        ``previous``: the values before the change when the caller already wrote ``values``
        into ``labels`` (a viewer painting the live array); default: read from ``labels``.
        Returns the ids of the objects it created. Raises ``ValueError`` for a bad plane or
        mismatched sizes, and ``OSError`` when the store cannot be written (the pixels then
        hold ``previous`` again).
        """
        action, created = edit_action(self._content, plane_index, pixels, values, previous)
        self._keep(action)
        return created

    def apply_batch(self, deletes=(), commits=(), next_id: int | None = None) -> list[int]:
        """Delete the objects ``deletes`` (ids), then commit ``commits`` (``(plane, mask (H, W)
        bool, record dict)``, each taking only background pixels), persisted as one undo step.
        A negative ``"track"`` in a record stands for the id of the first object committed
        with it (a new track), in that record and in later ``"parent"`` fields. Returns the new
        ids, one per commit (0: no pixel added). ``next_id``: new ids start at least there.
        ``commits`` may be a generator (read once). Unknown ids raise ``ValueError``."""
        action, ids = batch_action(self._content, deletes, commits, next_id)
        self._keep(action)
        return ids

    def change_tracks(self, changes: dict[int, dict], deletes=(),
                      next_id: int | None = None) -> bool:
        """Set the track fields of objects (``changes``: ``{id: {"track" | "parent" | "ended":
        value, None removes it}}``) and delete the objects ``deletes``, persisted as one undo
        step; no other pixel or record changes (rules: ``store_records``). ``next_id``: the
        next free id becomes at least this (new track ids). Returns whether anything changed
        (an undo step was recorded). ``ValueError`` for unknown ids or other fields."""
        action = records_action(self._content, changes, deletes, next_id)
        self._keep(action)
        return action is not None

    def undo(self) -> dict | None:
        """Undo the last commit, delete or edit; returns ``{"kind", "plane", "ids"}`` or None."""
        return self._summary(self.history.step(False, self._replay))

    def redo(self) -> dict | None:
        """Redo the last undone action; returns ``{"kind", "plane", "ids"}`` or None."""
        return self._summary(self.history.step(True, self._replay))

    @staticmethod
    def _summary(action) -> dict | None:
        if action is None:
            return None
        return {"kind": action.get("what", action["kind"]), "plane": action["plane"],
                "ids": [c["id"] for c in action["objects"]]}

    def _keep(self, action) -> None:
        """Save an action done in memory and make it the next undo step (None: nothing)."""
        if action is not None:
            self._save_or_revert(action, forward=True)
            self.history.record(action)

    def _replay(self, action, forward) -> None:
        self._content.apply(action, forward=forward)
        self._save_or_revert(action, forward)

    def _save_or_revert(self, action, forward) -> None:
        try:
            self.save(planes=action.get("planes", [action["plane"]]))
        except BaseException:
            self._content.apply(action, forward=not forward)
            raise

    # -- disk -------------------------------------------------------------------------------
    def save(self, planes=None) -> None:
        """Write the given planes (default: all with objects) and then ``store.json``,
        atomically; afterwards delete plane files no longer referenced."""
        planes = self.planes() if planes is None else [tuple(p) for p in planes]
        self._files.write(self._content, planes, {
            "shape": list(self.shape), "hash": self.image_hash, "path": self.image_path})

    def load(self) -> None:
        """(Re)read the store from disk; the undo history is cleared."""
        found = self._files.read()
        if self.shape is not None and found.shape != self.shape:
            raise ValueError(
                f"the annotation store {self.folder} belongs to an image of shape "
                f"{found.shape}, not {self.shape}"
            )
        stored_hash = found.image.get("hash")
        if self.image_hash and stored_hash and stored_hash != self.image_hash:
            raise StoreMismatchError(f"the annotation store {self.folder} belongs to other "
                                     f"pixels (image hash {stored_hash[:12]}...)")
        self.image_hash = self.image_hash or stored_hash
        self.image_path = self.image_path or found.image.get("path")
        self._content.reset(found.shape, found.labels, found.records, found.next_id)
        self._files.adopt(found)
        self.history.clear()
