"""The annotation store of one image: committed objects, persisted at every change.

Layout of a store folder::

    store.json              the commit point: image info, next id, objects, plane files
    plane-<i>-<j>-v<N>.npz  labels of one plane (uint32), one file per plane with objects

Every change (commit, delete, undo, redo) writes the touched planes under new file names,
then atomically replaces ``store.json``, then removes the plane files it no longer names.
A process killed at any moment therefore leaves either the previous or the new state on
disk, never a mix. An unreadable store is never overwritten: the folder is renamed to
``<folder>.corrupt-<time>`` and :class:`StoreCorruptError` says where it went.

Rules of the labels: ``0`` is background; ids are ``1, 2, ...`` and never reused, not even
after a delete or an undo. A new object takes only background pixels of its plane: it never
overwrites a committed object (draw over an object after deleting it). Undo/redo are
object-level, per session (the history is not stored). One process per store at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from napari_devosam._version import __version__
from napari_devosam.annotation import store_location
from napari_devosam.annotation.store_batch import BatchEdits
from napari_devosam.annotation.store_edits import ManualEdits
from napari_devosam.annotation.store_location import (  # noqa: F401 - re-exported
    StoreMismatchError,
    default_store_root,
    locate_store,
)
from napari_devosam.utils.atomic import atomic_write, write_text
from napari_devosam.utils.jsonable import jsonable
from napari_devosam.utils.text import plane_name

FORMAT = "devosam-annotation-store"
FORMAT_VERSION = 1
MANIFEST = "store.json"
image_hash = store_location.image_hash  # re-exported: its home is store_location


class StoreCorruptError(RuntimeError):
    """A store folder that cannot be read; it has been moved aside, not overwritten."""


def label_shape(image_shape, rgb: bool | None = None) -> tuple[int, ...]:
    """The labels' shape for an image: its shape without a trailing RGB(A) channel axis."""
    shape = tuple(int(s) for s in image_shape)
    if rgb is None:
        rgb = len(shape) >= 3 and shape[-1] in (3, 4)
    return shape[:-1] if rgb else shape


def _plane_key(plane: tuple[int, ...]) -> str:
    return ",".join(str(i) for i in plane)


class AnnotationStore(BatchEdits, ManualEdits):
    """Committed labels of one image (full image shape, uint32) plus each object's prompts.

    ``AnnotationStore(folder, image_shape)`` opens the store in ``folder`` (creating it on
    the first change) or loads what is there; ``for_image`` picks the folder for an image.
    Raises ``StoreCorruptError`` (unreadable store, moved aside), ``StoreMismatchError`` (the
    store records another image hash) or ``ValueError`` (another shape).
    """

    location = None  # the StoreLocation when opened with ``for_image``

    def __init__(self, folder, image_shape=None, *, image_hash: str | None = None,
                 image_path=None, rgb: bool | None = None):
        self.folder = Path(folder)
        self._shape = label_shape(image_shape, rgb) if image_shape is not None else None
        self.image_hash = image_hash
        self.image_path = str(image_path) if image_path else None
        self._labels: np.ndarray | None = None
        self._objects: dict[int, dict] = {}
        self._planes: dict[str, str] = {}
        self._next_id = 1
        self._undo: list[dict] = []
        self._redo: list[dict] = []
        self._version = 0
        if (self.folder / MANIFEST).exists():
            self.load()
        elif self._shape is None:
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
        return self._shape

    @property
    def labels(self) -> np.ndarray:
        """The live labels array (image shape, uint32). Change it only through this class."""
        if self._labels is None:
            self._labels = np.zeros(self._shape, dtype=np.uint32)
        return self._labels

    @property
    def objects(self) -> dict[int, dict]:
        """id -> ``{"plane": [...], "prompts": {...}, "created": iso time, "area": int, ...}``.
        A copy: changing it changes nothing."""
        copy = json.loads(json.dumps({str(k): v for k, v in self._objects.items()}))
        return {int(k): v for k, v in copy.items()}

    @property
    def next_id(self) -> int:
        return self._next_id

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def planes(self) -> list[tuple[int, ...]]:
        """Plane indices that hold at least one object, sorted."""
        return sorted({tuple(o["plane"]) for o in self._objects.values()})

    def object_at(self, plane_index, point) -> int:
        """The id under ``point`` ``(row, col)`` on a plane, 0 for background or outside."""
        plane = self._plane_view(plane_index)
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
        plane_index = self._check_plane(plane_index)
        masks = [np.asarray(m, dtype=bool) for m in masks]
        if prompts is None:
            prompts = [{} for _ in masks]
        if len(prompts) != len(masks):
            raise ValueError(f"got {len(masks)} masks but {len(prompts)} prompt sets")
        plane = self._plane_view(plane_index)
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
            oid = self._next_id
            self._next_id += 1
            plane.ravel()[free] = oid
            record = {"plane": list(plane_index), "prompts": jsonable(prompt),
                      "created": created, "area": int(free.size), **jsonable(info or {})}
            changes.append({"id": oid, "pixels": free, "record": record})
            ids.append(oid)
        if not changes:
            return ids
        action = {"kind": "commit", "plane": plane_index, "objects": changes}
        self._apply(action, forward=True, paint=False)
        self._persist_or_revert(action, forward=True)
        self._undo.append(action)
        self._redo.clear()
        return ids

    def delete(self, object_id: int) -> None:
        """Remove one committed object (its id is not reused) and persist."""
        object_id = int(object_id)
        if object_id not in self._objects:
            raise ValueError(f"there is no object with id {object_id}")
        action = self._delete_action(object_id)
        self._apply(action, forward=True)
        self._persist_or_revert(action, forward=True)
        self._undo.append(action)
        self._redo.clear()

    def undo(self) -> dict | None:
        """Undo the last commit, delete or edit; returns ``{"kind", "plane", "ids"}`` or None."""
        return self._step(self._undo, self._redo, forward=False)

    def redo(self) -> dict | None:
        """Redo the last undone action; returns ``{"kind", "plane", "ids"}`` or None."""
        return self._step(self._redo, self._undo, forward=True)

    def _step(self, source, target, forward):
        if not source:
            return None
        action = source[-1]
        self._apply(action, forward=forward)
        self._persist_or_revert(action, forward=forward)
        target.append(source.pop())
        return {"kind": action["kind"], "plane": action["plane"],
                "ids": [c["id"] for c in action["objects"]]}

    def _apply(self, action, forward, paint=True):
        """Do (forward) or revert an action in memory."""
        if action["kind"] == "edit":  # brush/eraser/fill corrections: store_edits.py
            return self._apply_edit(action, forward)
        if action["kind"] == "batch":
            for step in action["steps"] if forward else reversed(action["steps"]):
                self._apply(step, forward)
            return
        adds = (action["kind"] == "commit") == forward
        plane = self._plane_view(action["plane"]).ravel()
        for change in action["objects"]:
            if adds:
                if paint:
                    plane[change["pixels"]] = change["id"]
                self._objects[change["id"]] = change["record"]
            else:
                plane[change["pixels"]] = 0
                self._objects.pop(change["id"], None)

    def _persist_or_revert(self, action, forward):
        try:
            self.save(planes=action.get("planes", [action["plane"]]))
        except BaseException:
            self._apply(action, forward=not forward)
            raise

    # -- disk -------------------------------------------------------------------------------
    def save(self, planes=None) -> None:
        """Write the given planes (default: all with objects) and then ``store.json``,
        atomically; afterwards delete plane files no longer referenced."""
        self.folder.mkdir(parents=True, exist_ok=True)
        planes = self.planes() if planes is None else [tuple(p) for p in planes]
        occupied = {_plane_key(p) for p in self.planes()}
        version = self._version + 1
        new_files = dict(self._planes)
        written = []
        try:
            for p in planes:
                key = _plane_key(p)
                if key not in occupied:
                    new_files.pop(key, None)
                    continue
                name = f"plane{''.join('-' + str(i) for i in p)}-v{version}.npz"
                with atomic_write(self.folder / name) as f:
                    np.savez_compressed(f, labels=self._plane_view(p))
                written.append(name)
                new_files[key] = name
            for key in list(new_files):
                if key not in occupied:
                    new_files.pop(key)
            manifest = {
                "format": FORMAT, "version": FORMAT_VERSION, "package_version": __version__,
                "image": {"shape": list(self._shape), "hash": self.image_hash,
                          "path": self.image_path},
                "next_id": self._next_id, "revision": version, "planes": new_files,
                "objects": {str(k): v for k, v in sorted(self._objects.items())},
            }
            write_text(self.folder / MANIFEST, json.dumps(manifest, indent=1))
        except BaseException:
            for name in written:
                with contextlib.suppress(OSError):
                    (self.folder / name).unlink()
            raise
        old = set(self._planes.values()) - set(new_files.values())
        self._planes, self._version = new_files, version
        for name in old:
            with contextlib.suppress(OSError):
                (self.folder / name).unlink()

    def load(self) -> None:
        """(Re)read the store from disk; the undo history is cleared."""
        try:
            manifest = json.loads((self.folder / MANIFEST).read_text())
            if manifest.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} manifest")
            if manifest["version"] > FORMAT_VERSION:
                raise ValueError(f"written by a newer napari-devosam ({manifest['version']})")
            shape = tuple(manifest["image"]["shape"])
            planes = dict(manifest["planes"])
            arrays = {}
            for key, name in planes.items():
                with np.load(self.folder / name) as npz:
                    arrays[key] = np.asarray(npz["labels"], dtype=np.uint32)
            objects = {int(k): v for k, v in manifest["objects"].items()}
            next_id = int(manifest["next_id"])
        except Exception as exc:  # noqa: BLE001 - any failure to read means a corrupt store
            kept = self._move_aside()
            raise StoreCorruptError(
                f"the annotation store {self.folder} is unreadable ({exc}); it was moved to "
                f"{kept} and a new, empty store will be used"
            ) from exc
        if self._shape is not None and shape != self._shape:
            raise ValueError(
                f"the annotation store {self.folder} belongs to an image of shape {shape}, "
                f"not {self._shape}"
            )
        stored_hash = manifest["image"].get("hash")
        if self.image_hash and stored_hash and stored_hash != self.image_hash:
            raise StoreMismatchError(f"the annotation store {self.folder} belongs to other "
                                     f"pixels (image hash {stored_hash[:12]}...)")
        self._shape = shape
        self.image_hash = self.image_hash or stored_hash
        self.image_path = self.image_path or manifest["image"].get("path")
        self._labels = np.zeros(shape, dtype=np.uint32)
        for key, array in arrays.items():
            index = tuple(int(i) for i in key.split(",")) if key else ()
            self._labels[index] = array
        self._objects, self._planes, self._next_id = objects, planes, next_id
        self._version = int(manifest.get("revision", 0))
        self._undo.clear()
        self._redo.clear()
        self._remove_orphans()

    def _remove_orphans(self):
        """Plane files of a change that was killed before its ``store.json`` landed."""
        keep = set(self._planes.values())
        for path in self.folder.glob("plane*.npz"):
            if path.name not in keep:
                with contextlib.suppress(OSError):
                    path.unlink()

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.folder.with_name(f"{self.folder.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.folder.with_name(f"{self.folder.name}.corrupt-{stamp}-{n}")
        os.replace(self.folder, target)
        return target

    # -- helpers ----------------------------------------------------------------------------
    def _check_plane(self, plane_index) -> tuple[int, ...]:
        if not isinstance(plane_index, (tuple, list)):
            plane_index = np.atleast_1d(plane_index).tolist()
        index = tuple(int(i) for i in plane_index)
        lead = self._shape[:-2]
        if len(index) != len(lead) or any(not 0 <= i < n for i, n in zip(index, lead,
                                                                          strict=True)):
            raise ValueError(f"{plane_name(index)} does not fit labels of shape {self._shape}")
        return index

    def _plane_view(self, plane_index) -> np.ndarray:
        return self.labels[self._check_plane(plane_index)]
