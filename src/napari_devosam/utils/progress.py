"""Running the package's progress generators to their end, with or without a bar.

Long work (downloads, embeddings, export, training, evaluation) is written as generators that
yield progress and return a result; these helpers are how blocking callers (the Python
convenience functions and the CLI) drive them. The generator is closed on any error.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Generator


def drain(gen: Generator, on_progress: Callable | None = None):
    """Run ``gen`` to its end, calling ``on_progress(value)`` for each yield; return its
    return value."""
    try:
        while True:
            try:
                value = next(gen)
            except StopIteration as stop:
                return stop.value
            if on_progress is not None:
                on_progress(value)
    finally:
        gen.close()


def drain_with_bar(gen: Generator, *, desc: str, enabled: bool = True,
                   estimate: str | None = None, **bar_options):
    """``drain`` for generators yielding ``(done, total)``, with a tqdm bar on stderr.

    The bar opens at the first yield (when the total is known; 0 means unknown; nothing is
    shown for a generator that never yields, e.g. a model already downloaded), but its clock
    starts when the work starts, so the rate it shows counts the work before the first yield.
    ``bar_options`` go to tqdm (``unit``, ``unit_scale``, ...). ``estimate``: the unit's
    noun (``"plane"``); once the first unit is done, one line says how long the rest will
    take (``utils.clocks.FirstUnit``).
    """
    from napari_devosam.utils.clocks import FirstUnit

    bar = None
    started = time.time()
    first = FirstUnit(estimate) if estimate and enabled else None

    def show(value):
        nonlocal bar
        done, total = value
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total or None, desc=desc, file=sys.stderr, **bar_options)
            bar.start_t = bar.last_print_t = started
        bar.update(done - bar.n)
        line = first(done, total) if first is not None else None
        if line:
            bar.write(f"{desc}: {line}", file=sys.stderr)

    try:
        return drain(gen, show if enabled else None)
    finally:
        if bar is not None:
            bar.close()
