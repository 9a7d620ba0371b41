"""``devosam batch``: how long the work will take, said before any task starts.

The whole work: the encoder on every plane to do, plus per plane the recorded time of the
``auto`` and ``track`` steps (``record_after_batch`` records them from the manifest's task
times at the end of each run; with no auto time recorded, the first plane is segmented
here to time it). The track step is counted per plane, not per object-plane as ``devosam
track`` counts it: its seeds come from the auto step, so their number is not known before.

The planes to embed are those of the input files with a step still to do (the manifest of
``--out`` says which steps are done for unchanged files), counted from the files' shapes
(TIFF: from the header, without reading the pixels). The time per plane is the one recorded
by an earlier run of the same model, device and precision on this machine
(``utils.estimate.recorded_seconds``), else measured here: the model is loaded once in this
process and the first plane to embed goes through its encoder into the shared embedding
cache (the workers find it there), and the measure is recorded for the next run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from napari_devosam.cli.plane_estimate import HOW_FIRST, HOW_RECORDED
from napari_devosam.models.registry import timing_key
from napari_devosam.utils.estimate import (
    STEPS,
    estimate_line,
    record_seconds,
    recorded_seconds,
)
from napari_devosam.utils.text import count

HOW_FIRST_PLANE = "measured here on the first plane"


def plane_count_of(path: Path) -> int:
    """Planes of the image file ``path`` as ``read_image`` would give it (a TIFF's header
    only). Raises what ``read_image`` raises."""
    from napari_devosam.engine.stacks import canonical_axes, plane_count
    from napari_devosam.io.read import read_image
    from napari_devosam.utils.paths import TIFF_SUFFIXES

    if path.suffix.lower() in TIFF_SUFFIXES:
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                shape, dtype = tuple(series.shape), series.dtype
        except Exception:  # noqa: BLE001 - not readable this way: read it as the task will
            pass
        else:
            shaped = np.broadcast_to(np.zeros((), dtype=dtype), shape)  # no pixel memory
            return plane_count(canonical_axes(shaped))
    return plane_count(read_image(path))


def files_to_do(files: list[Path], out_dir: Path, settings: dict, steps) -> list[Path]:
    """The ``files`` with a step of ``steps`` not done (by the manifest in ``out_dir``, for
    these ``settings``; a file changed since is to do)."""
    from napari_devosam.batch.manifest import Manifest

    manifest = Manifest(out_dir, settings)
    todo = []
    for path in files:
        rec = manifest.files.get(str(path))
        try:
            st = path.stat()
        except OSError:
            continue
        same = rec is not None and (rec.get("size"), rec.get("mtime")) == (st.st_size,
                                                                         st.st_mtime)
        if not same or not all(manifest.is_done(path, s, out_dir) for s in steps):
            todo.append(path)
    return todo


def say_before_batch(files: list[Path], out_dir: Path, opts, file=None) -> str | None:
    """Print (stderr) and return the batch's estimate line; None when no file has work left,
    no file can be read (the tasks will say why), at most two planes are to embed and no
    time is recorded, or the model cannot be loaded here (a warning; the tasks will fail
    with its message).

    The whole work is counted: the encoder on every plane, and per plane the steps with a
    recorded time (``auto``; ``track``), as ``utils.estimate.work_line`` says it. With no
    time recorded for the auto step, the first plane goes through the encoder and the
    automatic segmentation here (``measure_first``), and the line says so.
    """
    from napari_devosam.utils.devices import resolve_device
    from napari_devosam.utils.estimate import step_key, work_line

    file = sys.stderr if file is None else file
    todo, planes = [], 0
    for path in files_to_do(files, Path(out_dir), opts.settings(), opts.steps):
        try:
            planes += plane_count_of(path)
        except (OSError, ValueError, RuntimeError):
            continue  # an unreadable file fails in its task, with its message
        todo.append(path)
    if not todo:
        return None
    key = timing_key(opts.model, resolve_device(opts.device), opts.precision)
    steps = [s for s in ("auto", "track") if s in opts.steps]
    each, how, what = recorded_seconds(key), HOW_RECORDED, " to embed"
    timed = {s: recorded_seconds(step_key(s, key)) for s in steps}
    untimed = [s for s in steps if timed[s] is None]
    hows = dict.fromkeys(steps, HOW_RECORDED)
    if each is None or "auto" in untimed:
        if planes <= 2 and not steps:  # timing them would be the whole work
            return None
        if steps:
            first = "the first plane" if "auto" in untimed else "the encoder"
            print(f"devosam batch: {count(planes, 'plane')} in {count(len(todo), 'file')}; "
                  f"no time recorded here yet: timing {first} here", file=file, flush=True)
        else:
            print(f"devosam batch: {count(planes, 'plane')} to embed in "
                  f"{count(len(todo), 'file')}; timing the encoder here", file=file,
                  flush=True)
        try:
            each, auto = measure_first(todo[0], opts, with_auto="auto" in untimed)
        except (OSError, ValueError, RuntimeError) as exc:  # the tasks will say it per file
            print(f"devosam batch: warning: no estimate: the model could not be timed here "
                  f"({str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r})",
                  file=file, flush=True)
            return None
        if each_recorded := recorded_seconds(key):
            each = each_recorded  # a time of many planes beats one plane's
        else:
            record_seconds(key, each)
            how = HOW_FIRST
        if auto is not None:
            timed["auto"], hows["auto"] = auto, HOW_FIRST_PLANE
            untimed.remove("auto")
            record_seconds(step_key("auto", key), auto)
        if not steps:
            what, planes = " left to embed", planes - 1
    in_files = f" in {count(len(todo), 'file')}"
    if not steps:
        line = (f"{estimate_line(planes, each, 'plane', how, what)}{in_files} "
                "(encoder time, shared by the workers)")
    else:
        known = [(s, timed[s], hows[s]) for s in steps if timed[s] is not None]
        line = work_line(planes, known, planes, each, how, what=f"{in_files[1:]}")
        if untimed:
            line += (f"; not counted: {', '.join(STEPS[s] for s in untimed)} (no time "
                     "recorded here yet; this run records it)")
        line += "; the workers share this work"
    print(f"devosam batch: {line}", file=file, flush=True)
    return line


def measure_first(path: Path, opts, with_auto: bool = False) -> tuple[float, float | None]:
    """Seconds per plane of the encoder of ``opts.model`` here, warm
    (``plane_estimate.time_encoder`` on the first plane of ``path``, which goes into the
    shared embedding cache), and with ``with_auto`` the seconds of the automatic
    segmentation of that plane (``opts.mode``, ``opts.stain``, ``opts.min_area``; else
    None)."""
    import gc
    import time

    from napari_devosam.cli.plane_estimate import time_encoder
    from napari_devosam.engine.embeddings import EmbeddingCache, default_cache_dir
    from napari_devosam.io.read import read_first_plane
    from napari_devosam.models.loading import load_model

    sam = load_model(opts.model, device=opts.device, precision=opts.precision,
                     decoder=opts.decoder)
    try:
        cache_dir = opts.cache_dir or default_cache_dir()
        plane = read_first_plane(path)
        each = time_encoder(sam, [plane], EmbeddingCache(cache_dir, max_items=0))
        if not with_auto:
            return each, None
        from napari_devosam.automatic.core import iter_segment_stack
        from napari_devosam.engine.predictor import Predictor
        from napari_devosam.utils.progress import drain

        predictor = Predictor(sam, cache_dir=cache_dir)
        start = time.perf_counter()
        drain(iter_segment_stack(np.asarray(plane), predictor, None, mode=opts.mode,
                                 stain=opts.stain, min_area=opts.min_area))
        return each, time.perf_counter() - start
    finally:
        del sam
        gc.collect()


def record_after_batch(manifest, files: list[Path], opts) -> None:
    """Keep the per-plane times of the batch's ``auto`` and ``track`` steps (the seconds
    its tasks took, from ``manifest``, over the planes of the ``files`` they did; the
    encoder time is taken out of an auto step that embedded its planes itself) for the
    next run's estimate, keyed as the encoder time is."""
    from napari_devosam.utils.devices import resolve_device
    from napari_devosam.utils.estimate import step_key, step_seconds

    key = timing_key(opts.model, resolve_device(opts.device), opts.precision)
    for step in ("auto", "track"):
        if step not in opts.steps:
            continue
        seconds, planes = 0.0, 0
        for path in files:
            rec = manifest.files.get(str(path), {})
            done = rec.get("steps", {}).get(step, {})
            if done.get("state") == "done" and rec.get("planes"):
                seconds += float(done.get("seconds") or 0.0)
                planes += int(rec["planes"])
        embedded = planes if step == "auto" and "embed" not in opts.steps else 0
        record_seconds(step_key(step, key),
                       step_seconds(seconds, planes, embedded, recorded_seconds(key)))
