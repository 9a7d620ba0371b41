"""Generator jobs for napari workers, with errors that always reach the user and never the
process.

superqt's ``GeneratorWorker`` takes a ``RuntimeError`` raised by the generator for "the Qt
object was deleted": it warns and emits neither ``errored`` nor ``finished``, so the GUI
would wait forever. Many of our real failures are ``RuntimeError``s (offline with no model
cached, CUDA out of memory, a diverged training), so every generator job runs wrapped in
``reported``, which re-raises any exception as a ``JobError``.

Reporting can fail too: when a worker's signal object is gone (its widget closed, or Qt
deleted it) ``errored.emit`` raises ``RuntimeError: wrapped C/C++ object ... has been
deleted`` from ``QRunnable.run``, and PyQt answers an exception escaping a virtual method
with ``qFatal`` (SIGABRT: the viewer is gone). ``SafeGeneratorWorker`` catches whatever
escapes ``run`` and reports it as a napari notification (shown on the GUI thread).
Its signals' slots are skipped once the widget they write to is deleted (``when_alive``).
``create_job`` makes such workers, after the heavy first imports (``utils.heavy_imports``).

A worker still inside torch when Python exits (napari closed while "Precompute all planes"
runs) aborts the process ("terminate called without an active exception"). So every job is
remembered, and at exit (``atexit``, before the interpreter tears threads down) the running
ones are asked to stop and waited for: the current plane finishes, the rest is skipped.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import logging

from napari.qt.threading import GeneratorWorker

log = logging.getLogger(__name__)
EXIT_WAIT_MS = 60_000  # one vit_b plane on a slow CPU, with room to spare
_JOBS: set = set()  # strong references: a closed widget drops its own, the job runs on


class JobError(Exception):
    """A background job's exception; ``str()`` is the original message, ``original`` it."""

    def __init__(self, original: BaseException):
        super().__init__(str(original) or type(original).__name__)
        self.original = original


def reported(gen_func):
    """Wrap a generator function so that its exceptions reach the worker's ``errored``."""

    @functools.wraps(gen_func)
    def job(*args, **kwargs):
        try:
            return (yield from gen_func(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none swallowed
            raise JobError(exc) from exc

    return job


def notify_error(message: str) -> None:
    """A napari error notification from any thread; never raises (logs if it cannot show)."""
    try:
        from napari.utils.notifications import show_error

        show_error(message)
    except Exception:  # noqa: BLE001 - reporting must not take the viewer down
        log.exception("could not show: %s", message)


def when_alive(slot):
    """``slot`` for a worker's signal, skipped (logged) when the widget it writes to is gone:
    a job that ends after its viewer closed (closed mid-propagation, trial 17) called a
    panel whose Qt objects were deleted, and napari showed the ``RuntimeError: wrapped C/C++
    object ... has been deleted`` as a traceback. Any other exception is raised. As Qt does,
    the signal's arguments the slot does not take are dropped."""
    try:
        signature = inspect.signature(slot)
    except (TypeError, ValueError):
        signature = None

    def call(*args):
        while args and signature is not None:
            try:
                signature.bind(*args)
                break
            except TypeError:
                args = args[:-1]
        try:
            return slot(*args)
        except RuntimeError as exc:
            if "has been deleted" not in str(exc):
                raise
            log.debug("a job ended after its widget closed: %s", exc)
            return None

    return call


class _GuardedSignal:
    """A worker's signal whose slots are connected through ``when_alive``."""

    def __init__(self, signal, slots: dict):
        self._signal, self._slots = signal, slots

    def connect(self, slot, *args, **kwargs):
        if slot not in self._slots:
            self._slots[slot] = when_alive(slot)
        return self._signal.connect(self._slots[slot], *args, **kwargs)

    def disconnect(self, slot=None, *args):
        if slot is None:
            return self._signal.disconnect()
        return self._signal.disconnect(self._slots.get(slot, slot), *args)

    def __getattr__(self, name):
        return getattr(self._signal, name)


class SafeGeneratorWorker(GeneratorWorker):
    """A napari ``GeneratorWorker`` whose ``run`` never lets an exception reach Qt, and whose
    signals' slots are skipped once their widget is gone (``when_alive``)."""

    def __getattr__(self, name: str):
        attr = super().__getattr__(name)
        if not (hasattr(attr, "connect") and hasattr(attr, "emit")):
            return attr
        slots = self.__dict__.setdefault("_alive_slots", {})
        return _GuardedSignal(attr, slots)

    def run(self) -> None:
        try:
            super().run()
        except BaseException as exc:  # noqa: BLE001 - an escaping exception aborts Qt
            notify_error(f"A background job failed and could not report it: {exc}")


def create_job(gen_func, *args, progress=None, **kwargs) -> SafeGeneratorWorker:
    """A not yet started ``SafeGeneratorWorker`` running ``reported(gen_func)(*args)``.

    Call on the GUI thread: the heavy first imports happen here, never in two workers at
    once. ``progress``: napari's ``_progress`` (a dict for a bar in the activity dock).
    """
    from napari.qt.threading import create_worker

    from napari_devosam._qt import avoid_llvm_clash
    from napari_devosam.utils.heavy_imports import ensure_imported

    avoid_llvm_clash()
    ensure_imported()
    worker = create_worker(reported(gen_func), *args, _start_thread=False, _ignore_errors=True,
                           _progress=progress, _worker_class=SafeGeneratorWorker, **kwargs)
    pbar = getattr(worker, "pbar", None)
    if pbar is not None:  # the bar shows what the events say, not how many came
        try:
            worker.yielded.disconnect(pbar.increment_with_overflow)
        except (TypeError, RuntimeError):  # another napari: keep its counting
            pass
        else:
            worker.yielded.connect(lambda event: _follow(pbar, event))
    _JOBS.add(worker)
    worker.finished.connect(lambda: _JOBS.discard(worker))
    return worker


def _follow(pbar, event) -> None:
    """One yielded event -> the activity-dock bar: ``(done, total)`` tuples and events with
    ``done``/``total`` set it (``show_progress``); anything else counts one step."""
    if isinstance(event, tuple) and len(event) == 2 and all(isinstance(v, int) for v in event):
        show_progress(pbar, *event)
    elif isinstance(getattr(event, "done", None), int) and isinstance(
            getattr(event, "total", None), int):
        show_progress(pbar, event.done, event.total)
    else:
        pbar.increment_with_overflow()


def show_progress(pbar, done: int, total: int, desc: str | None = None) -> None:
    """Set napari's activity-dock bar ``pbar`` (a ``napari.utils.progress``, or None) to
    ``done`` of ``total`` (0: a busy indicator). napari's own bar counts yields: a job that
    first yields "0 of N" would overflow into a busy indicator at its end."""
    if pbar is None:
        return
    total, done = max(int(total), 0), max(int(done), 0)
    if desc and pbar.desc != desc:
        pbar.set_description(desc)
    if pbar.total != total:
        pbar.total = total
    pbar.update(done - pbar.n)


@atexit.register
def stop_jobs_at_exit(wait_ms: int = EXIT_WAIT_MS) -> None:
    """Ask every job still alive to stop and wait for the thread pool (see the module
    docstring). Returns at once when no job was ever made."""
    jobs = list(_JOBS)
    if not jobs:
        return
    for worker in jobs:
        try:
            worker.quit()
        except RuntimeError:  # its Qt side is gone already
            continue
    from qtpy.QtCore import QThreadPool

    QThreadPool.globalInstance().waitForDone(wait_ms)
