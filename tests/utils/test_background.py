"""Background generators run in a fresh, lower-priority thread and stop at any yield."""

from __future__ import annotations

import os
import threading

import pytest

from napari_devosam.utils.background import niced


def _work(n, seen):
    for i in range(n):
        seen.append((threading.get_native_id(),
                     os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        yield i
    return "done"


def _drain(gen):
    items = []
    while True:
        try:
            items.append(next(gen))
        except StopIteration as stop:
            return items, stop.value


def test_yields_and_returns_from_a_niced_thread():
    seen = []
    items, result = _drain(niced(_work, 3, seen, nice=7))
    assert items == [0, 1, 2] and result == "done"
    assert {tid for tid, _ in seen} != {threading.get_native_id()}
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert all(nice == max(own, 7) for _, nice in seen)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # caller untouched


def test_closing_stops_the_inner_generator():
    closed = []

    def inner():
        try:
            yield from range(100)
        finally:
            closed.append(True)

    gen = niced(inner)
    assert next(gen) == 0 and next(gen) == 1
    gen.close()
    assert closed == [True]


def test_errors_reach_the_caller():
    def broken():
        yield 1
        raise ValueError("bad plane")

    gen = niced(broken)
    assert next(gen) == 1
    with pytest.raises(ValueError, match="bad plane"):
        next(gen)
