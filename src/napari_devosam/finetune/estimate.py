"""How long a fine-tuning run will take, measured before it starts, and its ETA as it runs.

``probe`` runs before the real work (``finetune`` yields its result as the ``"estimate"``
event; ``estimate_run`` gives it without training, for the widget's label before Start): it
embeds the first training plane (timing the encoder), times a few optimisation steps on a
throw-away copy of the decoder (the real run starts from the untouched weights), and times
one validation pass over that plane. On the CPU, unless ``threads`` is set, the steps are
timed with torch's thread count and with one thread, and the faster is kept for the run: on
a shared CPU one thread is often several times faster (measured: 0.6 s against 6 s a step on
the 2-core VM of docs/finetune.md).

The estimate is planes to embed x seconds per plane + steps x seconds per step + validation
rounds x seconds per round (scaled by validation objects), capped by ``max_minutes``; early
stopping can end a run sooner. Nothing here guesses a speed: every rate is measured here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from napari_devosam.utils.estimate import capped as capped_time
from napari_devosam.utils.estimate import per_unit
from napari_devosam.utils.text import count

TIMING_STEPS = 2  # timed steps per thread count, after one warm-up step


@dataclass(frozen=True)
class RunEstimate:
    """A run's measured rates and counts (seconds); ``seconds`` is the estimated total.

    planes: images still to embed after the probe (annotated planes, and the zoomed views
      of their small objects: ``views`` of them, ``finetune.views``); embed_s: seconds each.
    steps: the step budget; step_s: seconds per step (``threads`` threads).
    rounds: validation rounds (one before training, one every ``validate_every`` steps,
      one after the last); validate_s: seconds per round.
    max_minutes: the run's time limit (None: none).
    """

    planes: int
    embed_s: float
    steps: int
    step_s: float
    rounds: int
    validate_s: float
    max_minutes: float | None
    threads: int
    whole: bool
    views: int = 0

    @property
    def uncapped(self) -> float:
        return (self.planes * self.embed_s + self.steps * self.step_s
                + self.rounds * self.validate_s)

    @property
    def seconds(self) -> float:
        """Estimated wall time; with a time limit at most the limit plus one step and one
        validation round (training stops after the step that crosses it)."""
        if self.max_minutes is None:
            return self.uncapped
        return min(self.uncapped, 60.0 * self.max_minutes + self.step_s + self.validate_s)

    @property
    def capped(self) -> bool:
        return self.max_minutes is not None and self.uncapped > 60.0 * self.max_minutes

    def line(self) -> str:
        """One line for users, e.g. "estimated run time: about 4 min 10 s, within the 8 min
        limit of --max-minutes (decoder; 400 steps at 0.52 s, 18 validation rounds at 1.2 s,
        4 images to embed at 0.2 s; measured here)"; beyond the limit "about 8 min 03 s,
        capped at 8 min by --max-minutes (about 22 min without it) (...); at the limit it
        stops and keeps the best weights so far" (the wording: ``utils.estimate.capped``)."""
        threads = f" ({count(self.threads, 'thread')})" if self.threads > 0 else ""
        parts = [f"{count(self.steps, 'step')} at {per_unit(self.step_s)}{threads}",
                 f"{count(self.rounds, 'validation round')} at {per_unit(self.validate_s)}"]
        if self.planes:
            views = (f" ({self.views} of them zoomed views of small objects)"
                     if self.views else "")
            parts.append(f"{count(self.planes, 'image')} to embed at "
                         f"{per_unit(self.embed_s)}{views}")
        what = "whole model" if self.whole else "decoder"
        limit = None if self.max_minutes is None else 60.0 * self.max_minutes
        when = capped_time(self.uncapped, limit, "--max-minutes", self.seconds)
        text = f"estimated run time: {when} ({what}; {', '.join(parts)}; measured here)"
        if self.capped:
            text += "; at the limit it stops and keeps the best weights so far"
        return text


def validation_rounds(budget: int, validate_every: int) -> int:
    """Rounds in a run of ``budget`` steps: the start, every ``validate_every``, the end."""
    return 1 + budget // validate_every + (1 if budget % validate_every else 0)


def eta_seconds(step: int, budget: int, step_s: float, validate_every: int,
                validate_s: float, deadline_left: float | None) -> float:
    """Seconds left after ``step`` of ``budget`` steps at the measured rates (validation
    rounds included), at most ``deadline_left`` plus one step and round (the time limit)."""
    left = max(budget - step, 0)
    done = 1 + step // validate_every  # the start and every validate_every steps so far
    rounds = max(validation_rounds(budget, validate_every) - done, 0) if left else 0
    eta = left * step_s + rounds * validate_s
    if deadline_left is not None:
        eta = min(eta, max(deadline_left, 0.0) + step_s + validate_s)
    return eta


def _time_steps(trainer, t, batch: int, n: int) -> float:
    idx = trainer.epoch_batches(t, batch)[0]
    trainer.step(t, idx)  # warm-up: allocations, first kernels
    start = time.perf_counter()
    for _ in range(n):
        trainer.step(t, idx)
    return (time.perf_counter() - start) / n


def thread_choices(settings, device) -> list[int]:
    """Thread counts to time: the setting's, else torch's current one and (CPU) one."""
    import torch

    if settings.threads is not None:
        return [int(settings.threads)]
    current = torch.get_num_threads()
    return [current, 1] if device.type == "cpu" and current > 1 else [current]


def probe(sam, train: list, val: list, settings, device, whole: bool, cache=None,
          normalization=None) -> dict:
    """Measure the run's rates on the first of the ``train`` planes (``data.TrainingPlane``;
    ``val``: the validation planes, none: validated on ``train``).

    Returns ``{"estimate": RunEstimate, "threads": chosen, "embedding": the plane's
    PlaneEmbedding}``; sets torch's thread count to the chosen one (the caller restores it).
    ``settings.batch_prompts`` must be resolved. No weight of ``sam`` changes.
    """
    import torch

    from napari_devosam.engine.embeddings import EmbeddingCache, embed_plane
    from napari_devosam.engine.predictor import Predictor
    from napari_devosam.finetune.evaluate import score_plane
    from napari_devosam.finetune.settings import resolve_budget
    from napari_devosam.finetune.targets import prepare_plane, with_pixels
    from napari_devosam.finetune.trainer import Trainer, training_model

    s, plane = settings, train[0]
    start = time.perf_counter()
    emb = embed_plane(sam, plane.image, cache, normalization)
    embed_s = time.perf_counter() - start
    grid = tuple(4 * n for n in sam.prompt_encoder.image_embedding_size)
    t = prepare_plane(plane, emb, grid, device)
    if whole:
        t = with_pixels(t, sam, plane, normalization)
    model = training_model(sam, device, s.train_prompt_encoder, whole)
    trainer = Trainer(model, lr=s.lr, weight_decay=s.weight_decay,
                      correction_rounds=s.correction_rounds, loss=s.loss, seed=s.seed,
                      mixed_precision=s.mixed_precision)
    timings = {}
    for n in thread_choices(s, device):
        torch.set_num_threads(n)
        timings[n] = _time_steps(trainer, t, s.batch_prompts, TIMING_STEPS)
    threads = min(timings, key=timings.get)
    torch.set_num_threads(threads)
    v0 = time.perf_counter()
    score_plane(Predictor(model, cache=EmbeddingCache(max_items=0)), trainer.refresh([t])[0])
    per_object = (time.perf_counter() - v0) / max(t.n_objects, 1)
    budget = resolve_budget(s, steps_per_epoch(train, s.batch_prompts))
    n_val_objects = sum(len(p.object_ids) for p in (val or train))
    views = sum(" view " in p.name for p in [*train[1:], *val])
    est = RunEstimate(planes=len(train) + len(val) - 1, embed_s=embed_s, steps=budget,
                      views=views,
                      step_s=timings[threads],
                      rounds=validation_rounds(budget, s.validate_every),
                      validate_s=per_object * n_val_objects, max_minutes=s.max_minutes,
                      threads=threads if device.type == "cpu" else 0, whole=whole)
    return {"estimate": est, "threads": threads, "embedding": emb, "timings": timings}


def steps_per_epoch(planes, batch: int) -> int:
    """Optimisation steps in one pass over ``planes``' objects (``Trainer.steps_per_pass``)."""
    return max(1, sum(math.ceil(len(p.object_ids) / batch) for p in planes))
