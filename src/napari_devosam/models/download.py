"""Downloading checkpoints: streamed, SHA256-verified, atomic, stoppable.

The transfer, the hash check and the atomic rename are pooch's (``pooch.retrieve``): the
file arrives in a temporary file next to the destination and is moved there only after its
SHA256 matched, so the final path holds either a complete, verified file or nothing. pooch
blocks until the file is complete, so ``download`` runs it in a thread and hands its progress
to the caller one chunk at a time: the generator can be closed at any yield (the transfer
stops at the next chunk and its temporary file is removed). Nothing here runs at import
time; no torch.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import threading
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
    (hex); on any failure, or when the generator is closed early, no file is left at
    ``dest`` (an existing file there is left untouched). ``timeout`` is in seconds, per
    connection attempt and per read.

    Raises ``DownloadError`` (network/HTTP errors, incomplete transfer) or
    ``ChecksumError`` (wrong SHA256), both ``RuntimeError`` subclasses.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    transfer = _Transfer(url, dest, sha256.strip().lower(), size, chunk_size, timeout)
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

    def __init__(self, url, dest: Path, sha256: str, size, chunk_size: int, timeout: float):
        self.url, self.dest, self.sha256, self.size = url, dest, sha256, size
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
            pooch.retrieve(self.url, known_hash=f"sha256:{self.sha256}", fname=self.dest.name,
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
        raise _user_error(exc, self.url, self.dest, self.sha256, self.done) from exc


def _user_error(exc: BaseException, url: str, dest: Path, sha256: str, done: int) -> Exception:
    import requests

    if isinstance(exc, ValueError) and "hash" in str(exc).lower():
        got = re.findall(r"[0-9a-f]{64}", str(exc))
        got = next((h for h in got if h != sha256), "unknown")
        return ChecksumError(f"downloaded file for {dest} has the wrong SHA256 (expected "
                             f"{sha256}, got {got}); it was discarded")
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
            f"or pass the checkpoint's path as the model; to work offline now, use the bundled "
            f"model embryo_tiny (trained on synthetic embryos)"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
