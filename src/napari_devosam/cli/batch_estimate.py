"""``devosam batch``: how long the encoder work will take, said before any task starts.

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
from napari_devosam.utils.estimate import (
    estimate_line,
    record_key,
    record_seconds,
    recorded_seconds,
)
from napari_devosam.utils.text import count


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
    with its message)."""
    from napari_devosam.utils.devices import resolve_device

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
    key = record_key(opts.model, resolve_device(opts.device), opts.precision)
    each, how, what = recorded_seconds(key), HOW_RECORDED, " to embed"
    if each is None:
        if planes <= 2:  # timing them would be the whole work
            return None
        print(f"devosam batch: {count(planes, 'plane')} to embed in "
              f"{count(len(todo), 'file')}; timing the encoder here", file=file, flush=True)
        try:
            each = measure_first(todo[0], opts)
        except (OSError, ValueError, RuntimeError) as exc:  # the tasks will say it per file
            print(f"devosam batch: warning: no estimate: the model could not be timed here "
                  f"({str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r})",
                  file=file, flush=True)
            return None
        record_seconds(key, each)
        how, what, planes = HOW_FIRST, " left to embed", planes - 1
    line = (f"{estimate_line(planes, each, 'plane', how, what)} in "
            f"{count(len(todo), 'file')} (encoder time, shared by the workers)")
    print(f"devosam batch: {line}", file=file, flush=True)
    return line


def measure_first(path: Path, opts) -> float:
    """Seconds per plane of the encoder of ``opts.model`` here, warm
    (``plane_estimate.time_encoder`` on the first plane of ``path``, which goes into the
    shared embedding cache)."""
    import gc

    from napari_devosam.cli.plane_estimate import time_encoder
    from napari_devosam.engine.embeddings import EmbeddingCache, default_cache_dir
    from napari_devosam.io.read import read_first_plane
    from napari_devosam.models.loading import load_model

    sam = load_model(opts.model, device=opts.device, precision=opts.precision)
    try:
        cache = EmbeddingCache(opts.cache_dir or default_cache_dir(), max_items=0)
        return time_encoder(sam, [read_first_plane(path)], cache)
    finally:
        del sam
        gc.collect()
