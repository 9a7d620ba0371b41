"""Before a command's encoder work: one stderr line saying how long it will take.

``say_before`` counts the planes still to embed (those not in the embedding cache) and
multiplies them by a per-plane encoder time: measured in this process
(``engine.encoder_timing``), else recorded by an earlier run of the same model, device and
precision on this machine (``utils.estimate.recorded_seconds``), else measured now on the
first two planes to embed (the second one timed: the first warms the encoder up), which go
into the run's cache so the run does not embed them again. ``record_after`` stores the run's
own measure for the next run. The wording is ``utils.estimate.estimate_line``'s.

``WorkEstimate`` says the whole work of ``segment --auto`` and ``track`` (embedding + the
step after it, per plane or, for ``track`` with its seed count, per object-plane:
``utils.estimate.recorded_step``, ``work_line``) and records the step's time.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from napari_devosam.utils.estimate import (  # noqa: F401 - HOW_FIRST: batch_estimate's
    HOW_FIRST,
    HOW_HERE,
    HOW_RECORDED,
    estimate_line,
    record_key,
    record_seconds,
    recorded_seconds,
)
from napari_devosam.utils.text import count


def model_key(model, sam) -> str:
    """``record_key`` of the loaded ``sam`` (``model``: the name or path it was loaded by)."""
    from napari_devosam.models.precision import precision_of
    from napari_devosam.models.registry import timing_key

    return timing_key(model, sam.pixel_mean.device, precision_of(sam))


def planes_to_embed(sam, planes: Sequence[np.ndarray], cache, normalization=None
                    ) -> list[np.ndarray]:
    """The planes (arrays as given to ``embed_plane``) that ``cache`` does not hold yet."""
    if cache is None:
        return list(planes)
    from napari_devosam.engine.embeddings import signature
    from napari_devosam.engine.stacks import as_plane

    return [p for p in planes if signature(as_plane(p), sam, normalization) not in cache]


def time_encoder(sam, planes: Sequence[np.ndarray], cache, normalization=None) -> float:
    """Seconds per plane of ``sam``'s encoder, warm: the first of ``planes`` goes through it
    (first kernels, allocations: often several times slower than the rest), then the second
    is timed; both go into ``cache``. With one plane, it is encoded again (uncached) to time
    it."""
    from napari_devosam.engine.embeddings import compute_embedding, embed_plane
    from napari_devosam.engine.encoder_timing import seconds_per_plane
    from napari_devosam.engine.image import to_rgb
    from napari_devosam.engine.stacks import as_plane

    embed_plane(sam, planes[0], cache, normalization)
    if len(planes) > 1:
        embed_plane(sam, planes[1], cache, normalization)
    else:
        from napari_devosam.engine.image import DEFAULT_NORMALIZATION

        compute_embedding(sam, to_rgb(as_plane(planes[0]), normalization or
                                      DEFAULT_NORMALIZATION))
    return float(seconds_per_plane(sam))


def say_before(command: str, sam, planes: Sequence[np.ndarray], cache, key: str,
               normalization=None, file=None) -> str | None:
    """Print (stderr) and return the estimate line of embedding ``planes`` with ``sam``; None
    (nothing printed) when no time is known and at most two planes are to embed (then timing
    them is the whole work).

    A measure taken now (``time_encoder``) embeds the first two planes to embed through
    ``cache`` (with ``normalization``, as the run will), so the run does not repeat them.
    """
    from napari_devosam.engine.encoder_timing import seconds_per_plane

    file = sys.stderr if file is None else file
    todo = planes_to_embed(sam, planes, cache, normalization)
    if not todo:
        what = "the plane" if len(planes) == 1 else f"all {count(len(planes), 'plane')}"
        line = f"{what} already embedded (cache): no encoder work"
        print(f"devosam {command}: {line}", file=file)
        return line
    each, how, what = seconds_per_plane(sam), HOW_HERE, " to embed"
    if each is None:
        each, how = recorded_seconds(key), HOW_RECORDED
    if each is None:
        if len(todo) <= 2:
            return None
        print(f"devosam {command}: {count(len(todo), 'plane')} to embed; timing the encoder "
              "on the first two", file=file, flush=True)
        each, how, what = time_encoder(sam, todo[:2], cache, normalization), HOW_FIRST, \
            " left to embed"
        todo = todo[2:]
    line = estimate_line(len(todo), each, "plane", how, what)
    print(f"devosam {command}: {line}", file=file, flush=True)
    return line


def record_after(key: str, sam) -> None:
    """Keep this run's per-plane encoder time (if it embedded any plane) for the next run."""
    from napari_devosam.engine.encoder_timing import seconds_per_plane

    record_seconds(key, seconds_per_plane(sam))


class WorkEstimate:
    """The whole work of a command on its planes (embedding + a per-plane ``step`` of
    ``utils.estimate.STEPS``), said before it runs and recorded after it.

    ``say_before`` prints one stderr line: the estimate from the recorded per-plane time of
    the step (plus the encoder time of the planes not yet cached), or, with nothing recorded
    for the step, ``"N planes for <step>; timing the first plane"``; then ``progress(done,
    total)`` (fed the run's progress) prints the estimate measured on the first plane.
    ``record_after`` stores the step's measured per-plane time (the run's wall time less its
    encoder time) and the encoder's, keyed as the encoder time is.
    """

    def __init__(self, command: str, step: str, sam, key: str, file=None):
        self.command, self.step, self.sam, self.key = command, step, sam, key
        self.file = sys.stderr if file is None else file
        self.first = None  # FirstUnit while the first plane is timed
        self.started = None
        self.n_embed = 0
        self.last = None
        self.size = None  # the planes' shape: step times are kept per size class

    def say(self, line: str) -> None:
        print(f"devosam {self.command}: {line}", file=self.file, flush=True)

    def say_before(self, planes: Sequence[np.ndarray], cache, n_steps: int | None = None,
                   normalization=None, objects: int | None = None,
                   detects: bool = True) -> str | None:
        """Say the estimate of embedding ``planes`` (those not in ``cache``) and running the
        step on ``n_steps`` planes (default: all of ``planes``), following ``objects`` seeds
        (a ``PER_OBJECT`` step: per object-plane when recorded, ``recorded_step``; with
        ``detects`` False, without its per-plane part); returns the line said."""
        import time

        from napari_devosam.engine.encoder_timing import seconds_per_plane
        from napari_devosam.utils.clocks import FirstUnit
        from napari_devosam.utils.estimate import recorded_step, timing_first_line, work_line

        n = len(planes) if n_steps is None else n_steps
        self.size = np.shape(planes[0]) if len(planes) else None
        todo = planes_to_embed(self.sam, planes, cache, normalization)
        timed = recorded_step(self.step, self.key, objects, detects, self.size)
        line = None
        if timed is None:
            line = timing_first_line(n, self.step)
            self.first = FirstUnit("plane")
        else:
            each, how = seconds_per_plane(self.sam), HOW_HERE
            if each is None and todo:
                each, how = recorded_seconds(self.key), HOW_RECORDED
            if each is None and todo:
                each, how = time_encoder(self.sam, todo[:2], cache, normalization), HOW_FIRST
                todo = todo[2:]
            line = work_line(n, [timed], len(todo), each, how)
        self.say(line)
        self.n_embed = len(todo)
        self.started = time.perf_counter()
        return line

    def start(self, planes: Sequence[np.ndarray], cache, normalization=None) -> None:
        """Start the clock without an estimate (one plane: the run is its own timing)."""
        import time

        self.n_embed = len(planes_to_embed(self.sam, planes, cache, normalization))
        self.size = np.shape(planes[0]) if len(planes) else None
        self.started = time.perf_counter()

    def progress(self, done: int, total: int, say: bool = True) -> str | None:
        """The run's progress; the line measured on the first plane(s), once (said unless
        ``say`` is False; kept in ``last``)."""
        line = self.first(done, total) if self.first is not None else None
        if line:
            self.last = line
            if say:
                self.say(line)
        return line

    def record_after(self, n_steps: int, object_planes: int | None = None,
                     plane_seconds: float | None = None) -> None:
        """The run (started at ``say_before``) processed ``n_steps`` planes (``object_planes``:
        its tracked objects summed over them, for a per-object time; ``plane_seconds``: its
        time in the step's per-plane part, ``utils.estimate.record_run``): keep its times."""
        import time

        from napari_devosam.engine.encoder_timing import seconds_per_plane
        from napari_devosam.utils.estimate import record_run

        if self.started is None:
            record_after(self.key, self.sam)
            return
        record_run(self.step, self.key, time.perf_counter() - self.started, n_steps,
                   self.n_embed, seconds_per_plane(self.sam), object_planes, plane_seconds,
                   self.size)
