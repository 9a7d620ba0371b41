"""Downloading checkpoints: streamed, hash-verified (SHA256 or xxh128), atomic, stoppable.

The transfer, the hash check and the atomic rename are pooch's (``pooch.retrieve`` with
``known_hash``): the file arrives in a temporary file next to the destination and is moved
there only after its hash matched, so the final path holds either a complete, verified file or
nothing. pooch blocks until the file is complete, so ``download`` runs it in a thread and hands
its progress to the caller one chunk at a time: the generator can be closed at any yield (the
transfer stops at the next chunk and its temporary file is removed). Nothing here runs at
import time; no torch.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import threading
from collections.abc import Generator
from pathlib import Path

from napari_devosam.models.registry import Checkpoint, get_checkpoint, recommended_bundled
from napari_devosam.utils.cache import CACHE_DIR_ENV, cache_root  # noqa: F401 - re-exported

CHECKPOINT_ENV = "DEVOSAM_CHECKPOINT"

Progress = Generator[tuple[int, int], None, Path]


class DownloadError(RuntimeError):
    """A download failed (network error, truncated response, HTTP error)."""


class ChecksumError(DownloadError):
    """A downloaded file's hash differs from the expected one; nothing was kept."""


class ModelUnavailableError(DownloadError):
    """An official checkpoint is neither cached nor downloadable (offline, server down...)."""


def model_cache_dir() -> Path:
    """Where official checkpoints are stored: ``cache_root() / "models"`` (not created here)."""
    return cache_root() / "models"


def checkpoint_path(name: str | Checkpoint) -> Path:
    """The path at which checkpoint ``name`` is (or would be) cached."""
    return model_cache_dir() / get_checkpoint(name).filename


def is_cached(name: str | Checkpoint) -> bool:
    """True if checkpoint ``name`` is in the cache with the expected size (any non-empty file
    where the registry states no size: pooch only ever leaves verified files there)."""
    path = checkpoint_path(name)
    return path.is_file() and _size_ok(path.stat().st_size, get_checkpoint(name).size)


def _size_ok(found: int, expected: int | None) -> bool:
    return found == expected if expected is not None else found > 0


def pooch_hash(known_hash: str) -> str:
    """``known_hash`` in pooch's ``"<algorithm>:<hex>"`` form, lowercase (bare hex: SHA256)."""
    known_hash = known_hash.strip().lower()
    return known_hash if ":" in known_hash else f"sha256:{known_hash}"


def _check_algorithm(known_hash: str) -> None:
    import pooch.hashes

    algorithm = known_hash.split(":", 1)[0]
    if algorithm not in pooch.hashes.ALGORITHMS_AVAILABLE:
        extra = " (pip install xxhash)" if algorithm.startswith("xxh") else ""
        raise DownloadError(f"cannot check a {algorithm} hash: this Python lacks the hash "
                            f"library{extra}; nothing was downloaded")


def download(
    url: str,
    dest: str | os.PathLike,
    known_hash: str,
    size: int | None = None,
    *,
    chunk_size: int = 1 << 20,
    timeout: float = 30.0,
) -> Progress:
    """Download ``url`` to ``dest``; a generator yielding ``(done_bytes, total_bytes)``.

    ``total_bytes`` is the server's Content-Length, else ``size``, else 0 (unknown). The
    generator's return value is ``Path(dest)``. The file is verified against ``known_hash``
    (``"sha256:<hex>"``, ``"xxh128:<hex>"`` or a bare SHA256 hex); on any failure, or when the
    generator is closed early, no file is left at ``dest`` (an existing file there is left
    untouched). ``timeout`` is in seconds, per connection attempt and per read.

    Raises ``DownloadError`` (network/HTTP errors, incomplete transfer) or
    ``ChecksumError`` (wrong hash), both ``RuntimeError`` subclasses; ``DownloadError``
    before any transfer when the hash's algorithm is unavailable (xxh128 needs ``xxhash``).
    """
    dest = Path(dest)
    known_hash = pooch_hash(known_hash)
    _check_algorithm(known_hash)
    dest.parent.mkdir(parents=True, exist_ok=True)
    transfer = _Transfer(url, dest, known_hash, size, chunk_size, timeout)
    transfer.start()
    try:
        while (item := transfer.next_progress()) is not None:
            yield item
    finally:
        transfer.stop()
    transfer.raise_error()
    _respect_umask(dest)
    return dest


class _Cancelled(Exception):
    """Raised inside pooch's download loop when the consumer closed the generator."""


class _Transfer:
    """``pooch.retrieve`` in a thread, reporting through a one-slot queue.

    The object is also pooch's progress bar (``total``, ``update``, ``reset``, ``close``). The
    one-slot queue makes the thread wait for the consumer: the transfer never runs ahead of
    the progress the caller has seen, so closing the generator stops it at the next chunk.
    """

    def __init__(self, url, dest: Path, known_hash: str, size, chunk_size: int, timeout: float):
        self.url, self.dest, self.known_hash, self.size = url, dest, known_hash, size
        self.chunk_size, self.timeout = chunk_size, timeout
        self.done = 0
        self._total = 0
        self._reported = None
        self.error: BaseException | None = None
        self._slot: queue.Queue = queue.Queue(maxsize=1)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="devosam-download", daemon=True)

    @property
    def total(self) -> int:
        return self._total

    @total.setter
    def total(self, value) -> None:  # pooch sets it once the response headers arrived
        self._total = int(value or self.size or 0)
        self._report()

    def update(self, n: int) -> None:
        # pooch counts whole chunks, so the last one may overshoot the length
        self.done += int(n)
        if self._total:
            self.done = min(self.done, self._total)
        self._report()

    def reset(self) -> None:
        self.done = 0

    def close(self) -> None:
        pass

    def _report(self) -> None:
        item = (self.done, self._total)
        if item != self._reported:  # pooch's closing reset + update(total) repeats the end
            self._reported = item
            self._put(item)

    def _put(self, item) -> None:
        while not self._stopped.is_set():
            try:
                self._slot.put(item, timeout=0.05)
                return
            except queue.Full:
                continue
        raise _Cancelled

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        import pooch

        pooch.get_logger().setLevel("WARNING")
        downloader = pooch.HTTPDownloader(progressbar=self, timeout=self.timeout,
                                          chunk_size=self.chunk_size)
        try:
            pooch.retrieve(self.url, known_hash=self.known_hash, fname=self.dest.name,
                           path=self.dest.parent, downloader=downloader)
        except BaseException as exc:  # handed to the consumer's thread by raise_error
            self.error = exc
        with contextlib.suppress(_Cancelled):
            self._put(None)

    def next_progress(self):
        """The next ``(done, total)``, or None when the transfer ended."""
        return self._slot.get()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def raise_error(self) -> None:
        exc = self.error
        if exc is None or isinstance(exc, _Cancelled):
            return
        raise _user_error(exc, self.url, self.dest, self.known_hash, self.done) from exc


def _user_error(exc: BaseException, url: str, dest: Path, known_hash: str,
                done: int) -> Exception:
    import requests

    if isinstance(exc, ValueError) and "hash" in str(exc).lower():
        algorithm, expected = known_hash.split(":", 1)
        got = re.search(r"but got ([0-9a-fA-F]+)", str(exc))
        got = got.group(1).lower() if got else "unknown"
        return ChecksumError(f"downloaded file for {dest} has the wrong {algorithm.upper()} "
                             f"(expected {expected}, got {got}); it was discarded")
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        response = exc.response
        return DownloadError(f"downloading {url} failed: HTTP {response.status_code} "
                             f"{response.reason}")
    if isinstance(exc, requests.ConnectionError) and done == 0:
        return DownloadError(f"could not reach {url}: {_first_line(exc)}")
    if isinstance(exc, requests.RequestException | OSError):
        return DownloadError(f"downloading {url} failed after {done} bytes (the transfer was "
                             f"interrupted): {_first_line(exc)}")
    return exc if isinstance(exc, Exception) else DownloadError(str(exc))


def _respect_umask(path: Path) -> None:
    # pooch's temporary files are private (0600); a downloaded model is an ordinary file.
    from napari_devosam.utils.atomic import default_file_mode

    os.chmod(path, default_file_mode())


def ensure_checkpoint(name: str | Checkpoint, *, timeout: float = 30.0) -> Progress:
    """The local path of official checkpoint ``name``, downloading it on first use.

    A generator: yields ``(done_bytes, total_bytes)`` while downloading (nothing when the
    file is cached) and returns the ``Path``. A cached file is trusted if its size matches
    the registry, or is non-empty where the registry states no size (it was hash-verified
    when downloaded); a file of the wrong size is replaced. ``name`` may also be a
    ``registry.Checkpoint`` (mirrors, tests).

    Raises ``ModelUnavailableError`` when the file is not cached and cannot be fetched,
    ``ChecksumError`` when the server's file does not match the registry's hash.
    """
    info = get_checkpoint(name)
    path = model_cache_dir() / info.filename
    note = ""
    if path.is_file():
        found = path.stat().st_size
        if _size_ok(found, info.size):
            return path
        note = f" (the cached {path} has {found} bytes instead of {info.size or 'some'})"
    url = info.download_url()
    try:
        return (yield from download(url, path, info.known_hash, info.size, timeout=timeout))
    except ChecksumError:
        raise
    except DownloadError as exc:
        raise ModelUnavailableError(
            f"model {info.name!r} is not available offline and could not be downloaded from "
            f"{url} into the cache dir {path.parent}{note}: {_first_line(exc)}. To use a local "
            f"file, save it as {path}, set {CHECKPOINT_ENV} to its path, "
            f"or pass the checkpoint's path as the model; to work offline now, use the bundled "
            f"model {recommended_bundled()} (no download)"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
