"""The fine-tuning progress events and result as plain values for display (no Qt).

``napari_devosam.finetune.finetune`` yields progress events (``phase`` "embed" / "train" /
"validate" / "done", ``epoch``, ``step``, ``total_steps``, ``loss``, ``val_iou``,
``elapsed`` ...) and returns a result (decoder path, validation IoU before and after). This
module turns both into plain values for labels, progress bars and the curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


def _num(value) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value, default: int = 0) -> int:
    number = _num(value)
    return default if number is None or not math.isfinite(number) else int(number)


@dataclass
class ShownEvent:
    """One progress event, as the widget shows it.

    ``x``: position on the curve's step axis (steps done; 0 = the starting decoder);
    ``done`` / ``total``: for progress bars (``total`` 0 = unknown).
    """

    phase: str
    epoch: int
    epochs: int
    step: int
    total_steps: int
    loss: float | None
    val_iou: float | None
    best_val_iou: float | None
    masks_per_s: float | None
    elapsed: float | None
    message: str
    x: float


def read_event(event) -> ShownEvent:
    """``event`` (``finetune.events.ProgressEvent``) -> ``ShownEvent``.

    In the core's events, "train"/"validate" steps count optimisation steps over the whole
    run (``total_steps`` = the step budget), "embed" steps count planes.
    """
    phase = str(getattr(event, "phase", "train"))
    epoch = _int(getattr(event, "epoch", 0))
    epochs = _int(getattr(event, "epochs", 0))
    step = _int(getattr(event, "step", 0))
    total_steps = _int(getattr(event, "total_steps", 0))
    x = step if phase in ("train", "validate") else 0
    return ShownEvent(
        phase=phase, epoch=epoch, epochs=epochs, step=max(step, 0),
        total_steps=max(total_steps, 0), loss=_num(getattr(event, "loss", None)),
        val_iou=_num(getattr(event, "val_iou", None)),
        best_val_iou=_num(getattr(event, "best_val_iou", None)),
        masks_per_s=_num(getattr(event, "masks_per_s", None)),
        elapsed=_num(getattr(event, "elapsed", None)),
        message=str(getattr(event, "message", "") or ""), x=float(x))


_PHASES = {"embed": "Computing embeddings", "train": "Training", "validate": "Validated",
           "done": "Saved the decoder"}


def describe(ev: ShownEvent) -> str:
    """A status line, e.g. ``Training step 13/400, epoch 2, loss 0.412, 85 masks/s (1 min 3 s)``.
    """
    parts = [_PHASES.get(ev.phase, ev.phase.capitalize())]
    if ev.phase in ("train", "embed") and ev.total_steps:
        parts.append(f"step {ev.step}/{ev.total_steps}" if ev.phase == "train"
                     else f"plane {ev.step}/{ev.total_steps}")
    if ev.phase == "validate" and ev.step:
        parts.append(f"step {ev.step}")
    if ev.phase in ("train", "validate") and ev.epoch:
        parts.append(f"epoch {ev.epoch}")
    if ev.loss is not None:
        parts.append(f"loss {ev.loss:.4g}")
    if ev.val_iou is not None:
        parts.append(f"IoU {ev.val_iou:.3f}")
    if ev.masks_per_s:
        parts.append(f"{ev.masks_per_s:.0f} masks/s")
    text = parts[0] + (" " + ", ".join(parts[1:]) if len(parts) > 1 else "")
    if ev.elapsed is not None:
        minutes, seconds = divmod(int(ev.elapsed), 60)
        text += f" ({minutes} min {seconds} s)" if minutes else f" ({seconds} s)"
    if ev.message:
        text += f". {ev.message}"
    return text


_STOPPED = {"early_stopping": "stopped early (no more improvement)",
            "time_limit": "stopped at the time limit"}


def improved(result) -> bool:
    """Whether the run wrote a better decoder (``FinetuneResult.improved`` and a path)."""
    return bool(getattr(result, "improved", True)) and getattr(result, "path", None) is not None


def result_summary(result) -> tuple[str, Path | None]:
    """``("Validation IoU: 0.412 -> 0.655", path)`` for ``finetune.events.FinetuneResult``,
    with notes when the IoU was measured on training planes or training stopped early; for a
    run without gain the core's message ("no improvement ...; nothing written") and None."""
    path = getattr(result, "path", None)
    before = _num(getattr(result, "val_iou_before", None))
    after = _num(getattr(result, "val_iou_after", None))
    if not improved(result):
        message = str(getattr(result, "message", "") or "")
        if not message:
            shown = "n/a" if before is None else f"{before:.3f}"
            message = (f"no improvement over the starting decoder (val IoU {shown}); "
                       "nothing written")
        return message[0].upper() + message[1:], None
    if before is not None and after is not None:
        text = f"Validation IoU: {before:.3f} -> {after:.3f}"
    elif after is not None:
        text = f"Validation IoU: {after:.3f}"
    else:
        text = "Validation IoU: not measured"
    notes = []
    if getattr(result, "validated_on", "") == "training":
        notes.append("measured on the training planes (too few to hold any out)")
    stopped = _STOPPED.get(getattr(result, "stopped", ""))
    if stopped:
        notes.append(stopped)
    if notes:
        text += " (" + "; ".join(notes) + ")"
    return text, (Path(path) if path is not None else None)
