"""The work behind the fine-tune widget, run in a napari worker thread (no Qt in here).

``run_job(settings, stop)`` is a generator: it loads the model when asked to (yielding
``LoadProgress``), then drives ``napari_devosam.finetune.finetune`` and re-yields its progress
events. It never raises: its return value is a ``JobOutcome`` (result, cancelled, or the
error). Errors are returned rather than raised because superqt's generator worker swallows a
``RuntimeError`` (it takes it for a deleted worker), and the NaN-loss error is one.

Cancelling: the widget sets ``stop`` (a ``threading.Event``); at the next yield the job closes
the fine-tuning generator *in the worker thread* (that is the core's cancel: the previous
decoder file stays as it was) and returns ``JobOutcome(cancelled=True)``.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_devosam.finetune.settings import RunSettings


@dataclass
class JobSettings:
    """What the widget asks for: ``devosam finetune``'s arguments.

    ``model`` is a loaded ``Sam`` (not modified: the core trains copies of its decoder) or a
    name ("vit_b", "vit_l", "vit_h") or a checkpoint path to load in the worker. ``settings``:
    the run's ``finetune.settings.RunSettings`` (the object the CLI and the API build too).
    ``extra``: more keyword arguments for ``finetune`` (e.g. the annotator's
    ``normalization``).
    """

    data_dirs: list[Path]
    model: Any
    out: Path
    settings: RunSettings = field(default_factory=RunSettings)
    device: str = "auto"
    cache: Any = None
    extra: dict = field(default_factory=dict)
    estimate_only: bool = False  # stop at the run's estimate: nothing trained or written


@dataclass
class LoadProgress:
    """Model loading (download) progress: ``done`` of ``total`` bytes (total 0 = unknown)."""

    done: int = 0
    total: int = 0
    phase: str = "load"


@dataclass
class JobOutcome:
    result: Any = None
    cancelled: bool = False
    error: BaseException | None = None
    model: Any = None  # the Sam that was trained (e.g. to reuse for the next run)
    estimate: str = ""  # the estimate line of an ``estimate_only`` job


class _Cancelled(Exception):
    pass


def _drive(gen: Iterator, stop: threading.Event, wrap=None, final=None
           ) -> Generator[Any, None, Any]:
    """Re-yield ``gen``'s items; at the first yield after ``stop`` is set, close ``gen`` and
    raise ``_Cancelled`` (unless ``final(item)`` says the work is already done). Returns
    ``gen``'s return value. ``gen`` is always closed here, in the worker thread."""
    finishing = False
    try:
        while True:
            if stop.is_set() and not finishing:
                raise _Cancelled
            try:
                item = next(gen)
            except StopIteration as done:
                return done.value
            finishing = final is not None and final(item)
            yield wrap(item) if wrap is not None else item
    finally:
        close = getattr(gen, "close", None)
        if close is not None:
            close()


def _load_model(name_or_path: str, device: str):
    from napari_devosam.models import loading as model_loading
    iter_load = getattr(model_loading, "iter_load_model", None)
    if iter_load is None:
        return model_loading.load_model(name_or_path, device=device)
        yield  # pragma: no cover - makes this a generator either way

    def wrap(item):
        if isinstance(item, tuple) and len(item) == 2:
            return LoadProgress(int(item[0] or 0), int(item[1] or 0))
        return LoadProgress(int(getattr(item, "done", 0) or 0), int(getattr(item, "total", 0) or 0))

    return (yield from _drive(iter_load(name_or_path, device=device), threading.Event(), wrap))


def _is_final(item) -> bool:
    # the core yields "done" after the decoder file is written: too late to cancel
    return getattr(item, "phase", None) == "done"


def _until_estimate(gen, stop: threading.Event) -> Generator[Any, None, str]:
    """Re-yield ``gen``'s events up to its estimate (the first event with an ``eta`` and a
    message: measured on a few steps of a throw-away decoder copy), then close it."""
    try:
        for item in gen:
            if stop.is_set():
                raise _Cancelled
            yield item
            if getattr(item, "eta", None) is not None and getattr(item, "message", ""):
                return item.message
        return ""
    finally:
        gen.close()


def run_job(settings: JobSettings, stop: threading.Event) -> Generator[Any, None, JobOutcome]:
    """Load (if needed) and fine-tune; yields ``LoadProgress`` then the core's progress events.

    Returns a ``JobOutcome``; never raises (see the module docstring). The core trains copies
    of the decoder, so a loaded model (the annotator's) is not changed by training.
    """
    sam = None
    try:
        if stop.is_set():
            raise _Cancelled
        if isinstance(settings.model, str | Path):
            sam = yield from _drive(_load_model(str(settings.model), settings.device), stop)
            device = None  # where it was loaded
        else:
            sam = settings.model
            # "auto": train where the model is; its embeddings are computed there anyway
            device = None if settings.device == "auto" else settings.device
        from napari_devosam.finetune import finetune

        kwargs: dict[str, Any] = dict(settings.extra)
        kwargs.update(out=settings.out, settings=settings.settings, device=device)
        if settings.cache is not None:
            kwargs["cache"] = settings.cache
        gen = finetune([Path(d) for d in settings.data_dirs], sam, **kwargs)
        if settings.estimate_only:
            line = yield from _until_estimate(gen, stop)
            return JobOutcome(estimate=line, model=sam)
        result = yield from _drive(gen, stop, final=_is_final)
        return JobOutcome(result=result, model=sam)
    except _Cancelled:
        return JobOutcome(cancelled=True, model=sam)
    except Exception as exc:  # noqa: BLE001 - reported to the user as a notification
        return JobOutcome(error=exc, model=sam)
