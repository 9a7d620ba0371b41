"""Fine-tuning SAM's mask decoder on annotated planes: a generator you can stop at any yield.

Order of work (one function each, below): check the settings, read and check all data
(errors name the file, nothing is trained), split by image into training and validation
planes, embed every plane once through the embedding cache (the image encoder is frozen),
measure the validation IoU of the starting decoder, train in optimisation steps with
validation rounds (``loop.train_loop``; stopping rules and learning-rate schedule in
``settings``) and finally write the best decoder with ``models.decoder_files.save_decoder``
(atomic) -- only when it beats the starting decoder: a run without gain writes nothing and
says so.

The model passed in is never modified: training works on copies of its prompt encoder and
mask decoder. Closing the generator (cancel) writes nothing, so a decoder file already at
``out`` stays exactly as it was. To use it: ``models.decoder_files.apply_decoder(sam, path)``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Generator, Iterable
from dataclasses import replace
from pathlib import Path

from napari_devosam.finetune.events import FinetuneResult, ProgressEvent
from napari_devosam.finetune.loop import LoopState, Run, history_entry, train_loop
from napari_devosam.finetune.settings import (  # noqa: F401 - re-exported defaults
    DEFAULT_BATCH_PROMPTS,
    DEFAULT_BATCH_PROMPTS_CPU,
    DEFAULT_CORRECTION_ROUNDS,
    DEFAULT_LR,
    DEFAULT_MIN_STEPS,
    DEFAULT_PATIENCE,
    DEFAULT_STEPS,
    DEFAULT_VALIDATE_EVERY,
    DEFAULT_WARMUP_STEPS,
    MIN_IMPROVEMENT,
    RunSettings,
    check_settings,
    resolve_budget,
)
from napari_devosam.utils.progress import drain


def no_gain_message(before: float) -> str:
    return (f"no improvement over the starting decoder (val IoU {before:.3f}); "
            "nothing written")


def _load_data(data_dirs, s: RunSettings, sam) -> dict:
    """Read and split the data (by file), then (``s.zoom_views``) put small objects in the
    zoomed views the predictor decodes them in (``views.view_planes``)."""
    from napari_devosam.finetune.data import load_planes, split_planes
    from napari_devosam.finetune.views import view_planes

    folders = [data_dirs] if isinstance(data_dirs, str | os.PathLike) else list(data_dirs)
    train, val = split_planes(load_planes(folders), s.val_fraction, s.seed)
    train, val = (view_planes(train, sam, s.zoom_views), view_planes(val, sam, s.zoom_views))
    return {"folders": folders, "train": train, "val": val,
            "validated_on": "held-out" if val else "training"}


def _prepare_targets(sam, data: dict, cache, normalization, dev, emit, probed: dict,
                     whole: bool) -> Generator[ProgressEvent, None, tuple[list, list]]:
    """Embed every plane (through ``cache``; the first one the probe embedded) and put its
    ground truth on the decoder's grid (and, ``whole``, its encoder input); returns (training
    targets, validation targets: the training ones when none are held out). The first
    ``"embed"`` event carries the run's estimate (``eta``, and its line as ``message``).
    """
    from napari_devosam.engine.embeddings import embed_plane
    from napari_devosam.finetune.targets import prepare_plane, with_pixels

    everything = data["train"] + data["val"]
    grid = tuple(4 * n for n in sam.prompt_encoder.image_embedding_size)
    est = probed["estimate"]
    targets = []
    for i, plane in enumerate(everything):
        emb = (probed["embedding"] if i == 0
               else embed_plane(sam, plane.image, cache, normalization))
        t = prepare_plane(plane, emb, grid, dev)
        targets.append(with_pixels(t, sam, plane, normalization) if whole else t)
        first = {"eta": est.seconds, "message": est.line()} if i == 0 else {
            "eta": est.seconds - (time.perf_counter() - probed["started"])}
        yield emit("embed", step=i + 1, total_steps=len(everything), **first)
    train_t = targets[: len(data["train"])]
    return train_t, (targets[len(data["train"]):] or train_t)


def _start_run(sam, s: RunSettings, dev, train_t, val_t, emit, start, deadline,
               step_s: float) -> Run:
    from napari_devosam.finetune.evaluate import score_targets
    from napari_devosam.finetune.trainer import Trainer, training_model

    model = training_model(sam, dev, s.train_prompt_encoder, whole=s.train_whole)
    trainer = Trainer(model, lr=s.lr, weight_decay=s.weight_decay,
                      correction_rounds=s.correction_rounds, loss=s.loss, seed=s.seed,
                      mixed_precision=s.mixed_precision)
    per_epoch = sum(trainer.steps_per_pass(t, s.batch_prompts) for t in train_t)
    budget = resolve_budget(s, per_epoch)
    epochs = s.epochs or math.ceil(budget / per_epoch)

    def event(phase, **kw):
        return emit(phase, epochs=epochs, total_steps=budget, **kw)

    return Run(trainer=trainer, train_t=train_t, val_t=val_t, settings=s,
               batch_prompts=s.batch_prompts, budget=budget, deadline=deadline, event=event,
               score=lambda ts: score_targets(model, trainer.refresh(ts)), start=start,
               step_s=step_s)


def _validate_start(run: Run) -> Generator[ProgressEvent, None, LoopState]:
    t0 = time.perf_counter()
    scores = run.score(run.val_t)
    before = scores["mean_iou"]
    st = LoopState(before=before, best=before, best_state=run.trainer.state(),
                   val_seconds=time.perf_counter() - t0, val_rounds=1)
    st.history.append(history_entry(run, st, None, scores))
    yield run.event("validate", val_iou=before, best_val_iou=before, eta=run.eta(st),
                    message=f"starting decoder: validation IoU {before:.3f}")
    return st


def _metadata(sam, data: dict, s: RunSettings, run: Run, st: LoopState, dev,
              normalization) -> dict:
    from napari_devosam.engine.image import DEFAULT_NORMALIZATION
    from napari_devosam.finetune.data import summarize
    from napari_devosam.models.identity import architecture_name

    settings = {**s.to_dict(), "steps": run.budget, "device": str(dev),
                "normalization": (normalization or DEFAULT_NORMALIZATION).to_dict()}
    return {
        "kind": "finetuned-model" if s.train_whole else "finetuned-mask-decoder",
        "base_model": architecture_name(sam),
        "trained_prompt_encoder": bool(s.train_prompt_encoder),
        "trained_encoder": bool(s.train_whole),
        "data": {"folders": [str(Path(d)) for d in data["folders"]],
                 "train": summarize(data["train"]), "validation": summarize(data["val"]),
                 "validated_on": data["validated_on"]},
        "settings": settings,
        "val_iou_before": st.before, "val_iou_after": st.best,
        "best_step": st.best_step, "best_epoch": st.best_epoch,
        "steps_run": st.step, "epochs_run": st.epoch, "stopped": st.stopped,
        "history": st.history,
        "masks_per_s": round(run.trainer.masks_trained / max(st.train_seconds, 1e-9), 2),
    }


def _finish(sam, out: Path, run: Run, st: LoopState, metadata: dict
            ) -> Generator[ProgressEvent, None, FinetuneResult]:
    """Write the best decoder when it beats the starting one (else nothing); the result."""
    from napari_devosam.models.decoder_files import save_decoder
    from napari_devosam.models.identity import architecture_name
    from napari_devosam.models.model_files import save_model

    improved = st.best > st.before + MIN_IMPROVEMENT
    path = None
    if improved:
        run.trainer.load_state(st.best_state)
        if run.settings.train_whole:
            path = save_model(run.trainer.model, out, metadata=metadata)
            wrote = f"wrote the whole model {path} (load it as the model: --model {path})"
        else:
            path = save_decoder(run.trainer.model, out, base_model=architecture_name(sam),
                                metadata=metadata,
                                include_prompt_encoder=bool(run.settings.train_prompt_encoder))
            wrote = f"wrote {path}"
        message = f"validation IoU {st.before:.3f} -> {st.best:.3f}; {wrote}"
    else:
        message = no_gain_message(st.before)
    result = FinetuneResult(path=path, val_iou_before=st.before, val_iou_after=st.best,
                            best_epoch=st.best_epoch, epochs_run=st.epoch, stopped=st.stopped,
                            validated_on=metadata["data"]["validated_on"], history=st.history,
                            masks_per_s=metadata["masks_per_s"], metadata=metadata,
                            improved=improved, best_step=st.best_step, steps_run=st.step,
                            message=message)
    yield run.event("done", epoch=st.epoch, step=st.step, val_iou=st.best,
                    best_val_iou=st.best, masks_per_s=result.masks_per_s, message=message)
    return result


def finetune(
    data_dirs: str | os.PathLike | Iterable, sam, *, out: str | os.PathLike,
    settings: RunSettings | None = None, device=None, cache=None, normalization=None,
    **knobs,
) -> Generator[ProgressEvent, None, FinetuneResult]:
    """Fine-tune ``sam``'s mask decoder on annotated data; yields ``ProgressEvent``s, returns a
    ``FinetuneResult``. The decoder is written only when it beats the starting decoder's
    validation IoU; otherwise nothing is written and ``result.path`` is None.

    Arguments:
      data_dirs: a bundle or a folder with ``images/`` and ``labels/`` (or a list of them).
      sam: a ``segment_anything`` ``Sam`` (not modified).
      out: the decoder file to write (safetensors), written once at the end, atomically.
      settings: a ``settings.RunSettings`` (default: its defaults): step budget, time limit,
        early stopping, learning rate, loss, prompts per step, ... each declared once there
        with its range and meaning (table in docs/finetune.md).
      **knobs: fields of ``RunSettings`` given one by one (``steps=400, lr=1e-3``); they
        override ``settings``.
      device: where the decoder trains (default: ``sam``'s device); embeddings are computed
        by ``sam`` on its own device.
      cache: an ``embeddings.EmbeddingCache`` (planes embedded before are not recomputed).
      normalization: ``image.Normalization`` of non-uint8 planes (must match the annotator's
        for cache hits; default percentiles 0.5..99.5).

    Raises ``ValueError``/``FileNotFoundError`` for bad settings (an unknown or bad knob
    named) or data (before any work), ``TrainingDiverged`` (a ``RuntimeError``) when the loss
    becomes NaN or infinite.
    """
    import torch

    from napari_devosam.finetune.estimate import probe
    from napari_devosam.utils.devices import resolve_device

    start = time.perf_counter()
    s = RunSettings.from_dict({**(settings or RunSettings()).to_dict(), **knobs})
    out = check_settings(s, out)
    data = _load_data(data_dirs, s, sam)
    dev = resolve_device(device) if device is not None else sam.pixel_mean.device
    s = replace(s, batch_prompts=int(s.batch_prompts or DEFAULT_BATCH_PROMPTS.get(
        dev.type, DEFAULT_BATCH_PROMPTS_CPU)), train_whole=trains_whole(sam, s))
    deadline = None if s.max_minutes is None else start + 60.0 * s.max_minutes

    def emit(phase, **kw):
        return ProgressEvent(phase, elapsed=time.perf_counter() - start, **kw)

    threads_before = torch.get_num_threads()
    try:
        probed = probe(sam, data["train"], data["val"], s, dev, s.train_whole, cache,
                       normalization)
        probed["started"] = time.perf_counter()
        s = replace(s, threads=probed["threads"])
        train_t, val_t = yield from _prepare_targets(sam, data, cache, normalization, dev,
                                                     emit, probed, s.train_whole)
        run = _start_run(sam, s, dev, train_t, val_t, emit, start, deadline,
                         probed["estimate"].step_s)
        st = yield from _validate_start(run)
        st = yield from train_loop(run, st)
        metadata = _metadata(sam, data, s, run, st, dev, normalization)
        return (yield from _finish(sam, out, run, st, metadata))
    finally:
        torch.set_num_threads(threads_before)


def trains_whole(sam, s: RunSettings) -> bool:
    """Whether a run trains the image encoder too: ``s.train_whole``, or when that is None
    (auto), whether ``sam`` is a bundled model or a file of that format (``load_model`` marks
    them ``devosam_bundled``); vit_b/l/h and other checkpoints train the decoder only."""
    if s.train_whole is not None:
        return bool(s.train_whole)
    return bool(getattr(sam, "devosam_bundled", False))


def run_finetune(data_dirs, sam, *, out, callback=None, **kwargs) -> FinetuneResult:
    """Run ``finetune`` to the end (same arguments and errors); ``callback(event)`` sees every
    ``ProgressEvent``. Returns the ``FinetuneResult`` (``path`` None when nothing improved).
    """
    return drain(finetune(data_dirs, sam, out=out, **kwargs), callback)
