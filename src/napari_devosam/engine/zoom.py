"""Object-scale views: a small object is prompted in a zoomed crop of its plane.

SAM sees a plane through its input frame (512 px for the bundled models, 1024 for vit_b). A
nucleus 15 px across in a 512 x 512 plane spans one 16-px patch of ``embryo``'s grid, too
little to outline: on real nuclei a third of such boxes came back empty
(docs/real_data.md). A **view** is a square window of the plane around the object, encoded on
its own (normalised and resized like any plane), in which the object's box spans about
``TARGET`` input pixels. It is the idea behind Cellpose's rescaling to a nominal cell diameter
(Stringer et al. 2021) and micro-sam's tiled embeddings (Archit et al. 2025): show the network
objects at the scale it was trained on. Views cost one encoder pass each, so they are meant
for encoders that take milliseconds (``wanted``: the bundled models), not vit_b's seconds.

Windows are half-open ``(row0, col0, row1, col1)`` plane pixels; boxes are inclusive
``(row0, col0, row1, col1)`` as everywhere in napari coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TARGET = 96  # input pixels a zoomed box's longer side spans (training covered 48-192)
ZOOM_BELOW = 64  # input pixels: a box spanning fewer on the whole plane gets a view
MIN_WINDOW = 32  # plane pixels: a smaller window has too little context
SIZE_RATIO = 1.4  # boxes whose ideal windows differ by less share a view
MARGIN = 0.12  # fraction of a shared window kept free between a box and a cut edge
CHEAP_ENCODER_PARAMS = 20_000_000  # encoders below this many parameters zoom by default


@dataclass
class View:
    """One window of the plane and the prompts (their indices) decoded in it."""

    window: tuple[int, int, int, int]
    members: list[int] = field(default_factory=list)

    @property
    def offset(self) -> np.ndarray:
        """``(row0, col0)`` of the window: add to view coordinates to get plane ones."""
        return np.array(self.window[:2], dtype=np.float64)


def wanted(sam) -> bool:
    """Whether views are worth their cost for ``sam`` by default: its image encoder is small
    (the bundled models: ~1 M parameters, ~0.03 s a plane on a CPU), not vit_b/l/h. An
    object without a SAM image encoder (a stand-in model) never zooms."""
    encoder = getattr(sam, "image_encoder", None)
    if encoder is None or not hasattr(encoder, "parameters"):
        return False
    n = sum(p.numel() for p in encoder.parameters())
    return n < CHEAP_ENCODER_PARAMS


def box_side(box) -> float:
    """The longer side of an inclusive ``(row0, col0, row1, col1)`` box, in pixels."""
    r0, c0, r1, c1 = (float(v) for v in box)
    return max(r1 - r0 + 1.0, c1 - c0 + 1.0)


def ideal_window_side(box, plane_shape, input_size: int, target: int | None = None
                      ) -> int | None:
    """The side of the window in which ``box`` spans ``target`` (default ``TARGET``) input
    pixels, or None when the whole plane already shows it at least ``ZOOM_BELOW`` pixels."""
    target = TARGET if target is None else target
    longest = max(plane_shape[:2])
    side = box_side(box)
    if side * input_size / longest >= ZOOM_BELOW:
        return None
    return int(round(min(max(side * input_size / target, MIN_WINDOW), longest)))


def window_at(center, side: int, plane_shape) -> tuple[int, int, int, int]:
    """A ``side`` x ``side`` window centred on ``center`` ``(row, col)``, shifted (not cut) to
    lie in the plane; cut only along an axis the plane is shorter than ``side``."""
    out = []
    for c, n in zip(center, plane_shape[:2], strict=True):
        s = min(side, n)
        start = int(round(c - s / 2))
        start = min(max(start, 0), n - s)
        out.append((start, start + s))
    (r0, r1), (c0, c1) = out
    return r0, c0, r1, c1


def _inside(box, window, plane_shape, margin: float) -> bool:
    """``box`` lies in ``window`` with ``margin`` px free from every window edge that is not
    the plane's edge."""
    r0, c0, r1, c1 = box
    w0, v0, w1, v1 = window
    h, w = plane_shape[:2]
    lo_r = w0 if w0 == 0 else w0 + margin
    lo_c = v0 if v0 == 0 else v0 + margin
    hi_r = w1 if w1 == h else w1 - margin
    hi_c = v1 if v1 == w else v1 - margin
    return r0 >= lo_r and c0 >= lo_c and r1 + 1 <= hi_r and c1 + 1 <= hi_c


def plan_views(boxes, plane_shape, input_size: int, target: int | None = None
               ) -> tuple[list[int], list[View]]:
    """Which boxes need a view, and the fewest views that hold them.

    ``boxes``: ``(B, 4)`` inclusive (row0, col0, row1, col1), already inside the plane.
    Returns ``(whole, views)``: indices decoded on the whole plane's embedding, and views
    whose ``members`` are the other indices (each index in exactly one place). Greedy and
    deterministic: boxes in row-major order of their centres open a window centred on
    themselves, which also takes every later box of a similar size (``SIZE_RATIO``) lying
    well inside it (``MARGIN``).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sides = [ideal_window_side(b, plane_shape, input_size, target) for b in boxes]
    whole = [i for i, s in enumerate(sides) if s is None]
    small = [i for i, s in enumerate(sides) if s is not None]
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    small.sort(key=lambda i: (centres[i, 0], centres[i, 1]))
    views: list[View] = []
    taken: set[int] = set()
    for i in small:
        if i in taken:
            continue
        view = View(window_at(centres[i], sides[i], plane_shape), [i])
        taken.add(i)
        for j in small:
            if j in taken or not 1 / SIZE_RATIO <= sides[j] / sides[i] <= SIZE_RATIO:
                continue
            if _inside(boxes[j], view.window, plane_shape, MARGIN * sides[i]):
                view.members.append(j)
                taken.add(j)
        views.append(view)
    return whole, views


def crop(plane: np.ndarray, window) -> np.ndarray:
    """The window's pixels of a ``(H, W)`` or ``(H, W, C)`` plane (a view, not a copy)."""
    r0, c0, r1, c1 = window
    return plane[r0:r1, c0:c1]


def embed_view(sam, plane: np.ndarray, window, normalization=None):
    """The ``PlaneEmbedding`` of ``window``'s pixels of ``plane``, normalised and resized as a
    plane of its own (memory only: views are cheap and many, the disk cache is for planes)."""
    from napari_devosam.engine.embeddings import embed_plane

    return embed_plane(sam, crop(plane, window), None, normalization)


def paste(masks: np.ndarray, window, plane_shape) -> np.ndarray:
    """``(K, h, w)`` bool masks of a view -> ``(K, H, W)`` bool masks of the plane."""
    r0, c0, r1, c1 = window
    out = np.zeros((len(masks), *plane_shape[:2]), dtype=bool)
    out[:, r0:r1, c0:c1] = masks
    return out


def whole_frame_low_res(plane_logits, img_size: int, low_res_side: int):
    """Plane-sized logits ``(K, H, W)`` (torch, float) -> ``(K, 1, s, s)`` logits in the whole
    plane's low-res frame (``s = low_res_side``, SAM's ``4h``), as a ``mask_input`` for a
    later decode on the whole plane's embedding: the plane resized to the input frame
    (``coords.input_size``), padded to ``img_size`` with its lowest value, averaged down to
    ``s``. The inverse of SAM's upscaling, up to interpolation."""
    import torch.nn.functional as F

    from napari_devosam.engine.coords import input_size

    k, h, w = plane_logits.shape
    ih, iw = input_size((h, w), img_size)
    x = F.interpolate(plane_logits[:, None].float(), size=(ih, iw), mode="bilinear",
                      align_corners=False)
    floor = x.amin(dim=(1, 2, 3), keepdim=True)
    padded = floor.expand(k, 1, img_size, img_size).clone()
    padded[:, :, :ih, :iw] = x
    return F.adaptive_avg_pool2d(padded, low_res_side)


# --- prompts and views (used by engine.predictor) ---------------------------------------


def digest(logits) -> bytes:
    """A key for a low-res logit map by its float32 content (copies and reshapes match)."""
    import hashlib

    arr = logits.detach().float().cpu().numpy() if hasattr(logits, "detach") else logits
    data = np.ascontiguousarray(np.asarray(arr, dtype=np.float32)).tobytes()
    return hashlib.blake2b(data, digest_size=16).digest()


def extent(mask: np.ndarray):
    """The inclusive ``(row0, col0, row1, col1)`` box of a ``(H, W)`` bool mask, or None."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([rows[0], cols[0], rows[-1], cols[-1]], dtype=np.float64)


def holds(masks: np.ndarray, point) -> np.ndarray:
    """``(C,)`` bool: which of ``(C, H, W)`` masks hold the pixel under ``point`` (row, col)."""
    r, c = (int(round(float(v))) for v in point)
    r = min(max(r, 0), masks.shape[1] - 1)
    c = min(max(c, 0), masks.shape[2] - 1)
    return masks[:, r, c].copy()


def fits(window, box, pts) -> bool:
    """The prompts lie in ``window`` (half-open): a box wholly, every point."""
    r0, c0, r1, c1 = window
    if box is not None and not (box[0] >= r0 and box[1] >= c0 and box[2] < r1
                                and box[3] < c1):
        return False
    if pts is not None and len(pts):
        p = np.asarray(pts)
        if not ((p[:, 0] >= r0) & (p[:, 0] <= r1 - 1) & (p[:, 1] >= c0)
                & (p[:, 1] <= c1 - 1)).all():
            return False
    return True
