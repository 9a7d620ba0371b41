"""The time left of a running job, measured as it runs: on its first unit(s) (``FirstUnit``,
said once) or on all the units done so far (``TimeLeft``, said at every unit). The wording
is ``utils.estimate``'s; nothing here guesses a speed."""

from __future__ import annotations

import time

from napari_devosam.utils.estimate import about, duration, per_unit
from napari_devosam.utils.text import count


class FirstUnit:
    """Measures the first unit(s) of a run and says how long the rest will take, once.

    Feed it the run's ``(done, total)`` progress; the first call with ``done >= 1`` (and more
    left to do) returns a line such as ``"about 3 min 18 s left for 420 planes (0.47 s per
    plane, measured on the first)"``; every other call returns None. The clock starts at
    construction, or at ``started`` (a ``clock()`` value), and again at ``done == 0``: a run
    set up (tracking: its stain decided on 9 planes) is timed from there (trial 16)."""

    def __init__(self, noun: str, clock=time.perf_counter, started: float | None = None):
        self.noun, self.clock = noun, clock
        self.started = clock() if started is None else started
        self.said = False

    def restart(self, done: int) -> bool:  # at done == 0 the clock starts again: True
        if done == 0:
            self.started = self.clock()
        return done == 0

    def __call__(self, done: int, total: int) -> str | None:
        if self.restart(done) or self.said or done < 1 or total <= done:
            return None
        self.said = True
        each = (self.clock() - self.started) / done
        left = total - done
        first = "the first" if done == 1 else f"the first {done}"
        return (f"{about(left * each)} left for {count(left, self.noun)} "
                f"({per_unit(each)} per {self.noun}, measured on {first})")


class TimeLeft(FirstUnit):
    """The time left of a running job, from the rate of all the units done so far.

    Like ``FirstUnit``, but said at every call with ``done >= 1`` and more left: ``"about 1
    min 05 s left for 13 planes (5 s per plane, measured on the 7 done)"``; a slow or fast
    start corrects itself as units finish. None before the first unit and at the end.
    """

    def __call__(self, done: int, total: int) -> str | None:
        if self.restart(done) or total <= done:
            return None
        each = (self.clock() - self.started) / done
        left = total - done
        first = "the first" if done == 1 else f"the {done} done"
        return (f"about {duration(left * each)} left for {count(left, self.noun)} "
                f"({per_unit(each)} per {self.noun}, measured on {first})")
