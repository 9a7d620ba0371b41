"""What a dask worker runs: one step (embed, auto, track, export) of one input file.

Each task is ``run_step(step, job, *after)``: ``job`` is a small dict of settings (paths,
model, options), ``after`` the results of the file's earlier steps (only to order the
tasks). A task returns a small dict (``planes``, ``outputs``, ``seconds``, ``objects``);
errors propagate to the client, which records them in the manifest. Models are loaded once
per worker process and kept. Every output is written atomically.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

STEPS = ("embed", "auto", "track", "export")
_MODELS: dict[tuple, object] = {}
_LOCK = threading.Lock()
FAULT_ENV = "DEVOSAM_BATCH_KILL_ONCE"  # tests: a marker file; the first task kills its worker


def _model(job: dict):
    from napari_devosam.models.loading import load_model

    precision = job.get("precision", "auto")
    key = (job["model"], job["device"], precision, job.get("decoder"))
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_model(job["model"], device=job["device"], precision=precision,
                                      decoder=job.get("decoder"), progress=False)
        return _MODELS[key]


def _maybe_die() -> None:
    """Fault injection for tests: kill this worker process once (the marker file says)."""
    marker = os.environ.get(FAULT_ENV)
    if marker and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), 9)


def warm_imports(fmt: str) -> None:
    """Import the heavy libraries once per worker before any task: two threads of a worker
    (a task and the one unpickling messages) importing zarr at once can fail."""
    from napari_devosam.utils.heavy_imports import ensure_imported

    ensure_imported()
    if fmt == "zarr":
        import ome_zarr.writer  # noqa: F401
        import zarr  # noqa: F401


def run_step(step: str, job: dict, *after) -> dict:
    from napari_devosam.io.read import read_image

    _maybe_die()
    start = time.perf_counter()
    image = read_image(job["path"])
    from napari_devosam.engine.stacks import plane_count

    result = {"embed": _embed, "auto": _auto, "track": _track, "export": _export}[step](
        image, job)
    result.update(planes=plane_count(image), seconds=round(time.perf_counter() - start, 3))
    return result


def _embed(image, job) -> dict:
    from napari_devosam.engine.embeddings import EmbeddingCache, embed_stack
    from napari_devosam.utils.progress import drain

    sam = _model(job)
    batch = 1 if sam.pixel_mean.device.type == "cpu" else 4
    cache = EmbeddingCache(job["cache_dir"], max_items=0)
    drain(embed_stack(sam, image, cache=cache, batch_size=batch, keep=False))
    if cache.disk_error is not None:
        raise OSError(cache.disk_error)
    return {"outputs": []}


def auto_labels(image, predictor, job) -> tuple[np.ndarray, int]:
    """Every plane segmented as ``devosam segment --auto`` does: labels of the image's
    leading shape plus ``(H, W)`` and the number of objects."""
    from napari_devosam.automatic.core import iter_segment_stack
    from napari_devosam.engine.stacks import leading_shape
    from napari_devosam.utils.progress import drain

    results = drain(iter_segment_stack(image, predictor, None, mode=job["mode"],
                                       stain=job["stain"], min_area=job["min_area"]))
    lead = leading_shape(image)
    out = np.zeros((*lead, *image.shape[len(lead):len(lead) + 2]), dtype=np.int32)
    for index, res in results.items():
        out[index] = res.labels
    return out, sum(r.n_objects for r in results.values())


def _auto(image, job) -> dict:
    from napari_devosam.batch.outputs import label_path, write_labels
    from napari_devosam.engine.predictor import Predictor

    predictor = Predictor(_model(job), cache_dir=job["cache_dir"])
    labels, n = auto_labels(image, predictor, job)
    path = label_path(job["out_dir"], job["stem"], job["fmt"])
    write_labels(path, labels, image if job["fmt"] == "zarr" else None)
    return {"outputs": [path.name], "objects": n}


def _auto_output(job) -> np.ndarray:
    from napari_devosam.batch.outputs import label_path, read_labels

    return read_labels(label_path(job["out_dir"], job["stem"], job["fmt"]))


def _seed_labels(job) -> np.ndarray:
    """The labels the track step's seeds come from: ``seed_labels``, else the auto step's."""
    if job.get("seed_labels"):
        from napari_devosam.io.read import read_image

        return np.asarray(read_image(job["seed_labels"]))
    return _auto_output(job)


def _track(image, job) -> dict:
    from napari_devosam.batch.outputs import atomic_folder
    from napari_devosam.engine.embeddings import EmbeddingCache
    from napari_devosam.tracking.params import PropagationParams
    from napari_devosam.tracking.request import TrackingRequest, run_tracking
    from napari_devosam.utils.progress import drain

    if image.ndim - 2 not in (1, 2) or image.shape[0] < 2:
        raise ValueError(f"nothing to track in an image of shape {image.shape}: "
                         "need (T, Y, X) or (T, Z, Y, X) with T >= 2")
    request = TrackingRequest.from_labels(
        _seed_labels(job), image.shape, (0,) * (image.ndim - 2),
        params=PropagationParams(detect_divisions=True), review=False)
    done = drain(run_tracking(_model(job), image, request,
                              cache=EmbeddingCache(job["cache_dir"])))
    final = Path(job["out_dir"]) / f"{job['stem']}_tracks"
    with atomic_folder(final) as tmp:
        rows, _ = request.write(done.result, tmp)
    return {"outputs": [final.name], "objects": len(rows)}


def _export(image, job) -> dict:
    from napari_devosam.batch.outputs import atomic_folder
    from napari_devosam.export.bundle import export_bundle
    from napari_devosam.utils.progress import drain

    labels = _auto_output(job)
    final = Path(job["out_dir"]) / f"{job['stem']}_bundle"
    with atomic_folder(final) as tmp:
        summary = drain(export_bundle(tmp, image, labels, source=str(job["path"]),
                                      model_info={"name": str(job["model"])}))
    return {"outputs": [final.name], "objects": int(summary.get("objects", 0))}
