"""The training loop of ``finetune``: steps, validation rounds, stopping rules (a generator).

``train_loop`` runs optimisation steps over the training planes (epoch after epoch, each
object once per epoch), sets the scheduled learning rate before each step, validates every
``validate_every`` steps and after the last one, keeps the best weights, and stops by the
rules of ``settings`` (step budget, time limit, patience in validation rounds after
``min_steps``; Ctrl-C: ``"interrupted"``). It yields ``ProgressEvent``s and returns the
``LoopState``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field

from napari_devosam.finetune.events import ProgressEvent, TrainingDiverged
from napari_devosam.finetune.settings import MIN_IMPROVEMENT, RunSettings, lr_at


@dataclass
class LoopState:
    """Where a run stands; ``best_state`` holds the best weights so far (CPU copies)."""

    before: float
    best: float
    best_state: dict
    best_step: int = 0
    best_epoch: int = 0
    step: int = 0
    epoch: int = 0
    stale: int = 0
    stopped: str = "completed"
    train_seconds: float = 0.0
    val_seconds: float = 0.0
    val_rounds: int = 0
    losses: list = field(default_factory=list)
    history: list = field(default_factory=list)


@dataclass
class Run:
    """What the loop works with: the trainer, prepared planes, settings and the clock.

    ``event(phase, **fields)`` makes a ``ProgressEvent`` (it fills in elapsed time and the
    totals); ``budget`` is the step budget; ``deadline`` a ``time.perf_counter`` value or
    None; ``score(val_targets)`` returns ``evaluate.summarize_scores``' dict.
    """

    trainer: object
    train_t: list
    val_t: list
    settings: RunSettings
    batch_prompts: int
    budget: int
    deadline: float | None
    event: Callable[..., ProgressEvent]
    score: Callable[[list], dict]
    start: float
    step_s: float | None = None  # seconds per step measured before the run (the ETA's rate
    # until the run's own steps are timed)

    def eta(self, st: LoopState) -> float:
        """Seconds left at the rates measured so far (``estimate.eta_seconds``)."""
        from napari_devosam.finetune.estimate import eta_seconds

        step_s = st.train_seconds / st.step if st.step else (self.step_s or 0.0)
        val_s = st.val_seconds / st.val_rounds if st.val_rounds else 0.0
        left = None if self.deadline is None else self.deadline - time.perf_counter()
        return eta_seconds(st.step, self.budget, step_s, self.settings.validate_every,
                           val_s, left)


def history_entry(run: Run, st: LoopState, loss, scores: dict) -> dict:
    return {"step": st.step, "epoch": st.epoch, "loss": loss, "val_iou": scores["mean_iou"],
            "val_box_iou": scores["box_iou"], "val_point_iou": scores["point_iou"],
            "lr": run.trainer.lr, "elapsed": round(time.perf_counter() - run.start, 2)}


def _batches(run: Run) -> Iterator[tuple[int, object, object]]:
    """``(epoch, plane targets, object indices)`` forever, epoch after epoch."""
    trainer, epoch = run.trainer, 0
    while True:
        epoch += 1
        for plane_index in trainer.sampler.permutation(len(run.train_t)).tolist():
            t = run.train_t[plane_index]
            for idx in trainer.epoch_batches(t, run.batch_prompts):
                yield epoch, t, idx


def _step(run: Run, st: LoopState, t, idx) -> float:
    s = run.settings
    run.trainer.set_lr(lr_at(st.step, s.lr, s.warmup_steps, run.budget))
    t0 = time.perf_counter()
    value = run.trainer.step(t, idx)
    st.train_seconds += time.perf_counter() - t0
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"the training loss became {value} at epoch {st.epoch}, step {st.step} "
            f"(plane {t.name}); try a lower learning rate than {s.lr:g}")
    st.losses.append(value)
    return value


def _validate(run: Run, st: LoopState) -> Generator[ProgressEvent, None, None]:
    """One validation round: score, keep the weights when better, count stale rounds."""
    t0 = time.perf_counter()
    scores = run.score(run.val_t)
    st.val_seconds += time.perf_counter() - t0
    st.val_rounds += 1
    loss = sum(st.losses) / len(st.losses) if st.losses else None
    st.losses = []
    st.history.append(history_entry(run, st, loss, scores))
    iou = scores["mean_iou"]
    if iou > st.best + MIN_IMPROVEMENT:
        st.best, st.best_state, st.stale = iou, run.trainer.state(), 0
        st.best_step, st.best_epoch = st.step, st.epoch
    elif st.step >= run.settings.min_steps:
        st.stale += 1
    yield run.event("validate", epoch=st.epoch, step=st.step, epoch_loss=loss, val_iou=iou,
                    best_val_iou=st.best, lr=run.trainer.lr, eta=run.eta(st),
                    message=f"step {st.step}: validation IoU {iou:.3f}")


def _stop_reason(run: Run, st: LoopState) -> str | None:
    if st.step >= run.budget:
        return "completed"
    if run.deadline is not None and time.perf_counter() > run.deadline:
        return "time_limit"
    return None


def train_loop(run: Run, st: LoopState) -> Generator[ProgressEvent, None, LoopState]:
    """Train until a stopping rule fires (see ``settings``); returns ``st`` with the best
    weights in ``st.best_state`` (not yet loaded into the model).

    A ``KeyboardInterrupt`` (Ctrl-C) during a step or a validation round, or thrown in at a
    yield (``generator.throw``: how a consumer passes on its Ctrl-C), is a clean stop:
    ``st.stopped`` is ``"interrupted"`` and the best weights validated so far are kept, as
    at any other stop. Raises ``TrainingDiverged`` when a step's loss is NaN or infinite.
    """
    try:
        return (yield from _train(run, st))
    except KeyboardInterrupt:
        st.stopped = "interrupted"
        return st


def _train(run: Run, st: LoopState) -> Generator[ProgressEvent, None, LoopState]:
    s = run.settings
    for epoch, t, idx in _batches(run):
        st.step, st.epoch = st.step + 1, epoch
        value = _step(run, st, t, idx)
        yield run.event("train", epoch=epoch, step=st.step, loss=value,
                        epoch_loss=sum(st.losses) / len(st.losses), best_val_iou=st.best,
                        lr=run.trainer.lr, eta=run.eta(st),
                        masks_per_s=run.trainer.masks_trained / max(st.train_seconds, 1e-9))
        reason = _stop_reason(run, st)
        if reason is not None or st.step % s.validate_every == 0:
            yield from _validate(run, st)
        if reason is None and s.patience is not None and st.stale >= s.patience:
            reason = "early_stopping"
        if reason is not None:
            st.stopped = reason
            return st
    return st  # pragma: no cover - _batches never ends
