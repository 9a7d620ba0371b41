"""How long long work will take, said before (most of) it runs.

An estimate is a count of units (planes to embed, training steps) times a time per unit that
was measured: on this machine, on the first unit of the same run (``FirstUnit``), or on an
earlier run of the same model (``engine.encoder_timing``). Nothing here guesses a speed.
"""

from __future__ import annotations

import time

from napari_devosam.utils.text import count


def duration(seconds: float) -> str:
    """``"under 1 s"``, ``"42 s"``, ``"3 min 20 s"``, ``"1 h 05 min"``."""
    s = float(seconds)
    if s < 1:
        return "under 1 s"
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        m, rest = divmod(int(round(s)), 60)
        return f"{m} min {rest:02d} s" if m < 10 else f"{m} min"
    h, rest = divmod(int(round(s)) // 60, 60)
    return f"{h} h {rest:02d} min"


def per_unit(seconds: float) -> str:
    """A measured time per unit as a user reads it: ``0.48 s``, ``12 s``, ``2 min 05 s``."""
    s = float(seconds)
    return f"{s:.2g} s" if s < 10 else duration(s)


def estimate_line(n: int, seconds_each: float, noun: str, how: str = "measured") -> str:
    """``"about 3 min 20 s for 421 planes (0.48 s per plane, measured)"``."""
    return (f"about {duration(n * seconds_each)} for {count(n, noun)} "
            f"({per_unit(seconds_each)} per {noun}, {how})")


class FirstUnit:
    """Measures the first unit(s) of a run and says how long the rest will take, once.

    Feed it the run's ``(done, total)`` progress; the first call with ``done >= 1`` (and more
    left to do) returns a line such as ``"about 3 min 18 s left for 420 planes (0.47 s per
    plane, measured on the first)"``; every other call returns None. The clock starts at
    construction (just before the run starts), or at ``started`` (a ``clock()`` value).
    """

    def __init__(self, noun: str, clock=time.perf_counter, started: float | None = None):
        self.noun, self.clock = noun, clock
        self.started = clock() if started is None else started
        self.said = False

    def __call__(self, done: int, total: int) -> str | None:
        if self.said or done < 1 or total <= done:
            return None
        self.said = True
        each = (self.clock() - self.started) / done
        left = total - done
        first = "the first" if done == 1 else f"the first {done}"
        return (f"about {duration(left * each)} left for {count(left, self.noun)} "
                f"({per_unit(each)} per {self.noun}, measured on {first})")
