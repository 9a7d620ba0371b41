"""Downloading checkpoints: streamed, SHA256-verified, atomic, stoppable.

``download`` writes into a temporary file next to the destination and renames it only
after the whole file arrived and its SHA256 matched, so the final path holds either a
complete, verified file or nothing, whatever happens (error, truncated response, the
generator being closed, Ctrl-C). Nothing here runs at import time; no torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Generator
from pathlib import Path

from napari_devosam.models.registry import Checkpoint, get_checkpoint

CACHE_DIR_ENV = "DEVOSAM_CACHE_DIR"
CHECKPOINT_ENV = "DEVOSAM_CHECKPOINT"

Progress = Generator[tuple[int, int], None, Path]


class DownloadError(RuntimeError):
    """A download failed (network error, truncated response, HTTP error)."""


class ChecksumError(DownloadError):
    """A downloaded file's SHA256 differs from the expected one; nothing was kept."""


class ModelUnavailableError(DownloadError):
    """An official checkpoint is neither cached nor downloadable (offline, server down...)."""


def cache_root() -> Path:
    """The package's cache folder: ``DEVOSAM_CACHE_DIR`` or the platform's user cache dir."""
    env = os.environ.get(CACHE_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("napari-devosam", appauthor=False))


def model_cache_dir() -> Path:
    """Where official checkpoints are stored: ``cache_root() / "models"`` (not created here)."""
    return cache_root() / "models"


def checkpoint_path(name: str | Checkpoint) -> Path:
    """The path at which checkpoint ``name`` is (or would be) cached."""
    return model_cache_dir() / get_checkpoint(name).filename


def is_cached(name: str | Checkpoint) -> bool:
    """True if checkpoint ``name`` is in the cache with the expected size."""
    path = checkpoint_path(name)
    return path.is_file() and path.stat().st_size == get_checkpoint(name).size


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str,
    size: int | None = None,
    *,
    chunk_size: int = 1 << 20,
    timeout: float = 30.0,
) -> Progress:
    """Download ``url`` to ``dest``; a generator yielding ``(done_bytes, total_bytes)``.

    ``total_bytes`` is the server's Content-Length, else ``size``, else 0 (unknown). The
    generator's return value is ``Path(dest)``. The file is verified against ``sha256``
    (hex) and, when known, the expected length; on any failure, or when the generator is
    closed early, no file is left at ``dest`` (an existing file there is left untouched).

    Raises ``DownloadError`` (network/HTTP errors, incomplete transfer) or
    ``ChecksumError`` (wrong SHA256), both ``RuntimeError`` subclasses.
    """
    dest = Path(dest)
    expected = sha256.strip().lower()
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"could not reach {url}: {reason}") from exc

    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with response, os.fdopen(fd, "wb") as out:
            header = response.headers.get("Content-Length")
            length = int(header) if header and header.isdigit() else None
            total = length if length is not None else (size or 0)
            digest = hashlib.sha256()
            done = 0
            yield done, total
            while True:
                try:
                    chunk = response.read(chunk_size)
                except (http.client.HTTPException, OSError) as exc:  # OSError covers timeouts
                    raise DownloadError(
                        f"downloading {url} failed after {done} bytes: {exc}"
                    ) from exc
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                yield done, total
            out.flush()
            os.fsync(out.fileno())
        want = length if length is not None else size
        if want is not None and done != want:
            raise DownloadError(
                f"downloading {url} was interrupted: got {done} of {want} bytes"
            )
        got = digest.hexdigest()
        if got != expected:
            raise ChecksumError(
                f"downloaded file for {dest} has the wrong SHA256 (expected {expected}, "
                f"got {got}); it was discarded"
            )
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return dest


def ensure_checkpoint(name: str | Checkpoint, *, timeout: float = 30.0) -> Progress:
    """The local path of official checkpoint ``name``, downloading it on first use.

    A generator: yields ``(done_bytes, total_bytes)`` while downloading (nothing when the
    file is cached) and returns the ``Path``. A cached file is trusted if its size matches
    the registry (it was hash-verified when downloaded); a file of the wrong size is
    replaced. ``name`` may also be a ``registry.Checkpoint`` (mirrors, tests).

    Raises ``ModelUnavailableError`` when the file is not cached and cannot be fetched,
    ``ChecksumError`` when the server's file does not match the registry's SHA256.
    """
    info = get_checkpoint(name)
    path = model_cache_dir() / info.filename
    note = ""
    if path.is_file():
        found = path.stat().st_size
        if found == info.size:
            return path
        note = f" (the cached {path} has {found} bytes instead of {info.size})"
    url = info.download_url()
    try:
        return (yield from download(url, path, info.sha256, info.size, timeout=timeout))
    except ChecksumError:
        raise
    except DownloadError as exc:
        raise ModelUnavailableError(
            f"model {info.name!r} is not available offline and could not be downloaded from "
            f"{url} into the cache dir {path.parent}{note}: {_first_line(exc)}. To use a local "
            f"file, copy {info.filename} into {path.parent}, set {CHECKPOINT_ENV} to its path, "
            f"or pass the checkpoint's path as the model"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
