"""How long long work will take, said before (most of) it runs.

An estimate is a count of units (planes to embed, training steps) times a time per unit that
was measured: on this machine, on the first unit of the same run (``FirstUnit``), or on an
earlier run of the same model on this machine (``engine.encoder_timing`` in this process;
``recorded_seconds`` across processes: the CLI records its runs' per-plane encoder times in
``<cache root>/encoder_times.json``, keyed by model, device and precision). Nothing here
guesses a speed.
"""

from __future__ import annotations

import contextlib
import json
import math
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


def about(seconds: float) -> str:
    """``"about 3 min 20 s"``; under a second ``"about 0.35 s"`` (never "about under 1 s")."""
    s = float(seconds)
    return f"about {per_unit(s) if s < 1 else duration(s)}"


def estimate_line(n: int, seconds_each: float, noun: str, how: str = "measured",
                  what: str = "") -> str:
    """``"about 3 min 20 s for 421 planes (0.48 s per plane, measured)"``; ``what`` follows
    the count (``" to embed"``: ``"... for 421 planes to embed (...)"``)."""
    return (f"{about(n * seconds_each)} for {count(n, noun)}{what} "
            f"({per_unit(seconds_each)} per {noun}, {how})")


def capped(seconds: float, limit: float | None, flag: str = "",
           stops_after: float | None = None) -> str:
    """An estimate under a time limit (seconds; None: no limit).

    Within the limit: ``"about 3 min 10 s, within the 8 min limit of --max-minutes"``.
    Beyond it: ``"about 8 min 05 s, capped at 8 min by --max-minutes (about 22 min without
    it)"``, where the first time is ``stops_after`` (when the run really stops: the limit
    plus the step that crosses it), else the limit. ``flag`` names the option that sets it.
    """
    if limit is None:
        return about(seconds)
    cap = per_unit(limit) if limit < 60 else duration(limit).removesuffix(" 00 s")
    if seconds <= limit:
        return f"{about(seconds)}, within the {cap} limit{' of ' + flag if flag else ''}"
    stop = limit if stops_after is None else stops_after
    return (f"{about(stop)}, capped at {cap}{' by ' + flag if flag else ''} "
            f"({about(seconds)} without it)")


# --- per-plane encoder times recorded across runs ------------------------------------------

RECORD_NAME = "encoder_times.json"


def record_key(model, device, precision) -> str:
    """The key of a per-plane encoder time: model name or path, device (``cpu``, ``cuda:0``)
    and precision (``fp32``, ``bf16``)."""
    return f"{model}|{device}|{precision}"


def _record_file():
    from napari_devosam.models.download import cache_root

    return cache_root() / RECORD_NAME


def _read_records() -> dict:
    try:
        data = json.loads(_record_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recorded_seconds(key: str) -> float | None:
    """The per-plane encoder time recorded for ``key`` by an earlier run, or None."""
    value = _read_records().get(key)
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return float(value)
    return None


def record_seconds(key: str, seconds: float | None) -> None:
    """Remember ``seconds`` per plane for ``key`` (the latest run wins). A cache folder that
    cannot be written is no error: the next run measures again."""
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return
    from napari_devosam.utils.atomic import write_text

    records = _read_records()
    records[key] = round(float(seconds), 4)
    with contextlib.suppress(OSError):
        write_text(_record_file(), json.dumps(records, indent=1, sort_keys=True) + "\n")


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
        return (f"{about(left * each)} left for {count(left, self.noun)} "
                f"({per_unit(each)} per {self.noun}, measured on {first})")
