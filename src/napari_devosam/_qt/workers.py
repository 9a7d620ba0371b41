"""Generator jobs for napari workers, with errors that always reach the GUI.

superqt's ``GeneratorWorker`` takes a ``RuntimeError`` raised by the generator for "the Qt
object was deleted": it warns and emits neither ``errored`` nor ``finished``, so the GUI
would wait forever. Many of our real failures are ``RuntimeError``s (offline with no model
cached, CUDA out of memory, a diverged training), so every generator job runs wrapped in
``reported``, which re-raises any exception as a ``JobError``.
"""

from __future__ import annotations

import functools


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
