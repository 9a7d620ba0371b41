"""What the fine-tuning generator yields and returns, and its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

PHASES = ("embed", "validate", "train", "done")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite (a learning rate too high, or broken data)."""


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report of ``finetune``.

    Attributes:
      phase: ``"embed"`` (computing/loading embeddings: ``step`` of ``total_steps`` planes),
        ``"validate"`` (a validation round finished: ``val_iou`` is set; ``step`` 0 is the
        starting decoder), ``"train"`` (one optimisation step finished: ``loss`` is set;
        ``step`` of ``total_steps`` counts steps over all epochs; ``total_steps`` is the step
        budget) or ``"done"`` (the run is over: the decoder file is written, or nothing is
        when nothing beat the starting decoder, as ``message`` says; ``val_iou`` is the best
        validation IoU).
      epoch: current epoch (pass over the training objects), 1-based (0 before training).
      epochs: the epoch cap asked for, else the epochs the step budget spans.
      step, total_steps: progress within the phase (see ``phase``).
      loss: this step's mean loss over its correction rounds (``"train"``), else None.
      epoch_loss: mean loss of the epoch so far (``"train"``/``"validate"``), else None.
      val_iou: validation mean IoU (``"validate"``/``"done"``), else None.
      best_val_iou: the best validation IoU so far (None before the first validation).
      lr: the learning rate of this step (``"train"``/``"validate"``), else None.
      masks_per_s: training throughput so far (masks trained per second of training).
      elapsed: seconds since ``finetune`` started.
      eta: estimated seconds left (``"embed"``/``"train"``/``"validate"``), from rates
        measured on this run (``finetune.estimate``); None when not known. The first
        ``"embed"`` event carries the whole run's estimate, its ``message`` the estimate line.
      message: a human-readable line (e.g. why training stopped).
    """

    phase: str
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    epoch_loss: float | None = None
    val_iou: float | None = None
    best_val_iou: float | None = None
    lr: float | None = None
    masks_per_s: float | None = None
    elapsed: float = 0.0
    message: str = ""
    eta: float | None = None


@dataclass
class FinetuneResult:
    """What ``finetune`` returns.

    Attributes:
      path: the decoder file written (``models.decoder_files`` format; apply it with
        ``models.decoder_files.apply_decoder(sam, path)``), or None when no validation round
        beat the starting decoder (then nothing was written: see ``improved``).
      val_iou_before: validation mean IoU of the starting decoder.
      val_iou_after: the best validation mean IoU (of the decoder written, when one was).
      best_epoch: the epoch of the best validation round (0: the starting decoder).
      epochs_run: epochs trained (the last is usually partial).
      stopped: ``"completed"`` (step budget or epoch cap reached), ``"early_stopping"``,
        ``"time_limit"`` or ``"interrupted"`` (Ctrl-C in the CLI: the best weights so far are
        kept).
      validated_on: ``"held-out"`` or ``"training"`` (too few planes to hold any out).
      history: one dict per validation round: step, epoch, loss (mean since the previous
        round), val_iou, val_box_iou, val_point_iou, lr, elapsed (seconds).
      masks_per_s: training throughput (masks trained per second of training steps).
      metadata: the metadata stored in the decoder file (also set when none was written).
      improved: whether the best validation IoU beat the starting one (a file was written).
      best_step: the step of the best validation round (0: the starting decoder).
      steps_run: optimisation steps trained.
      message: one line saying what happened (e.g. "no improvement over the starting
        decoder (val IoU 0.412); nothing written").
    """

    path: Path | None
    val_iou_before: float
    val_iou_after: float
    best_epoch: int
    epochs_run: int
    stopped: str
    validated_on: str
    history: list[dict] = field(default_factory=list)
    masks_per_s: float = 0.0
    metadata: dict = field(default_factory=dict)
    improved: bool = True
    best_step: int = 0
    steps_run: int = 0
    message: str = ""
