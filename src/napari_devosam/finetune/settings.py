"""The settings of a fine-tuning run, checked once, and the learning-rate schedule.

Training is counted in optimisation steps (one step: ``batch_prompts`` objects of one plane,
``1 + correction_rounds`` decoder passes). A run stops at the first of:

- the step budget (``steps``; ``epochs`` passes over the training objects, when given, cap
  it too);
- the time limit (``max_minutes``, wall clock of the whole run);
- early stopping: ``patience`` validation rounds in a row without a better validation IoU,
  counted only once ``min_steps`` steps are done (a decoder trained from a poor start gets
  worse for a while before it gets better; stopping in that dip would waste the run).

The validation IoU is measured every ``validate_every`` steps, after the last step, and once
before training (the starting decoder). The learning rate rises linearly over
``warmup_steps`` and then falls along a cosine to ``MIN_LR_FACTOR`` x ``lr`` at the end of the
step budget.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

# Defaults measured on 10 phantom planes (benchmarks/bench_finetune.py --learning; see
# docs/finetune.md): a random vit_b decoder and a trained one.
DEFAULT_LR = 1e-3
DEFAULT_STEPS = 400
DEFAULT_WARMUP_STEPS = 20
DEFAULT_VALIDATE_EVERY = 25
DEFAULT_PATIENCE = 6  # validation rounds
DEFAULT_MIN_STEPS = 200
DEFAULT_CORRECTION_ROUNDS = 2
MIN_LR_FACTOR = 0.05
DEFAULT_BATCH_PROMPTS = {"cuda": 16}  # per device type; others (CPU) below
DEFAULT_BATCH_PROMPTS_CPU = 4  # measured: per mask, 4 beats 16 on a CPU (cache-bound)
MIN_IMPROVEMENT = 1e-4


@dataclass(frozen=True)
class RunSettings:
    """Everything that shapes a run (stored in the decoder file's metadata).

    ``steps`` is the step budget actually used (``resolve_budget`` fills it in once the number
    of steps per epoch is known); ``None`` values mean "no such limit".
    """

    steps: int | None = DEFAULT_STEPS
    epochs: int | None = None
    max_minutes: float | None = None
    lr: float = DEFAULT_LR
    warmup_steps: int = DEFAULT_WARMUP_STEPS
    weight_decay: float = 0.01
    batch_prompts: int | None = None
    correction_rounds: int = DEFAULT_CORRECTION_ROUNDS
    validate_every: int = DEFAULT_VALIDATE_EVERY
    patience: int | None = DEFAULT_PATIENCE
    min_steps: int = DEFAULT_MIN_STEPS
    val_fraction: float = 0.2
    seed: int = 0
    loss: str = "bce"
    train_prompt_encoder: bool = False
    mixed_precision: bool | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _positive_int(name: str, value, allow_none: bool = False, minimum: int = 1) -> None:
    if value is None and allow_none:
        return
    if value is None or int(value) != value or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}"
                         f"{' (or None)' if allow_none else ''}, got {value}")


def check_settings(s: RunSettings, out) -> Path:
    """Raise ``ValueError`` naming the first bad setting; returns ``out`` as a file ``Path``."""
    _positive_int("steps", s.steps, allow_none=True)
    _positive_int("epochs", s.epochs, allow_none=True)
    _positive_int("batch_prompts", s.batch_prompts, allow_none=True)
    _positive_int("patience", s.patience, allow_none=True)
    _positive_int("validate_every", s.validate_every)
    _positive_int("warmup_steps", s.warmup_steps, minimum=0)
    _positive_int("min_steps", s.min_steps, minimum=0)
    _positive_int("correction_rounds", s.correction_rounds, minimum=0)
    if s.max_minutes is not None and not s.max_minutes > 0:
        raise ValueError(f"max_minutes must be positive, got {s.max_minutes}")
    if not (s.lr > 0 and math.isfinite(s.lr)):
        raise ValueError(f"the learning rate must be a positive number, got {s.lr}")
    out = Path(out).expanduser()
    if out.is_dir():
        raise ValueError(f"output {out} is a folder; give a file name like decoder.safetensors")
    return out


def resolve_budget(s: RunSettings, steps_per_epoch: int) -> int:
    """The step budget: ``steps``, capped by ``epochs`` x ``steps_per_epoch`` when given."""
    caps = [n for n in (s.steps, None if s.epochs is None else s.epochs * steps_per_epoch)
            if n is not None]
    return max(1, min(caps)) if caps else DEFAULT_STEPS


def lr_at(step: int, lr: float, warmup: int, total: int) -> float:
    """Learning rate of (1-based) ``step``: linear warm-up over ``warmup`` steps, then a
    cosine from ``lr`` down to ``MIN_LR_FACTOR * lr`` at step ``total``."""
    if warmup > 0 and step <= warmup:
        return lr * step / warmup
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return lr * (MIN_LR_FACTOR + (1 - MIN_LR_FACTOR) * 0.5 * (1 + math.cos(math.pi * progress)))
