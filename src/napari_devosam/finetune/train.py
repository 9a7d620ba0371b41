"""Fine-tuning SAM's mask decoder on annotated planes: a generator you can stop at any yield.

Order of work: read and check all data (errors name the file, nothing is trained), split by
image into training and validation planes, embed every plane once through the embedding
cache (the image encoder is frozen), measure the validation IoU of the starting decoder,
then train epoch by epoch (validation after each, best weights kept, early stopping, time
limit) and finally write the best decoder with ``models.decoder_files.save_decoder`` (atomic).

The model passed in is never modified: training works on copies of its prompt encoder and
mask decoder. Closing the generator (cancel) writes nothing, so a decoder file already at
``out`` stays exactly as it was. To use it: ``models.decoder_files.apply_decoder(sam, path)``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Generator, Iterable
from pathlib import Path

from napari_devosam.finetune.events import FinetuneResult, ProgressEvent, TrainingDiverged
from napari_devosam.utils.progress import drain

DEFAULT_LR = 1e-4
DEFAULT_BATCH_PROMPTS = {"cuda": 16}  # per device type; others (CPU) below
DEFAULT_BATCH_PROMPTS_CPU = 4  # measured: per mask, 4 beats 16 on a CPU (cache-bound)
DEFAULT_PATIENCE = 3
MIN_IMPROVEMENT = 1e-4


def _check_settings(epochs, max_minutes, lr, batch_prompts, patience, out) -> Path:
    if int(epochs) < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if max_minutes is not None and not max_minutes > 0:
        raise ValueError(f"max_minutes must be positive, got {max_minutes}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"the learning rate must be a positive number, got {lr}")
    if batch_prompts is not None and int(batch_prompts) < 1:
        raise ValueError(f"batch_prompts must be at least 1, got {batch_prompts}")
    if patience is not None and int(patience) < 1:
        raise ValueError(f"patience must be at least 1 (or None), got {patience}")
    out = Path(out).expanduser()
    if out.is_dir():
        raise ValueError(f"output {out} is a folder; give a file name like decoder.safetensors")
    return out


def _history_entry(epoch, loss, scores, elapsed) -> dict:
    return {"epoch": epoch, "loss": loss, "val_iou": scores["mean_iou"],
            "val_box_iou": scores["box_iou"], "val_point_iou": scores["point_iou"],
            "elapsed": round(elapsed, 2)}


def finetune(
    data_dirs: str | os.PathLike | Iterable,
    sam,
    *,
    out: str | os.PathLike,
    epochs: int = 10,
    max_minutes: float | None = None,
    device=None,
    lr: float = DEFAULT_LR,
    batch_prompts: int | None = None,
    correction_rounds: int = 2,
    val_fraction: float = 0.2,
    seed: int = 0,
    train_prompt_encoder: bool = False,
    cache=None,
    patience: int | None = DEFAULT_PATIENCE,
    loss: str = "bce",
    weight_decay: float = 0.01,
    normalization=None,
    mixed_precision: bool | None = None,
) -> Generator[ProgressEvent, None, FinetuneResult]:
    """Fine-tune ``sam``'s mask decoder on annotated data; yields ``ProgressEvent``s, returns a
    ``FinetuneResult``.

    Arguments:
      data_dirs: a bundle or a folder with ``images/`` and ``labels/`` (or a list of them).
      sam: a ``segment_anything`` ``Sam`` (not modified).
      out: the decoder file to write (safetensors), written once at the end, atomically.
      epochs: passes over the training planes (each object once per pass).
      max_minutes: wall-clock limit of the whole run; training stops after the step that
        crosses it, then one last validation and the write follow.
      device: where the decoder trains (default: ``sam``'s device); embeddings are computed
        by ``sam`` on its own device.
      lr, weight_decay: AdamW.
      batch_prompts: prompts (objects) per step, all on one image embedding (default 16 on
        CUDA, 4 on the CPU).
      correction_rounds: extra decoder passes per step with a point from the error region and
        the previous logits as mask prompt.
      val_fraction: share of the image files held out for validation (at least one file when
        there are two or more; with a single plane the training plane is validated).
      seed: seeds the split and the prompt simulation.
      train_prompt_encoder: also train the prompt encoder (then saved in the file too).
      cache: an ``embeddings.EmbeddingCache`` (planes embedded before are not recomputed).
      patience: stop after this many epochs without a better validation IoU (None: never).
      loss: ``"bce"`` (BCE + dice), ``"balanced"`` (class-balanced BCE + dice: quicker from
        a poor start, small objects weigh more) or ``"focal"`` (20 x focal + dice, SAM's
        pre-training loss).
      normalization: ``image.Normalization`` of non-uint8 planes (must match the annotator's
        for cache hits; default percentiles 0.5..99.5).
      mixed_precision: autocast bf16/fp16; default on CUDA only.

    Raises ``ValueError``/``FileNotFoundError`` for bad settings or data (before any work),
    ``TrainingDiverged`` (a ``RuntimeError``) when the loss becomes NaN or infinite.
    """
    from napari_devosam.engine.embeddings import embed_plane
    from napari_devosam.finetune.data import load_planes, split_planes, summarize
    from napari_devosam.finetune.evaluate import score_targets
    from napari_devosam.finetune.targets import prepare_plane
    from napari_devosam.finetune.trainer import Trainer, training_model
    from napari_devosam.models.identity import architecture_name
    from napari_devosam.utils.devices import resolve_device

    start = time.perf_counter()
    out = _check_settings(epochs, max_minutes, lr, batch_prompts, patience, out)
    epochs = int(epochs)
    folders = _folders(data_dirs)
    planes = load_planes(folders)
    train_planes, val_planes = split_planes(planes, val_fraction, seed)
    validated_on = "held-out" if val_planes else "training"
    dev = resolve_device(device) if device is not None else sam.pixel_mean.device
    batch_prompts = int(batch_prompts or DEFAULT_BATCH_PROMPTS.get(dev.type,
                                                                    DEFAULT_BATCH_PROMPTS_CPU))
    grid = tuple(4 * n for n in sam.prompt_encoder.image_embedding_size)
    deadline = None if max_minutes is None else start + 60.0 * max_minutes

    def event(phase, **kw):
        return ProgressEvent(phase, epochs=epochs, elapsed=time.perf_counter() - start, **kw)

    everything = train_planes + val_planes
    targets = []
    for i, plane in enumerate(everything):
        emb = embed_plane(sam, plane.image, cache, normalization)
        targets.append(prepare_plane(plane, emb, grid, dev))
        yield event("embed", step=i + 1, total_steps=len(everything))
    train_t = targets[: len(train_planes)]
    val_t = targets[len(train_planes):] or train_t

    model = training_model(sam, dev, train_prompt_encoder)
    trainer = Trainer(model, lr=lr, weight_decay=weight_decay,
                      correction_rounds=correction_rounds, loss=loss, seed=seed,
                      mixed_precision=mixed_precision)
    scores = score_targets(model, val_t)
    before = best = scores["mean_iou"]
    best_state, best_epoch = trainer.state(), 0
    history = [_history_entry(0, None, scores, time.perf_counter() - start)]
    yield event("validate", val_iou=before, best_val_iou=best,
                message=f"starting decoder: validation IoU {before:.3f}")

    per_epoch = sum(trainer.steps_per_pass(t, batch_prompts) for t in train_t)
    total_steps = epochs * per_epoch
    step, train_seconds, stopped, stale, epoch = 0, 0.0, "completed", 0, 0
    for epoch in range(1, epochs + 1):
        losses, timed_out = [], False
        for plane_index in trainer.sampler.permutation(len(train_t)).tolist():
            t = train_t[plane_index]
            for idx in trainer.epoch_batches(t, batch_prompts):
                t0 = time.perf_counter()
                value = trainer.step(t, idx)
                train_seconds += time.perf_counter() - t0
                step += 1
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"the training loss became {value} at epoch {epoch}, step {step} "
                        f"(plane {t.name}); try a lower learning rate than {lr:g}")
                losses.append(value)
                yield event("train", epoch=epoch, step=step, total_steps=total_steps,
                            loss=value, epoch_loss=sum(losses) / len(losses),
                            best_val_iou=best,
                            masks_per_s=trainer.masks_trained / max(train_seconds, 1e-9))
                if deadline is not None and time.perf_counter() > deadline:
                    timed_out = True
                    break
            if timed_out:
                break
        scores = score_targets(model, val_t)
        epoch_loss = sum(losses) / len(losses)
        history.append(_history_entry(epoch, epoch_loss, scores, time.perf_counter() - start))
        if scores["mean_iou"] > best + MIN_IMPROVEMENT:
            best, best_state, best_epoch, stale = scores["mean_iou"], trainer.state(), epoch, 0
        else:
            stale += 1
        yield event("validate", epoch=epoch, step=step, total_steps=total_steps,
                    epoch_loss=epoch_loss, val_iou=scores["mean_iou"], best_val_iou=best,
                    message=f"epoch {epoch}: validation IoU {scores['mean_iou']:.3f}")
        if timed_out:
            stopped = "time_limit"
            break
        if patience is not None and stale >= patience and epoch < epochs:
            stopped = "early_stopping"
            break

    trainer.load_state(best_state)
    masks_per_s = trainer.masks_trained / max(train_seconds, 1e-9)
    metadata = {
        "kind": "finetuned-mask-decoder",
        "base_model": architecture_name(sam),
        "trained_prompt_encoder": bool(train_prompt_encoder),
        "data": {"folders": [str(Path(d)) for d in folders],
                 "train": summarize(train_planes), "validation": summarize(val_planes),
                 "validated_on": validated_on},
        "settings": {"epochs": epochs, "max_minutes": max_minutes, "lr": lr,
                     "weight_decay": weight_decay, "batch_prompts": batch_prompts,
                     "correction_rounds": correction_rounds, "val_fraction": val_fraction,
                     "seed": seed, "patience": patience, "loss": loss,
                     "device": str(dev), "normalization": _norm_dict(normalization)},
        "val_iou_before": before,
        "val_iou_after": best,
        "best_epoch": best_epoch,
        "epochs_run": epoch,
        "stopped": stopped,
        "history": history,
        "masks_per_s": round(masks_per_s, 2),
    }
    from napari_devosam.models.decoder_files import save_decoder

    path = save_decoder(model, out, base_model=architecture_name(sam), metadata=metadata,
                        include_prompt_encoder=bool(train_prompt_encoder))
    result = FinetuneResult(path=path, val_iou_before=before, val_iou_after=best,
                            best_epoch=best_epoch, epochs_run=epoch, stopped=stopped,
                            validated_on=validated_on, history=history,
                            masks_per_s=masks_per_s, metadata=metadata)
    yield event("done", epoch=epoch, step=step, total_steps=total_steps, val_iou=best,
                best_val_iou=best, masks_per_s=masks_per_s,
                message=f"validation IoU {before:.3f} -> {best:.3f}; wrote {path}")
    return result


def _folders(data_dirs) -> list:
    return [data_dirs] if isinstance(data_dirs, str | os.PathLike) else list(data_dirs)


def _norm_dict(normalization):
    from napari_devosam.engine.image import DEFAULT_NORMALIZATION

    return (normalization or DEFAULT_NORMALIZATION).to_dict()


def run_finetune(data_dirs, sam, *, out, callback=None, **kwargs) -> FinetuneResult:
    """Run ``finetune`` to the end; ``callback(event)`` sees every ``ProgressEvent``."""
    return drain(finetune(data_dirs, sam, out=out, **kwargs), callback)
