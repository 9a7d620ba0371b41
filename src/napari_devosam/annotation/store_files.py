"""The files of an annotation store folder: ``store.json`` and one ``.npz`` per plane.

Layout of a store folder::

    store.json              the commit point: image info, next id, objects, plane files
    plane-<i>-<j>-v<N>.npz  labels of one plane (uint32), one file per plane with objects

``StoreFiles.write`` writes the touched planes under new file names, then atomically
replaces ``store.json``, then removes the plane files it no longer names: a process killed
at any moment leaves either the previous or the new state on disk, never a mix. ``read``
never lets an unreadable store be overwritten: the folder is renamed to
``<folder>.corrupt-<time>`` and ``StoreCorruptError`` says where it went.

Two programs may hold one store (the viewer, and ``devosam import-tracks`` or ``track`` in a
terminal). Each read and write holds the folder's lock file (``.store.lock``, the
``filelock`` package: an OS lock, released when a process dies), and a write first checks
that ``store.json`` still has the revision this program read or wrote last: otherwise
``StoreChangedError``, and nothing is written. Before, the second writer's ``store.json``
named plane files the first had already replaced, and the store was lost on the next read
(new-user trial 19).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_devosam._version import __version__
from napari_devosam.utils.atomic import atomic_write, write_text

FORMAT = "devosam-annotation-store"
FORMAT_VERSION = 1
MANIFEST = "store.json"


LOCK = ".store.lock"
LOCK_TIMEOUT_S = 60.0  # a write of a large stack by the other program, with room to spare


class StoreCorruptError(RuntimeError):
    """A store folder that cannot be read; it has been moved aside, not overwritten."""


class StoreChangedError(RuntimeError):
    """Another program wrote the store since this one read it: nothing was written."""


def _plane_key(plane: tuple[int, ...]) -> str:
    return ",".join(str(i) for i in plane)


@dataclass
class StoreSnapshot:
    """What ``StoreFiles.read`` found: labels ``(shape)`` uint32, records, next id, image
    info (shape, hash, path), and which file holds which plane."""

    shape: tuple[int, ...]
    labels: np.ndarray
    records: dict[int, dict]
    next_id: int
    image: dict
    planes: dict[str, str]
    revision: int


class StoreFiles:
    """The files of one store folder; remembers which plane file holds which plane."""

    def __init__(self, folder) -> None:
        self.folder = Path(folder)
        self.planes: dict[str, str] = {}  # plane key "i,j" -> file name
        self.revision = 0

    def exists(self) -> bool:
        return (self.folder / MANIFEST).exists()

    @contextlib.contextmanager
    def _locked(self, reading: bool = False):
        """Hold the folder's lock (one program at a time); ``RuntimeError`` after waiting
        ``LOCK_TIMEOUT_S`` for it. ``reading``: a folder where no lock file can be made
        (missing, read-only) is read without one."""
        from filelock import FileLock, Timeout

        lock = FileLock(self.folder / LOCK, timeout=LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except Timeout as exc:
            raise RuntimeError(f"the annotation store {self.folder} is busy: another program "
                               f"has held it for {LOCK_TIMEOUT_S:.0f} s") from exc
        except OSError:
            if not reading:
                raise
            yield
            return
        try:
            yield
        finally:
            lock.release()

    def _disk_revision(self) -> int | None:
        """``store.json``'s revision on disk (None: no store.json, or unreadable)."""
        try:
            return int(json.loads((self.folder / MANIFEST).read_text()).get("revision", 0))
        except (OSError, ValueError, AttributeError):
            return None

    def write(self, content, planes, image: dict) -> None:
        """Write the planes ``planes`` of ``content`` (a ``CommittedObjects``; planes without
        objects lose their file) and then ``store.json`` with ``image`` (shape, hash, path),
        atomically; afterwards delete the plane files no longer named. Raises
        ``StoreChangedError`` (nothing written) when another program wrote the store since
        this one last read or wrote it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._locked():
            on_disk = self._disk_revision()
            if (on_disk is not None and on_disk != self.revision) or (
                    on_disk is None and self.revision):  # moved or removed since it was read
                state = "gone" if on_disk is None else f"revision {on_disk}"
                raise StoreChangedError(
                    f"the annotation store {self.folder} was changed by another program "
                    f"since it was read here ({state}, not revision {self.revision}): this "
                    "change was not saved")
            self._write(content, planes, image)

    def _write(self, content, planes, image: dict) -> None:
        occupied = {_plane_key(p) for p in content.planes()}
        version = self.revision + 1
        new_files = dict(self.planes)
        written = []
        try:
            for p in planes:
                key = _plane_key(p)
                if key not in occupied:
                    new_files.pop(key, None)
                    continue
                name = f"plane{''.join('-' + str(i) for i in p)}-v{version}.npz"
                with atomic_write(self.folder / name) as f:
                    np.savez_compressed(f, labels=content.plane(p))
                written.append(name)
                new_files[key] = name
            for key in list(new_files):
                if key not in occupied:
                    new_files.pop(key)
            manifest = {
                "format": FORMAT, "version": FORMAT_VERSION, "package_version": __version__,
                "image": image, "next_id": content.next_id, "revision": version,
                "planes": new_files,
                "objects": {str(k): v for k, v in sorted(content.records.items())},
            }
            write_text(self.folder / MANIFEST, json.dumps(manifest, indent=1))
        except BaseException:
            for name in written:
                with contextlib.suppress(OSError):
                    (self.folder / name).unlink()
            raise
        old = set(self.planes.values()) - set(new_files.values())
        self.planes, self.revision = new_files, version
        for name in old:
            with contextlib.suppress(OSError):
                (self.folder / name).unlink()

    def read(self) -> StoreSnapshot:
        """Read ``store.json`` and the plane files it names (``adopt`` the result to write
        after it). Raises ``StoreCorruptError`` (the folder moved aside) when anything cannot
        be read."""
        with self._locked(reading=True):
            return self._read()

    def _read(self) -> StoreSnapshot:
        try:
            manifest = json.loads((self.folder / MANIFEST).read_text())
            if manifest.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} manifest")
            if manifest["version"] > FORMAT_VERSION:
                raise ValueError(f"written by a newer napari-devosam ({manifest['version']})")
            shape = tuple(manifest["image"]["shape"])
            planes = dict(manifest["planes"])
            labels = np.zeros(shape, dtype=np.uint32)
            for key, name in planes.items():
                with np.load(self.folder / name) as npz:
                    index = tuple(int(i) for i in key.split(",")) if key else ()
                    labels[index] = np.asarray(npz["labels"], dtype=np.uint32)
            records = {int(k): v for k, v in manifest["objects"].items()}
            next_id = int(manifest["next_id"])
        except Exception as exc:  # noqa: BLE001 - any failure to read means a corrupt store
            kept = self._move_aside()
            raise StoreCorruptError(
                f"the annotation store {self.folder} is unreadable ({exc}); it was moved to "
                f"{kept} and a new, empty store will be used"
            ) from exc
        return StoreSnapshot(shape, labels, records, next_id, dict(manifest["image"]), planes,
                             int(manifest.get("revision", 0)))

    def adopt(self, snapshot: StoreSnapshot) -> None:
        """Continue from what ``read`` found; remove the plane files of a change that was
        killed before its ``store.json`` landed."""
        self.planes, self.revision = snapshot.planes, snapshot.revision
        keep = set(self.planes.values())
        with contextlib.suppress(OSError), self._locked():  # read-only: nothing to remove
            if self._disk_revision() != snapshot.revision:
                return  # another program wrote since: those files are its own
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
