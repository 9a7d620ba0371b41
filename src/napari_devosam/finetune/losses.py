"""Losses for mask-decoder training, per mask, on the low-res grid.

All functions take logits ``(B, C, h, w)`` and soft targets ``(B, 1, h, w)`` in [0, 1] (area
fractions) and return ``(B, C)``: one value per mask, so that ambiguous prompts can keep only
their best of C outputs. Computed in float32 whatever the autocast dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FOCAL_WEIGHT = 20.0  # SAM's focal : dice ratio
LOSSES = ("bce", "balanced", "focal")


def focal(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25,
          gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al. 2017), mean over pixels."""
    logits = logits.float()
    target = target.expand_as(logits)
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    a_t = alpha * target + (1 - alpha) * (1 - target)
    return (a_t * ce * (1 - p_t) ** gamma).mean(dim=(-2, -1))


def bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits, mean over pixels."""
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, target.expand_as(logits),
                                              reduction="none").mean(dim=(-2, -1))


def balanced_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE with logits where object and background pixels weigh half each (the mean over
    each class, averaged), so that a small object in a large image still matters."""
    logits = logits.float()
    t = target.expand_as(logits)
    ce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    pos = (ce * t).sum(dim=(-2, -1)) / t.sum(dim=(-2, -1)).clamp(min=1.0)
    neg = (ce * (1 - t)).sum(dim=(-2, -1)) / (1 - t).sum(dim=(-2, -1)).clamp(min=1.0)
    return 0.5 * (pos + neg)


def dice(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Dice coefficient."""
    p = torch.sigmoid(logits.float()).flatten(2)
    t = target.expand_as(logits).flatten(2)
    inter = (p * t).sum(-1)
    return 1 - (2 * inter + eps) / (p.sum(-1) + t.sum(-1) + eps)


def hard_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of ``logits > 0`` with ``target > 0.5`` (1 when both are empty); no gradient."""
    with torch.no_grad():
        pred = (logits > 0).flatten(2)
        t = (target > 0.5).expand_as(logits).flatten(2)
        inter = (pred & t).sum(-1).float()
        union = (pred | t).sum(-1).float()
        return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def mask_losses(logits: torch.Tensor, target: torch.Tensor, kind: str = "focal") -> torch.Tensor:
    """``(B, C)`` per mask: BCE + dice (``"bce"``), class-balanced BCE + dice
    (``"balanced"``) or 20 x focal + dice (``"focal"``, SAM's pre-training loss)."""
    if kind == "focal":
        pixel = FOCAL_WEIGHT * focal(logits, target)
    elif kind == "bce":
        pixel = bce(logits, target)
    elif kind == "balanced":
        pixel = balanced_bce(logits, target)
    else:
        raise ValueError(f"unknown loss {kind!r}: use one of {', '.join(LOSSES)}")
    return pixel + dice(logits, target)


def decoder_loss(logits: torch.Tensor, iou_pred: torch.Tensor, target: torch.Tensor,
                 kind: str = "focal") -> tuple[torch.Tensor, torch.Tensor]:
    """Scalar loss for one round, and ``(B,)`` the index of the output trained per prompt.

    With C > 1 outputs (ambiguous prompts) only the output with the lowest mask loss is
    trained, per prompt; the IoU head learns the actual IoU of every output (MSE).
    """
    per_mask = mask_losses(logits, target, kind)
    best = per_mask.detach().argmin(dim=1)
    mask_term = per_mask.gather(1, best[:, None]).mean()
    iou_term = F.mse_loss(iou_pred.float(), hard_iou(logits, target))
    return mask_term + iou_term, best


def pick(logits: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
    """``(B, C, h, w)`` -> ``(B, 1, h, w)``: output ``best[b]`` of each prompt, detached."""
    index = best[:, None, None, None].expand(-1, 1, *logits.shape[-2:])
    return logits.detach().gather(1, index)
