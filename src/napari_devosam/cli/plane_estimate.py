"""Before a command's encoder work: one stderr line saying how long it will take.

``say_before`` counts the planes still to embed (those not in the embedding cache) and
multiplies them by a per-plane encoder time: measured in this process
(``engine.encoder_timing``), else recorded by an earlier run of the same model, device and
precision on this machine (``utils.estimate.recorded_seconds``), else measured now on the
first two planes to embed (the second one timed: the first warms the encoder up), which go
into the run's cache so the run does not embed them again. ``record_after`` stores the run's
own measure for the next run. The wording is ``utils.estimate.estimate_line``'s.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from napari_devosam.utils.estimate import (
    estimate_line,
    record_key,
    record_seconds,
    recorded_seconds,
)
from napari_devosam.utils.text import count

HOW_HERE = "measured here"
HOW_RECORDED = "recorded on an earlier run here"
HOW_FIRST = "measured here, warm"


def model_key(model, sam) -> str:
    """``record_key`` of the loaded ``sam`` (``model``: the name or path it was loaded by)."""
    from napari_devosam.models.precision import precision_of

    return record_key(model, sam.pixel_mean.device, precision_of(sam))


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
        line = f"all {count(len(planes), 'plane')} already embedded (cache): no encoder work"
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
