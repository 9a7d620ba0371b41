"""``run_batch``: submit every step of every input file to dask, follow them, record them.

One task per input file and step; the steps of a file are chained (embed -> auto -> track ->
export), so a failure skips the file's later steps and nothing else. The manifest is updated
and saved by the client as each task completes. A step recorded ``done`` for an unchanged
input with its output in place is not submitted again (resume); once a step of a file is
recomputed, its later steps are too. Lost workers' tasks are rescheduled by the scheduler;
tasks that raise are retried ``retries`` times (default 1) before they count as failed.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

from napari_devosam.batch.manifest import Manifest
from napari_devosam.batch.tasks import STEPS, run_step, warm_imports


@dataclass
class BatchOptions:
    steps: tuple[str, ...] = ("embed", "auto")
    model: str | None = None
    device: str = "auto"
    precision: str = "auto"
    decoder: str | None = None
    fmt: str = "zarr"
    cache_dir: str | None = None
    mode: str = "seeded"
    stain: str = "auto"
    min_area: int = 30
    seed_labels: str | None = None  # a file, or a pattern with {stem}
    retries: int = 1

    def check(self) -> None:
        bad = [s for s in self.steps if s not in STEPS]
        if bad or not self.steps:
            raise ValueError(f"unknown step {', '.join(bad) or '(none)'}: choose from "
                             f"{','.join(STEPS)}")
        if "track" in self.steps and "auto" not in self.steps and not self.seed_labels:
            raise ValueError("the track step needs seeds: add the auto step or --seed-labels")
        if "export" in self.steps and "auto" not in self.steps:
            raise ValueError("the export step exports the auto labels: add the auto step")

    def settings(self) -> dict:
        """What makes outputs differ (a rerun with other settings recomputes)."""
        return {"model": self.model, "decoder": self.decoder, "precision": self.precision,
                "format": self.fmt, "mode": self.mode, "stain": self.stain,
                "min_area": self.min_area, "seed_labels": self.seed_labels}


@dataclass
class BatchProgress:
    done: int
    total: int
    futures: list = field(default_factory=list)


def _job(path: Path, stem: str, out_dir: Path, opts: BatchOptions) -> dict:
    from napari_devosam.engine.embeddings import default_cache_dir

    seeds = opts.seed_labels
    if seeds:
        seeds = str(Path(seeds.replace("{stem}", stem)).expanduser().resolve())
    return {"path": str(path), "stem": stem, "out_dir": str(out_dir), "fmt": opts.fmt,
            "model": opts.model, "device": opts.device, "precision": opts.precision,
            "decoder": opts.decoder,
            "cache_dir": str(opts.cache_dir or default_cache_dir()), "mode": opts.mode,
            "stain": opts.stain, "min_area": opts.min_area, "seed_labels": seeds}


def _submit(client, manifest, files, out_dir, opts, gpu) -> dict:
    from napari_devosam.batch.outputs import stems as stem_names

    futures = {}
    for path, stem in stem_names(files).items():
        manifest.entry(path, stem)
        job = _job(path, stem, out_dir, opts)
        previous, redo = None, False
        for step in opts.steps:
            if not redo and manifest.is_done(path, step, out_dir):
                continue
            redo = True
            after = [previous] if previous is not None else []
            fut = client.submit(run_step, step, job, *after, key=f"{step}-{stem}-"
                                f"{uuid.uuid4().hex[:8]}", retries=opts.retries,
                                resources=gpu if step == "embed" else None, pure=False)
            manifest.set(path, step, "pending")
            futures[fut] = (path, step)
            previous = fut
    return futures


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_batch(client, files: list[Path], out_dir, opts: BatchOptions
              ) -> Generator[BatchProgress, None, Manifest]:
    """Run ``opts.steps`` on ``files`` with ``client``; yields ``BatchProgress`` (the first
    one, with ``done == 0``, carries the futures, e.g. for ``distributed.progress``);
    returns the saved ``Manifest``. Closing the generator cancels the tasks in flight."""
    from distributed import as_completed

    from napari_devosam.batch.cluster import gpu_resources

    opts.check()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out_dir, opts.settings())
    client.run(warm_imports, opts.fmt)
    futures = _submit(client, manifest, files, out_dir, opts, gpu_resources(client))
    manifest.save()
    try:
        yield BatchProgress(0, len(futures), list(futures))
        for done, fut in enumerate(as_completed(list(futures)), start=1):
            path, step = futures[fut]
            if fut.status == "finished":
                manifest.set(path, step, "done", **fut.result())
            else:
                manifest.set(path, step, "failed", error=_message(fut.exception()))
            manifest.save()
            yield BatchProgress(done, len(futures), list(futures))
    finally:
        client.cancel(list(futures))
    _mark_skipped(manifest, opts.steps)
    manifest.save()
    return manifest


def _mark_skipped(manifest: Manifest, steps) -> None:
    """After a file's first failed step, its later steps are ``skipped``, not ``failed``."""
    for path, rec in manifest.files.items():
        first = next((s for s in steps if rec["steps"].get(s, {}).get("state") == "failed"),
                     None)
        if first is None:
            continue
        for s in steps[steps.index(first) + 1:]:
            if rec["steps"].get(s, {}).get("state") in ("failed", "pending"):
                manifest.set(Path(path), s, "skipped", error=f"{first} failed")
