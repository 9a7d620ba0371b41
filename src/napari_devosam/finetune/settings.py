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

from napari_devosam.utils.params import check, from_mapping, markdown_table, param

# Defaults measured on 10 phantom planes (benchmarks/bench_finetune.py --learning; see
# docs/finetune.md): a random vit_b decoder and a trained one. The learning rate was lowered
# from 1e-3 after real data (benchmarks/bench_finetune_real.py, 5 frames, `embryo`): on
# DSB2018 tiles, where the model starts good, 1e-3 lowered the held-out box IoU by 0.028 and
# 3e-4 by 0.002; on phase-contrast bacteria, where it starts at 0.00, both gained ~0.77.
DEFAULT_LR = 3e-4
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
# Measured on 5 real DSB2018 tiles (docs/finetune.md, "Real data in minutes"): a run with the
# defaults ends well inside 10 minutes on a shared 2-core CPU; the cap bounds the rest.
DEFAULT_MAX_MINUTES = 8.0


SECTIONS = {"budget": "Budget and stopping", "optimiser": "Optimiser",
            "data": "Data and prompts"}


def _budget(default, help, **kw):
    return param(default, help, section="budget", **kw)


def _optimiser(default, help, **kw):
    return param(default, help, section="optimiser", **kw)


def _data(default, help, **kw):
    return param(default, help, section="data", advanced=True, **kw)


@dataclass(frozen=True)
class RunSettings:
    """Every knob of a fine-tuning run, declared once (``utils.params.param``): the API
    (``finetune(..., settings=...)`` or its keyword arguments), ``devosam finetune`` (one
    flag per field) and the fine-tune widget (one editor per field, the advanced ones under
    "Advanced") all build this object; its fields are stored in the decoder file's metadata.

    ``None`` values mean "no such limit" (or the device's default: ``batch_prompts``,
    ``mixed_precision``). ``ValueError`` names the first field of the wrong kind or out of
    range. The table in docs/finetune.md is generated from the declaration.
    """

    steps: int | None = _budget(
        None, "Step budget: optimisation steps of batch_prompts objects each; the "
        "learning-rate schedule spans it (none: 400, or what epochs allows).",
        kind=int, low=1, edit_max=1_000_000, none_text=f"{DEFAULT_STEPS} or epochs")
    epochs: int | None = _budget(
        None, "Optional cap in passes over the training objects (each object once per pass).",
        kind=int, low=1, edit_max=10_000, none_text="no cap")
    max_minutes: float | None = _budget(
        DEFAULT_MAX_MINUTES, "Wall-clock limit of the whole run in minutes (embedding "
        "included); training stops after the step that crosses it and the best weights are "
        "kept and written.",
        kind=float, above=0.0, decimals=1, step=1.0, edit_max=100_000.0, optional=True,
        none_text="no limit")
    patience: int | None = _budget(
        DEFAULT_PATIENCE, "Stop after this many validation rounds in a row without a better "
        "validation IoU, counted from min_steps on (none: never stop early).",
        kind=int, low=1, edit_max=10_000, optional=True, none_text="never",
        advanced=True)
    min_steps: int = _budget(
        DEFAULT_MIN_STEPS, "Steps before patience starts counting (a decoder trained from a "
        "poor start gets worse for a while before it gets better).",
        low=0, edit_max=1_000_000, advanced=True)
    validate_every: int = _budget(
        DEFAULT_VALIDATE_EVERY, "Steps between validation rounds (one also follows the last "
        "step).", low=1, edit_max=100_000, advanced=True)
    lr: float = _optimiser(
        DEFAULT_LR, "Peak AdamW learning rate after warm-up.",
        above=0.0, decimals=0, label="learning rate")
    warmup_steps: int = _optimiser(
        DEFAULT_WARMUP_STEPS, "Steps of linear learning-rate warm-up, then a cosine decay to "
        f"{MIN_LR_FACTOR:g} x lr at the end of the step budget.",
        low=0, edit_max=100_000, advanced=True)
    weight_decay: float = _optimiser(
        0.01, "AdamW's weight decay.", low=0.0, decimals=0, advanced=True)
    correction_rounds: int = _optimiser(
        DEFAULT_CORRECTION_ROUNDS, "Extra decoder passes per step, each with a point from the "
        "error region and the previous logits as mask prompt.",
        low=0, edit_max=16, advanced=True)
    loss: str = _optimiser(
        "bce", "Mask loss, each plus dice: bce, class-balanced bce, or focal (SAM's "
        "pre-training loss).", choices=("bce", "balanced", "focal"), advanced=True)
    train_whole: bool | None = _optimiser(
        False, "Train the image encoder too (the whole model; written as a model file that "
        "loads with --model). Off by default: measured on real DSB2018 tiles it did not beat "
        "decoder-only training within the time limit (docs/finetune.md). Auto (none): on for "
        "the bundled models, off for vit_b/l/h and other checkpoints.",
        kind=bool, optional=True, none_text="auto: bundled models only")
    threads: int | None = _data(
        None, "CPU threads for training (none: measured, the faster of 1 and torch's default "
        "on a few steps; a shared CPU is often much faster with 1).",
        kind=int, low=1, edit_max=256, none_text="measured")
    train_prompt_encoder: bool = _optimiser(
        False, "Also train the prompt encoder (then saved in the decoder file too).",
        advanced=True)
    mixed_precision: bool | None = _optimiser(
        None, "Autocast the decoder to bf16/fp16: none = on CUDA only; on also on the CPU "
        "(about 1.8x faster there, at reduced precision).",
        kind=bool, none_text="auto", advanced=True)
    batch_prompts: int | None = _data(
        None, "Prompts (objects) per step, all on one image embedding.",
        kind=int, low=1, edit_max=1024, none_text="16 on CUDA, 4 on the CPU")
    val_fraction: float = _data(
        0.2, "Share of the image files held out for validation (at least one file when there "
        "are two or more; with a single plane the training plane is validated).",
        low=0.0, below=1.0, step=0.05)
    zoom_views: bool | None = _data(
        None, "Train and validate small objects in the zoomed views the predictor decodes "
        "them in (engine/zoom.py: a window of the plane encoded on its own), not on the whole "
        "plane. Auto (none): when the model zooms by default (the bundled models).",
        kind=bool, optional=True, none_text="auto: when the model zooms")
    seed: int = _data(0, "Seeds the split and the prompt simulation.", low=0,
                      edit_max=2**31 - 1)

    def __post_init__(self):
        check(self)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> RunSettings:
        """Settings from a dict (flat or by section); ``ValueError`` for unknown names."""
        return from_mapping(cls, values, "fine-tuning setting", tuple(SECTIONS))


def check_settings(s: RunSettings, out) -> Path:
    """Raise ``ValueError`` naming the first bad setting; returns ``out`` as a file ``Path``."""
    check(s)
    out = Path(out).expanduser()
    if out.is_dir():
        raise ValueError(f"output {out} is a folder; give a file name like decoder.safetensors")
    return out


def settings_table() -> str:
    """The Markdown table of every fine-tuning setting (docs/finetune.md holds it)."""
    return markdown_table(RunSettings, SECTIONS)


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
