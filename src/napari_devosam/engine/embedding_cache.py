"""The embedding cache: ``PlaneEmbedding``, cache signatures and ``EmbeddingCache``.

Memory: a bounded LRU of ``PlaneEmbedding`` objects (``max_items``). Disk (when ``cache_dir``
is set): one file per plane, ``<signature>.npz``, features in float16 (2 MiB for
256 x 64 x 64) with the signature, the format name and the sizes stored inside. A file whose
stored signature differs, or that cannot be read, is a miss (recomputed and overwritten by
``embeddings.embed_plane``), never reused. A folder that cannot be written is not an error:
the first failed write warns once (``CacheWriteWarning``, also kept in ``disk_error``), later
embeddings stay in memory only.

The signature is a SHA256 over the plane's pixel data (bytes, shape, dtype), the
normalisation's key, the image encoder's weights hash (``models.identity.encoder_hash``), the
encoder's input size, this file format and the package version.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from napari_devosam._version import __version__
from napari_devosam.engine.image import DEFAULT_NORMALIZATION, Normalization
from napari_devosam.models.identity import encoder_hash
from napari_devosam.models.precision import precision_of
from napari_devosam.utils.atomic import atomic_write

CACHE_FORMAT = "devosam-embedding-v1"


class CacheWriteWarning(UserWarning):
    """The embedding cache folder cannot be written; embeddings are kept in memory only."""


@dataclass
class PlaneEmbedding:
    """SAM's image embedding of one plane.

    Attributes:
      features: ``(1, 256, h, w)`` float32 on the model's device.
      input_size: ``(h_in, w_in)``, the plane's size after resizing its longest side to the
        encoder's input size (the rest of the square input is padding).
      original_size: ``(H, W)`` of the plane.
    """

    features: torch.Tensor
    input_size: tuple[int, int]
    original_size: tuple[int, int]

    def to(self, device) -> PlaneEmbedding:
        features = self.features.to(device)
        if features is self.features:
            return self
        return PlaneEmbedding(features, self.input_size, self.original_size)


# --- signature ---------------------------------------------------------------------------


def signature(plane, sam, normalization: Normalization | None = None) -> str:
    """The cache key of ``plane`` embedded by ``sam`` (its encoder weights and precision) after
    ``normalization`` (hex SHA256)."""
    normalization = normalization or DEFAULT_NORMALIZATION
    data = np.ascontiguousarray(np.asarray(plane))
    h = hashlib.sha256()
    h.update(f"{CACHE_FORMAT};{__version__};{data.shape};{data.dtype.str};".encode())
    h.update(f"{normalization.key()};{sam.image_encoder.img_size};{encoder_hash(sam)};".encode())
    if precision_of(sam) != "fp32":  # fp32 keys are those of earlier versions
        h.update(f"precision={precision_of(sam)};".encode())
    h.update(data.reshape(-1).view(np.uint8) if data.size else b"")
    return h.hexdigest()


# --- cache -------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``cache_root() / "embeddings"``: under ``DEVOSAM_CACHE_DIR`` or the user cache dir."""
    from napari_devosam.utils.cache import cache_root

    return cache_root() / "embeddings"


class EmbeddingCache:
    """Embeddings by signature: a bounded in-memory LRU plus, optionally, fp16 files on disk.

    Arguments:
      cache_dir: folder for ``<signature>.npz`` files; None keeps embeddings in memory only.
      max_items: how many embeddings the memory part holds (least recently used go first).
    """

    signature = staticmethod(signature)
    warn_on_disk_error = True  # a GUI announces ``disk_error`` itself (once) instead

    def __init__(self, cache_dir: str | os.PathLike | None = None, max_items: int = 32):
        if max_items < 0:
            raise ValueError(f"max_items must be >= 0, got {max_items}")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.max_items = int(max_items)
        self._memory: OrderedDict[str, PlaneEmbedding] = OrderedDict()
        self._lock = threading.Lock()  # a GUI worker fills the cache while the GUI reads it
        self.disk_error: str | None = None  # why the folder could not be written, if it failed

    def __len__(self) -> int:
        return len(self._memory)

    def path_for(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        path = self.path_for(key)
        return key in self._memory or (path is not None and path.is_file())

    def get(self, key: str, device=None) -> PlaneEmbedding | None:
        """The embedding stored under ``key`` (moved to ``device``), or None.

        A disk file that is unreadable or carries another signature counts as absent.
        """
        with self._lock:
            emb = self._memory.get(key)
            if emb is not None:
                self._memory.move_to_end(key)
        if emb is not None:
            return emb if device is None else emb.to(device)
        emb = self._load(key, device)
        if emb is not None:
            self._remember(key, emb)
        return emb

    def put(self, key: str, embedding: PlaneEmbedding) -> None:
        """Store ``embedding`` in memory and, with a ``cache_dir``, atomically on disk.

        Raises nothing when the disk write fails: it warns once (``CacheWriteWarning``), sets
        ``disk_error`` and stops writing to disk.
        """
        self._remember(key, embedding)
        path = self.path_for(key)
        if path is None or self.disk_error is not None:
            return
        buffer = io.BytesIO()
        np.savez(
            buffer,
            features=embedding.features.detach()[0].to("cpu", torch.float16).numpy(),
            signature=np.array(key),
            format=np.array(CACHE_FORMAT),
            input_size=np.array(embedding.input_size, dtype=np.int64),
            original_size=np.array(embedding.original_size, dtype=np.int64),
        )
        try:
            with atomic_write(path) as f:
                f.write(buffer.getbuffer())
        except OSError as exc:
            self.disk_error = f"cannot write the embedding cache {self.cache_dir} ({exc})"
            if self.warn_on_disk_error:
                warnings.warn(f"{self.disk_error}; embeddings are kept in memory only",
                              CacheWriteWarning, stacklevel=2)

    def clear_memory(self) -> None:
        with self._lock:
            self._memory.clear()

    def _remember(self, key: str, embedding: PlaneEmbedding) -> None:
        if self.max_items == 0:
            return
        with self._lock:
            self._memory[key] = embedding
            self._memory.move_to_end(key)
            while len(self._memory) > self.max_items:
                self._memory.popitem(last=False)

    def _load(self, key: str, device) -> PlaneEmbedding | None:
        path = self.path_for(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != CACHE_FORMAT or str(data["signature"]) != key:
                    return None
                features = data["features"]
                input_size = tuple(int(n) for n in data["input_size"])
                original_size = tuple(int(n) for n in data["original_size"])
        except Exception:  # noqa: BLE001 - any unreadable file is a cache miss, recomputed
            return None
        if features.ndim != 3 or len(input_size) != 2 or len(original_size) != 2:
            return None
        tensor = torch.from_numpy(features).to(dtype=torch.float32)[None]
        if device is not None:
            tensor = tensor.to(device)
        return PlaneEmbedding(tensor, input_size, original_size)
