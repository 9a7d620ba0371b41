"""Where the annotation store of an image lives, and how a store is bound to its pixels.

The one store-location rule, ``locate_store``, is used by the annotator (through
``AnnotationStore.for_image``) and by every ``devosam`` command that reads stores, so both
always agree. In order, the first that applies:

1. an explicit ``project_dir`` (the user's choice): ``<project_dir>/<hash>.devosam``;
2. ``<image>.devosam`` next to the image file when it already holds this image's store
   (even when it is read-only: the store is then opened and reported as unwritable);
3. ``<store root>/<hash>.devosam`` when it already holds a store (the store root is
   ``DEVOSAM_STORE_DIR`` or the user data folder, see ``default_store_root``);
4. ``<image>.devosam`` when that folder can be created and written;
5. ``<store root>/<hash>.devosam``.

Binding: a store records the hash of its image's pixels (``image_hash``). When the folder
that rules 1-4 pick holds the store of *another* image (the file was replaced by a different
acquisition, of the same shape or not), that store is left untouched and the sibling folder
``<name>-<hash[:12]>.devosam`` is used instead; ``StoreLocation.note`` says so. A store
written without a hash belongs to any image of its shape.

The hash is a blake2b digest of the shape, the dtype and every pixel. It reads the data in
blocks of at most 64 MiB along the leading axes (one plane, or a few), so a lazy (dask) stack
is never loaded whole; the digest equals the one over the whole array at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MANIFEST_NAME = "store.json"
_BLOCK = 1 << 26


class StoreMismatchError(ValueError):
    """A store folder that holds the annotations of another image (other pixels or shape)."""


def image_hash(data) -> str:
    """A hex digest of an image's pixel data, shape and dtype (same data -> same hash).

    ``data``: a numpy array or any lazy array with ``shape``, ``dtype`` and indexing (dask),
    read block by block along its leading axes.
    """
    if not (hasattr(data, "shape") and hasattr(data, "dtype")):
        data = np.asarray(data)
    shape = tuple(int(s) for s in data.shape)
    dtype = np.dtype(data.dtype)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{shape}|{dtype.str}|".encode())
    lead = 0  # iterate over the first `lead` axes so that each block is <= 64 MiB
    while lead < len(shape) - 2 and math.prod(shape[lead:]) * dtype.itemsize > _BLOCK:
        lead += 1
    for index in np.ndindex(*shape[:lead]):
        block = np.ascontiguousarray(np.asarray(data[index] if index else data))
        flat = block.reshape(-1).view(np.uint8)
        for start in range(0, flat.size, _BLOCK):
            h.update(flat[start : start + _BLOCK])
    return h.hexdigest()


def default_store_root() -> Path:
    """Where stores of images without a writable folder go: ``DEVOSAM_STORE_DIR`` or the
    user data dir."""
    env = os.environ.get("DEVOSAM_STORE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("napari-devosam")) / "annotations"


def is_writable(folder) -> bool:
    """True when files can be created in ``folder`` (or it can be created): probed for real,
    a folder that did not exist is removed again."""
    folder = Path(folder)
    created = False
    try:
        if not folder.is_dir():
            folder.mkdir(parents=False)
            created = True
        if not os.access(folder, os.W_OK | os.X_OK):
            return False
        fd, tmp = tempfile.mkstemp(prefix=".devosam-probe-", dir=folder)
        os.close(fd)
        os.unlink(tmp)
        return True
    except OSError:
        return False
    finally:
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()


def stored_image(folder) -> dict | None:
    """The ``image`` entry (``shape``, ``hash``, ``path``) of the store in ``folder``, or None
    when there is no readable store there."""
    try:
        return dict(json.loads((Path(folder) / MANIFEST_NAME).read_text())["image"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _belongs(folder: Path, digest: str, shape) -> bool | None:
    """True: the store in ``folder`` is this image's; False: another image's; None: no
    (readable) store there."""
    image = stored_image(folder)
    if image is None:
        return None
    if image.get("hash"):
        return image["hash"] == digest
    return shape is None or tuple(image.get("shape", ())) == tuple(shape)


@dataclass(frozen=True)
class StoreLocation:
    """Where ``locate_store`` put an image's store.

    ``next_to_image``: the folder is ``<image>.devosam`` (or its mismatch sibling);
    ``writable``: changes can be saved there; ``note``: a sentence for the user when the
    location is not the obvious one (another image's store was found), else None.
    """

    folder: Path
    image_hash: str
    next_to_image: bool
    writable: bool
    note: str | None = None


def locate_store(image_path, image_data, project_dir=None, *, label_shape=None,
                 digest: str | None = None) -> StoreLocation:
    """The store folder of an image by the module's rule (see the module docstring).

    ``image_path``: the image file or None; ``image_data``: its pixels (numpy or dask; hashed
    block by block unless ``digest`` is given); ``label_shape``: the labels' shape, used for
    stores that recorded no hash. Raises nothing for unwritable folders (see ``writable``).
    """
    digest = digest or image_hash(image_data)
    root = Path(project_dir) if project_dir is not None else default_store_root()
    keyed = root / f"{digest}.devosam"
    note = None
    if project_dir is None and image_path:
        beside = Path(f"{image_path}.devosam")
        owner = _belongs(beside, digest, label_shape)
        if owner is False:
            sibling = Path(f"{image_path}-{digest[:12]}.devosam")
            note = (f"{beside} holds the annotations of another image (the file changed); "
                    f"they are kept, and this image's annotations go to ")
            beside = sibling
            owner = _belongs(beside, digest, label_shape)
        if owner is True or (_belongs(keyed, digest, label_shape) is not True
                             and is_writable(beside)):
            return StoreLocation(beside, digest, True, is_writable(beside),
                                 note and note + str(beside))
    if _belongs(keyed, digest, label_shape) is False:
        keyed = keyed.with_name(f"{digest}-{digest[:12]}.devosam")  # a hash-less foreign store
    return StoreLocation(keyed, digest, False, is_writable(keyed) or _creatable(keyed),
                         note and note + str(keyed))


def _creatable(folder: Path) -> bool:
    """True when ``folder`` can be made with its parents (checked on the nearest existing
    ancestor)."""
    parent = folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent.is_dir() and is_writable(parent)
