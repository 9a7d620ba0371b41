"""Ground truth of one plane in the decoder's frames, prepared once before training.

SAM's decoder sees prompts in its input frame (the plane resized so that its longest side is
the encoder's input size, ``(x, y)``) and predicts logits on a grid 4x coarser than that
input (256 x 256 for the official models, 64 x 64 for ``tiny_sam``). Training compares
logits with the ground truth downsampled onto that grid (area average: soft targets at the
borders), which is ~16x cheaper than comparing at the input resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from napari_devosam.engine.coords import box_rc_to_xyxy, points_rc_to_xy, to_input_frame
from napari_devosam.finetune.data import TrainingPlane


@dataclass
class PlaneTargets:
    """One plane's objects, ready for the decoder (tensors on the training device).

    Attributes:
      name: the plane's name (``data.TrainingPlane.name``).
      features: ``(1, 256, h, w)`` float32 image embedding.
      input_size: ``(h_in, w_in)`` of the resized plane in the encoder's input.
      original_size: ``(H, W)`` of the plane.
      valid: ``(lh, lw)``, the part of the low-res grid covering the plane (the rest is padding).
      masks: ``(N, 4h, 4w)`` float32 ground truth on the low-res grid (area fractions; 0 in the
        padding).
      boxes: ``(N, 4)`` float32 tight boxes, input-frame ``(x0, y0, x1, y1)``.
      centers: ``(N, 2)`` float32 interior-most points (maximum of the distance transform),
        input-frame ``(x, y)``.
      boxes_rc, centers_rc: the same in the plane's ``(row, col)`` pixels (numpy, float64).
      ids: ``(N,)`` the object ids in ``labels``.
      labels: ``(H, W)`` int64 label image (numpy), for full-resolution IoU.
      pixels: ``(1, 3, S, S)`` float32 encoder input (resized, normalised, padded), set
        only to train the image encoder (``with_pixels``); else None.
    """

    name: str
    features: torch.Tensor
    input_size: tuple[int, int]
    original_size: tuple[int, int]
    valid: tuple[int, int]
    masks: torch.Tensor
    boxes: torch.Tensor
    centers: torch.Tensor
    boxes_rc: np.ndarray
    centers_rc: np.ndarray
    ids: np.ndarray
    labels: np.ndarray
    pixels: torch.Tensor | None = None

    @property
    def n_objects(self) -> int:
        return len(self.ids)


def object_boxes_and_centers(labels: np.ndarray, ids: np.ndarray
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Per object id: tight box ``(row0, col0, row1, col1)`` (inclusive pixel indices) and the
    ``(row, col)`` of its interior-most pixel (largest distance to the background)."""
    from scipy import ndimage

    boxes = np.zeros((len(ids), 4), dtype=np.float64)
    centers = np.zeros((len(ids), 2), dtype=np.float64)
    slices = ndimage.find_objects(labels)
    for k, obj_id in enumerate(ids):
        sl = slices[int(obj_id) - 1]
        crop = np.pad(labels[sl] == obj_id, 1)
        dist = ndimage.distance_transform_edt(crop)
        r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
        boxes[k] = (sl[0].start, sl[1].start, sl[0].stop - 1, sl[1].stop - 1)
        centers[k] = (sl[0].start + r - 1, sl[1].start + c - 1)
    return boxes, centers


def valid_grid(input_size) -> tuple[int, int]:
    """The low-res cells covering the resized plane: each cell is 4x4 input pixels."""
    return int(np.ceil(input_size[0] / 4)), int(np.ceil(input_size[1] / 4))


def low_res_masks(labels: np.ndarray, ids: np.ndarray, input_size, grid: tuple[int, int],
                  device, chunk: int = 16) -> torch.Tensor:
    """``(N, gh, gw)`` float32 area fractions of each object on the decoder's low-res grid."""
    gh, gw = grid
    lh, lw = valid_grid(input_size)
    out = torch.zeros((len(ids), gh, gw), dtype=torch.float32, device=device)
    lab = torch.as_tensor(labels, device=device)
    for start in range(0, len(ids), chunk):
        part = torch.as_tensor(ids[start:start + chunk], device=device)
        onehot = (lab[None] == part[:, None, None]).float()[:, None]
        small = F.interpolate(onehot, size=(lh, lw), mode="area")
        out[start:start + len(part), :lh, :lw] = small[:, 0]
    return out


def prepare_plane(plane: TrainingPlane, embedding, grid: tuple[int, int], device) -> PlaneTargets:
    """``PlaneTargets`` of ``plane`` from its ``embeddings.PlaneEmbedding``.

    ``grid`` is the low-res logit grid ``(4h, 4w)``; tensors go to ``device``.
    """
    ids = plane.object_ids
    input_size = tuple(int(n) for n in embedding.input_size)
    original_size = tuple(int(n) for n in plane.labels.shape)
    boxes_rc, centers_rc = object_boxes_and_centers(plane.labels, ids)
    boxes = to_input_frame(box_rc_to_xyxy(boxes_rc).reshape(-1, 2, 2), original_size,
                           input_size).reshape(-1, 4)
    centers = to_input_frame(points_rc_to_xy(centers_rc), original_size, input_size)
    masks = low_res_masks(plane.labels, ids, input_size, grid, device)
    return PlaneTargets(
        name=plane.name,
        features=embedding.features.to(device=device, dtype=torch.float32),
        input_size=input_size,
        original_size=original_size,
        valid=valid_grid(input_size),
        masks=masks,
        boxes=torch.as_tensor(boxes, dtype=torch.float32, device=device),
        centers=torch.as_tensor(centers, dtype=torch.float32, device=device),
        boxes_rc=boxes_rc,
        centers_rc=centers_rc,
        ids=ids,
        labels=plane.labels,
    )


def with_pixels(t: PlaneTargets, sam, plane: TrainingPlane, normalization=None) -> PlaneTargets:
    """``t`` with ``pixels`` set: ``plane``'s encoder input for ``sam`` (as the embedding was
    made: ``normalization`` of non-uint8 planes, default percentiles), on ``t``'s device."""
    from napari_devosam.engine.embeddings import _pixels
    from napari_devosam.engine.image import DEFAULT_NORMALIZATION, plane_rgb
    from napari_devosam.engine.stacks import as_plane

    rgb = plane_rgb(as_plane(plane.image), normalization or DEFAULT_NORMALIZATION)
    t.pixels, _ = _pixels(sam, [rgb], t.features.device)
    t.pixels = t.pixels.float()
    return t
