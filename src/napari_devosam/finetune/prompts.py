"""Prompts simulated from the ground truth, as SAM was trained (interactive segmentation).

Each training step takes B objects of one plane and one prompt kind for all of them:

- ``"box"``: the tight box, each coordinate jittered by noise of 10 % of the box side
  (at most 20 px in a 1024 px input, scaled for other input sizes);
- ``"point"``: one positive point inside the object (ambiguous: trained on the best of the
  three multimask outputs, as SAM was);
- ``"points"``: 1-3 positive points inside and 0-2 negative points in the ring around the
  object (within its box grown by 20 %), so neighbouring cells are the negatives.

Then correction rounds: the next point is sampled uniformly from the error region of the
previous prediction (positive where the object was missed, negative where background was
included) and the previous low-res logits are fed back as the mask prompt.

Everything works on the decoder's low-res grid (a cell is 4 x 4 input pixels): a point is a
uniformly random position inside a sampled cell. "Inside the object" means a cell entirely
inside it (falling back to the cell most inside it for tiny objects).
"""

from __future__ import annotations

import torch

from napari_devosam.engine.decoding import BOX_BR, BOX_TL, NEG, PAD, POS, Prompts
from napari_devosam.finetune.targets import PlaneTargets

KINDS = ("box", "point", "points")
KIND_WEIGHTS = (0.4, 0.3, 0.3)
BOX_NOISE = 0.1
BOX_NOISE_MAX_1024 = 20.0


class PromptSampler:
    """Random prompts and correction points; all randomness from one seeded generator."""

    def __init__(self, seed: int, device):
        self.device = torch.device(device)
        # generators exist for CPU and CUDA; elsewhere (MPS) draw on the CPU and move
        self._gen_device = self.device if self.device.type == "cuda" else torch.device("cpu")
        self.gen = torch.Generator(device=self._gen_device)
        self.gen.manual_seed(int(seed))

    # -- random helpers -------------------------------------------------------------------
    def rand(self, *shape) -> torch.Tensor:
        out = torch.rand(shape, generator=self.gen, device=self._gen_device)
        return out.to(self.device)

    def randn(self, *shape) -> torch.Tensor:
        out = torch.randn(shape, generator=self.gen, device=self._gen_device)
        return out.to(self.device)

    def randint(self, high: int) -> int:
        return int(torch.randint(high, (), generator=self.gen, device=self._gen_device))

    def choose_kind(self) -> str:
        weights = torch.tensor(KIND_WEIGHTS, device=self._gen_device)
        return KINDS[int(torch.multinomial(weights, 1, generator=self.gen))]

    def permutation(self, n: int) -> torch.Tensor:
        return torch.randperm(n, generator=self.gen, device=self._gen_device).to(self.device)

    def cells(self, region: torch.Tensor, k: int, fallback: torch.Tensor | None = None
              ) -> torch.Tensor:
        """``(B, k, 2)`` input-frame (x, y): k distinct random cells per prompt from ``region``
        ``(B, gh, gw)`` bool (from ``fallback`` scores where the region has too few cells)."""
        b, gh, gw = region.shape
        score = self.rand(b, gh * gw) + region.reshape(b, -1).float() * 2.0
        if fallback is not None:
            score = score + fallback.reshape(b, -1).float()
        flat = score.topk(k, dim=1).indices
        rows = torch.div(flat, gw, rounding_mode="floor").float()
        cols = (flat % gw).float()
        jitter = self.rand(b, k, 2)
        return torch.stack([cols + jitter[..., 0], rows + jitter[..., 1]], dim=-1) * 4.0

    # -- prompts ----------------------------------------------------------------------------
    def initial(self, t: PlaneTargets, idx: torch.Tensor, kind: str, img_size: int) -> Prompts:
        """The first prompt of ``kind`` for objects ``idx`` ``(B,)`` of plane ``t``."""
        masks = t.masks[idx]
        if kind == "box":
            return Prompts(*self.jittered_boxes(t, idx, img_size), multimask=False)
        inside = masks > 0.999
        most = masks.flatten(1).argmax(1)
        fallback = torch.zeros_like(masks).flatten(1)
        fallback.scatter_(1, most[:, None], 1.0)
        if kind == "point":
            pos = self.cells(inside, 1, fallback.reshape(masks.shape))
            coords = torch.cat([pos, torch.zeros_like(pos[:, :1])], dim=1)
            labels = torch.tensor([POS, PAD], device=self.device).expand(len(idx), -1)
            return Prompts(coords, labels.contiguous(), multimask=True)
        n_pos = 1 + self.randint(3)
        n_neg = self.randint(3)
        pos = self.cells(inside, n_pos, fallback.reshape(masks.shape))
        parts, labs = [pos], [POS] * n_pos
        if n_neg:
            background = (masks < 0.001) & self.valid_cells(t, masks)
            parts.append(self.cells(self.ring(t, idx, masks), n_neg, background))
            labs += [NEG] * n_neg
        parts.append(torch.zeros_like(pos[:, :1]))
        labs.append(PAD)
        labels = torch.tensor(labs, device=self.device).expand(len(idx), -1).contiguous()
        return Prompts(torch.cat(parts, dim=1), labels, multimask=False)

    def ring(self, t: PlaneTargets, idx: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """``(B, gh, gw)`` bool: background cells within each object's box grown by 20 %."""
        boxes = t.boxes[idx] / 4.0
        size = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1.0)
        lo = boxes[:, :2] - 0.2 * size
        hi = boxes[:, 2:] + 0.2 * size
        gh, gw = masks.shape[-2:]
        ys = torch.arange(gh, device=self.device).float()[None, :, None] + 0.5
        xs = torch.arange(gw, device=self.device).float()[None, None, :] + 0.5
        inside_box = ((xs >= lo[:, 0, None, None]) & (xs <= hi[:, 0, None, None])
                      & (ys >= lo[:, 1, None, None]) & (ys <= hi[:, 1, None, None]))
        return inside_box & self.valid_cells(t, masks) & (masks < 0.001)

    @staticmethod
    def valid_cells(t: PlaneTargets, like: torch.Tensor) -> torch.Tensor:
        """Bool like ``like`` ``(B, gh, gw)``: True on the cells covering the plane."""
        valid = torch.zeros(like.shape, dtype=torch.bool, device=like.device)
        valid[:, : t.valid[0], : t.valid[1]] = True
        return valid

    def jittered_boxes(self, t: PlaneTargets, idx: torch.Tensor, img_size: int):
        boxes = t.boxes[idx].clone()
        side = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1.0).repeat(1, 2)
        cap = BOX_NOISE_MAX_1024 * img_size / 1024.0
        noise = (self.randn(*boxes.shape) * BOX_NOISE * side).clamp(-cap, cap)
        boxes = boxes + noise
        h, w = t.input_size
        x = boxes[:, 0::2].clamp(0, w - 1)
        y = boxes[:, 1::2].clamp(0, h - 1)
        x0, x1 = torch.minimum(x[:, 0], x[:, 1]), torch.maximum(x[:, 0], x[:, 1])
        y0, y1 = torch.minimum(y[:, 0], y[:, 1]), torch.maximum(y[:, 0], y[:, 1])
        coords = torch.stack([torch.stack([x0, y0], -1), torch.stack([x1, y1], -1)], dim=1)
        labels = torch.tensor([BOX_TL, BOX_BR], device=self.device).expand(len(idx), -1)
        return coords, labels.contiguous()

    def correction(self, t: PlaneTargets, idx: torch.Tensor, prompts: Prompts,
                   logits: torch.Tensor) -> Prompts:
        """``prompts`` plus one point from the error region of ``logits`` ``(B, gh, gw)``.

        The point goes before the box corners / padding token, as in ``SamPredictor``.
        Prompts without error get a positive point inside the object.
        """
        target = t.masks[idx] > 0.5
        pred = logits > 0
        valid = self.valid_cells(t, target)
        missed = target & ~pred & valid
        extra = pred & ~target & valid
        point = self.cells(missed | extra, 1, target)
        gw = target.shape[-1]
        cell = (point[:, 0, 1] / 4).long() * gw + (point[:, 0, 0] / 4).long()
        was_missed = missed.flatten(1).gather(1, cell[:, None])[:, 0]
        no_error = ~(missed | extra).flatten(1).any(1)
        label = torch.where(was_missed | no_error, POS, NEG)
        coords, labels = prompts.coords, prompts.labels
        split = int(((labels[0] == POS) | (labels[0] == NEG)).sum())
        coords = torch.cat([coords[:, :split], point, coords[:, split:]], dim=1)
        labels = torch.cat([labels[:, :split], label[:, None], labels[:, split:]], dim=1)
        return Prompts(coords, labels, multimask=False)
