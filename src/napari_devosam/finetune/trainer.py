"""One optimisation step of the mask decoder: B simulated prompts on one image embedding.

``Trainer`` holds a training copy of the decoder (``training_model``), AdamW, the prompt
sampler and mixed precision; ``finetune`` drives it and ``benchmarks/bench_finetune.py``
times it. A step runs ``1 + correction_rounds`` decoder passes on the same B objects (each
pass trains B masks); the loss is computed on the low-res grid. The decoder pass is
``engine.decoding.decode_tokens_fast`` (same results, a fraction of the work) unless
``fast=False`` picks the stock modules (``engine.decoding.decode_tokens``).
"""

from __future__ import annotations

import contextlib
import copy
import math

import torch

from napari_devosam.engine.decoding import decode_tokens, decode_tokens_fast
from napari_devosam.finetune.losses import LOSSES, decoder_loss, pick
from napari_devosam.finetune.prompts import PromptSampler
from napari_devosam.finetune.targets import PlaneTargets


def training_model(sam, device, train_prompt_encoder: bool = False, whole: bool = False):
    """A ``Sam`` sharing ``sam``'s image encoder, with copies of its prompt encoder and mask
    decoder on ``device`` (so ``sam`` itself never changes while training).

    Only the copies' parameters that train have ``requires_grad``; the image encoder is
    never run by the copy (embeddings come from ``sam``). ``whole``: the image encoder is a
    trainable copy too (``model.devosam_whole`` is True; ``Trainer`` then encodes each
    step's plane from ``PlaneTargets.pixels``).
    """
    from segment_anything.modeling import Sam

    encoder = sam.image_encoder
    if whole:
        encoder = copy.deepcopy(encoder).to(device)
        for p in encoder.parameters():
            p.requires_grad_(True)
    model = Sam(
        image_encoder=encoder,
        prompt_encoder=copy.deepcopy(sam.prompt_encoder).to(device),
        mask_decoder=copy.deepcopy(sam.mask_decoder).to(device),
        pixel_mean=sam.pixel_mean.flatten().tolist(),
        pixel_std=sam.pixel_std.flatten().tolist(),
    )
    model.pixel_mean = model.pixel_mean.to(device)
    model.pixel_std = model.pixel_std.to(device)
    for p in model.mask_decoder.parameters():
        p.requires_grad_(True)
    for p in model.prompt_encoder.parameters():
        p.requires_grad_(bool(train_prompt_encoder))
    model.devosam_whole = bool(whole)
    return model


def _autocast(device: torch.device, enabled: bool):
    """(context factory, grad scaler or None): bf16 where supported, else fp16 + scaling."""
    if not enabled:
        return contextlib.nullcontext, None
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return (lambda: torch.autocast("cuda", dtype=torch.bfloat16)), None
        scaler = torch.amp.GradScaler("cuda")
        return (lambda: torch.autocast("cuda", dtype=torch.float16)), scaler
    return (lambda: torch.autocast(device.type, dtype=torch.bfloat16)), None


class Trainer:
    """Optimiser state and the training step for a ``training_model``.

    Arguments:
      model: from ``training_model``.
      lr, weight_decay: AdamW settings.
      correction_rounds: decoder passes after the first, each adding a point from the error
        region and feeding the previous logits back as the mask prompt.
      loss: ``"bce"`` (BCE + dice), ``"balanced"`` (class-balanced BCE + dice) or ``"focal"``
        (20 x focal + dice, as SAM's pre-training); plus MSE of the IoU head against the
        actual IoU.
      seed: seeds the prompt sampler (and so the whole run on the CPU).
      mixed_precision: autocast (bf16, or fp16 with loss scaling); default: on CUDA only.
      fast: run the decoder through ``engine.decoding.decode_tokens_fast`` (default) rather than the
        stock ``segment_anything`` modules; both give the same masks and gradients.
    """

    def __init__(self, model, *, lr: float = 1e-4, weight_decay: float = 0.01,
                 correction_rounds: int = 2, loss: str = "bce", seed: int = 0,
                 mixed_precision: bool | None = None, fast: bool = True):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}: use one of {', '.join(LOSSES)}")
        if correction_rounds < 0:
            raise ValueError(f"correction_rounds must be >= 0, got {correction_rounds}")
        self.model = model
        self.device = model.pixel_mean.device
        self.whole = bool(getattr(model, "devosam_whole", False))
        self.modules = [("mask_decoder", model.mask_decoder),
                        ("prompt_encoder", model.prompt_encoder)]
        if self.whole:
            self.modules.append(("image_encoder", model.image_encoder))
        self.params = [p for _, m in self.modules for p in m.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=lr, weight_decay=weight_decay)
        self.rounds = 1 + int(correction_rounds)
        self.decode = decode_tokens_fast if fast else decode_tokens
        self.loss = loss
        self.sampler = PromptSampler(seed, self.device)
        if mixed_precision is None:
            mixed_precision = self.device.type == "cuda"
        self.autocast, self.scaler = _autocast(self.device, bool(mixed_precision))
        self.img_size = int(model.image_encoder.img_size)
        with torch.no_grad():
            self.dense_pe = model.prompt_encoder.get_dense_pe().detach()
        self.masks_trained = 0

    # -- weights ----------------------------------------------------------------------------
    def state(self) -> dict:
        """A CPU copy of the trainable modules' weights."""
        return {name: {k: v.detach().to("cpu", copy=True) for k, v in m.state_dict().items()}
                for name, m in self.modules}

    def load_state(self, state: dict) -> None:
        for name, m in self.modules:
            m.load_state_dict(state[name])

    # -- the trained encoder ----------------------------------------------------------------
    def features(self, t: PlaneTargets) -> torch.Tensor:
        """``(1, C, h, w)`` embedding of plane ``t``: its stored one, or (whole model) the
        training encoder's, with gradients."""
        if not self.whole:
            return t.features
        if t.pixels is None:
            raise ValueError(f"plane {t.name} has no encoder input (pixels); prepare it "
                             "with pixels to train the whole model")
        self.model.image_encoder.train()
        with self.autocast():
            return self.model.image_encoder(t.pixels).float()

    def refresh(self, targets: list[PlaneTargets]) -> list[PlaneTargets]:
        """``targets`` with their embeddings recomputed by the training encoder (whole model;
        before scoring); unchanged otherwise."""
        if self.whole:
            self.model.image_encoder.eval()
            with torch.no_grad():
                for t in targets:
                    t.features = self.model.image_encoder(t.pixels).float()
        return targets

    # -- learning rate ----------------------------------------------------------------------
    @property
    def lr(self) -> float:
        """The learning rate the next step uses."""
        return float(self.opt.param_groups[0]["lr"])

    def set_lr(self, lr: float) -> None:
        """Use learning rate ``lr`` from the next step on (the schedule sets it every step)."""
        for group in self.opt.param_groups:
            group["lr"] = float(lr)

    # -- batches ----------------------------------------------------------------------------
    def epoch_batches(self, t: PlaneTargets, batch: int) -> list[torch.Tensor]:
        """Object indices for one pass over plane ``t``: every object once, in random order,
        ``batch`` per step; the last step is filled up with randomly drawn objects (they get
        other random prompts)."""
        n = t.n_objects
        perm = self.sampler.permutation(n)
        chunks = []
        for start in range(0, n, batch):
            idx = perm[start:start + batch]
            if len(idx) < batch:
                extra = (self.sampler.rand(batch - len(idx)) * n).long().clamp(max=n - 1)
                idx = torch.cat([idx, extra])
            chunks.append(idx)
        return chunks

    @staticmethod
    def steps_per_pass(t: PlaneTargets, batch: int) -> int:
        return -(-t.n_objects // batch)

    # -- the step ---------------------------------------------------------------------------
    def step(self, t: PlaneTargets, idx: torch.Tensor, kind: str | None = None) -> float:
        """Train on objects ``idx`` ``(B,)`` of plane ``t``; returns the mean loss over rounds.

        A non-finite loss returns NaN/inf at once, without changing any weight.
        """
        self.model.mask_decoder.train()
        kind = kind or self.sampler.choose_kind()
        prompts = self.sampler.initial(t, idx, kind, self.img_size)
        vh, vw = t.valid
        target = t.masks[idx][:, None, :vh, :vw]
        self.opt.zero_grad(set_to_none=True)
        mask_input = None
        total = 0.0
        features = self.features(t)
        for r in range(self.rounds):
            with self.autocast():
                logits, iou = self.decode(self.model, features, prompts, mask_input,
                                          self.dense_pe)
            loss, best = decoder_loss(logits[..., :vh, :vw], iou, target, self.loss)
            value = float(loss.detach())
            if not math.isfinite(value):
                self.opt.zero_grad(set_to_none=True)
                return value
            scaled = loss / self.rounds
            keep = self.whole and r + 1 < self.rounds  # the encoder's graph serves every round
            (self.scaler.scale(scaled) if self.scaler else scaled).backward(retain_graph=keep)
            total += value
            if r + 1 < self.rounds:
                chosen = pick(logits, best).float()
                prompts = self.sampler.correction(t, idx, prompts, chosen[:, 0])
                mask_input = chosen
        for p in self.model.mask_decoder.parameters():
            # the fast decoder skips the hypernetwork MLPs of unwanted masks; give them the
            # zero gradient the stock decoder gives, so that AdamW treats them the same way
            if p.requires_grad and p.grad is None:
                p.grad = torch.zeros_like(p)
        if self.scaler is not None:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        self.masks_trained += len(idx) * self.rounds
        return total / self.rounds
