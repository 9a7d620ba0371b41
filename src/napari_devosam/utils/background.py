"""Running a progress generator in a dedicated low-priority thread.

Long background work that competes with the user for the CPU (the encoder filling the cache
for a whole stack) must not slow down clicks. Linux schedules threads by their own nice
value, and OpenMP teams started from a thread inherit it, so a generator driven from a fresh
thread niced to ``nice`` lets the GUI thread's work (nice 0) win the cores whenever both run.
A fresh thread rather than the caller's: pool threads (napari's workers) cannot lower their
nice value again once raised. Elsewhere (no per-thread nice), the thread runs at normal
priority.

At interpreter exit (``atexit``) every such thread still running is asked to stop and joined
(it finishes the step it is in): a thread still inside torch while Python tears down aborts
the process ("terminate called without an active exception").
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import threading
from collections.abc import Callable, Generator

BACKGROUND_NICE = 10
EXIT_JOIN_S = 60.0  # one vit_b plane on a slow CPU, with room to spare
_END = object()
_LIVE: set = set()  # (relay, thread) pairs running now


def niced(gen_fn: Callable[..., Generator], *args, nice: int | None = None, **kwargs):
    """Drive ``gen_fn(*args, **kwargs)`` in a new thread of lower priority (``nice``, default
    ``BACKGROUND_NICE``; 0 keeps the normal priority); yield what it yields, return what it
    returns. Closing this generator closes the inner one at its next yield; an exception
    inside is raised here."""
    nice = BACKGROUND_NICE if nice is None else nice
    relay = _Relay()
    thread = threading.Thread(target=relay.run, args=(gen_fn, args, kwargs, nice),
                              name="devosam-background", daemon=True)
    _LIVE.add((relay, thread))
    thread.start()
    try:
        while (item := relay.get()) is not _END:
            yield item
    finally:
        relay.stopped.set()
        thread.join()
        _LIVE.discard((relay, thread))
    if relay.error is not None:
        raise relay.error
    return relay.result


class _Relay:
    def __init__(self):
        self.slot: queue.Queue = queue.Queue(maxsize=1)  # the thread never runs ahead
        self.stopped = threading.Event()
        self.finished = threading.Event()
        self.result = None
        self.error: BaseException | None = None

    def run(self, gen_fn, args, kwargs, nice: int) -> None:
        _lower_priority(nice)
        gen = gen_fn(*args, **kwargs)
        try:
            while not self.stopped.is_set():
                try:
                    item = next(gen)
                except StopIteration as stop:
                    self.result = stop.value
                    break
                self._put(item)
        except BaseException as exc:  # handed to the consumer's thread
            self.error = exc
        finally:
            gen.close()
            self._put(_END)
            self.finished.set()

    def _put(self, item) -> None:
        while not self.stopped.is_set():
            with contextlib.suppress(queue.Full):
                self.slot.put(item, timeout=0.05)
                return

    def get(self):
        while True:
            with contextlib.suppress(queue.Empty):
                return self.slot.get(timeout=0.05)
            if self.finished.is_set() and self.slot.empty():
                return _END  # stopped from outside (exit): nothing more will come


@atexit.register
def stop_all(timeout: float = EXIT_JOIN_S) -> None:
    """Stop every background thread still running and join it (see the module docstring)."""
    for relay, thread in list(_LIVE):
        relay.stopped.set()
        thread.join(timeout)


def _lower_priority(nice: int) -> None:
    with contextlib.suppress(AttributeError, OSError):  # no per-thread nice here: run as is
        own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), max(own, nice))
