"""Mutual exclusion of the objects decoded on one plane (private to tracking): each pixel goes
to one object at most, decided by SAM's logits."""

from __future__ import annotations

import numpy as np

from napari_devosam.tracking.records import Crop


def _window(box, margin: float, h: int, w: int) -> tuple[int, int, int, int]:
    """``box`` (row0, col0, row1, col1) grown by ``margin``, as half-open pixel bounds."""
    r0 = max(int(np.floor(box[0] - margin)), 0)
    c0 = max(int(np.floor(box[1] - margin)), 0)
    r1 = min(int(np.ceil(box[2] + margin)) + 1, h)
    c1 = min(int(np.ceil(box[3] + margin)) + 1, w)
    return r0, c0, r1, c1


def exclusive(logits, boxes: np.ndarray, locked, margin: float, threshold: float):
    """``(B, H, W)`` logits -> ``(H, W)`` int32 owner map (0 none, i + 1 object i).

    A pixel goes to the object with the highest logit if it is above ``threshold``, inside
    that object's box grown by ``margin`` and not ``locked``. ``logits`` is changed in place.
    """
    import torch

    with torch.inference_mode():
        h, w = logits.shape[-2:]
        for i, box in enumerate(boxes):
            r0, c0, r1, c1 = _window(box, margin, h, w)
            logits[i, :r0] = -torch.inf
            logits[i, r1:] = -torch.inf
            logits[i, :, :c0] = -torch.inf
            logits[i, :, c1:] = -torch.inf
        if locked is not None:
            blocked = torch.as_tensor(np.asarray(locked, dtype=bool), device=logits.device)
            logits[:, blocked] = -torch.inf
        best, owner = logits.max(dim=0)
        owner = (owner.to(torch.int32) + 1) * (best > threshold)
        return owner.cpu().numpy()


def owned(owner: np.ndarray, value: int, box: np.ndarray, margin: float) -> Crop:
    """The pixels of ``owner`` equal to ``value`` (all inside ``box`` grown by ``margin``)."""
    h, w = owner.shape
    r0, c0, r1, c1 = _window(box, margin, h, w)
    sub = Crop.from_mask(owner[r0:r1, c0:c1] == value)
    return Crop((sub.offset[0] + r0, sub.offset[1] + c0), sub.data, (h, w))


def overlap(pair_logits, threshold: float) -> float:
    """IoU of the two masks of ``(2, H, W)`` logits."""
    a, b = pair_logits[0] > threshold, pair_logits[1] > threshold
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 0.0
