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
GPU_VIEW_BATCH = 8  # views per encoder pass on an accelerator (embed_views)
PACK_MARGIN = 0.2  # pack_views: fraction of a shared window kept free (a box off its centre)
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


def _fits(boxes, window, box_sides, win_side: float, plane_shape, ratio: float,
          margin: float) -> np.ndarray:
    """``(K,)`` bool: which of ``boxes`` ``(K, 4)`` may be decoded in ``window``: ideal side
    within ``ratio`` of the window's ``win_side``, inside it with ``margin`` times that side
    free from every edge that is not the plane's."""
    h, w = plane_shape[:2]
    r0, c0, r1, c1 = (float(v) for v in window)
    pad = margin * win_side
    lo_r = r0 if r0 == 0 else r0 + pad
    lo_c = c0 if c0 == 0 else c0 + pad
    hi_r = r1 if r1 == h else r1 - pad
    hi_c = c1 if c1 == w else c1 - pad
    rel = box_sides / win_side
    return ((boxes[:, 0] >= lo_r) & (boxes[:, 1] >= lo_c) & (boxes[:, 2] + 1 <= hi_r)
            & (boxes[:, 3] + 1 <= hi_c) & (rel >= 1 / ratio) & (rel <= ratio))


def _candidates(centres, sides, plane_shape):
    """Candidate windows: one centred on each box, then one on the midpoint of each pair of
    boxes whose centres are closer than half the first one's side (Chebyshev distance).
    Returns ``(windows, window_sides)``."""
    from scipy.spatial import cKDTree

    pairs = cKDTree(centres).query_pairs(sides.max() / 2, p=np.inf, output_type="ndarray")
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    gap = np.abs(centres[pairs[:, 0]] - centres[pairs[:, 1]]).max(axis=1)
    pairs = pairs[gap < sides[pairs[:, 0]] / 2]
    cen = np.concatenate([centres, (centres[pairs[:, 0]] + centres[pairs[:, 1]]) / 2])
    side = np.concatenate([sides, sides[pairs[:, 0]]])
    return [window_at(c, int(s), plane_shape) for c, s in zip(cen, side, strict=True)], side


def pack_views(boxes, plane_shape, input_size: int, target: int | None = None,
               ratio: float = SIZE_RATIO, margin: float = PACK_MARGIN
               ) -> tuple[list[int], list[View]]:
    """``plan_views`` with fewer views (seeded automatic segmentation with ``embryo``:
    DSB2018's plane 54 -> 39, CTC HeLa's 64 / 79 / 89 -> 54 / 63 / 75, F1@0.5 within 0.01;
    benchmarks/bench_views.py). The same rule for which boxes
    need a view; a box may share a window when its ideal side is within ``ratio`` of the
    window's and it lies ``margin`` times the window's side inside every cut edge. Windows
    are picked by greedy set cover (Chvatal 1979; lazily, Minoux 1978) among candidates
    centred on each small box and on the midpoint of each pair of boxes closer than half a
    window: the one holding the most boxes not yet placed, until all are placed (ties: the
    first, boxes in row-major order of their centres). Deterministic; memory grows with the
    boxes' neighbours, not with the square of their number.

    Returns ``(whole, views)`` as ``plan_views``.
    """
    import heapq

    from scipy.spatial import cKDTree

    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sides = [ideal_window_side(b, plane_shape, input_size, target) for b in boxes]
    whole = [i for i, s in enumerate(sides) if s is None]
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    small = sorted((i for i, s in enumerate(sides) if s is not None),
                   key=lambda i: (centres[i, 0], centres[i, 1]))
    if not small:
        return whole, []
    side = np.array([sides[i] for i in small], dtype=np.float64)
    sb, cen = boxes[small], centres[small]
    windows, win_side = _candidates(cen, side, plane_shape)
    tree = cKDTree(cen)
    members = []
    for c, win in enumerate(windows):
        mid = ((win[0] + win[2]) / 2, (win[1] + win[3]) / 2)
        near = np.array(sorted(tree.query_ball_point(mid, max(win[2] - win[0], win[3] - win[1])
                                                     / 2 + 1, p=np.inf)), dtype=np.int64)
        ok = near[_fits(sb[near], win, side[near], win_side[c], plane_shape, ratio, margin)]
        members.append(np.union1d(ok, [c]) if c < len(small) else ok)
    free = np.ones(len(small), dtype=bool)
    heap = [(-len(m), c) for c, m in enumerate(members)]
    heapq.heapify(heap)
    views: list[View] = []
    while free.any():
        _, c = heapq.heappop(heap)
        got = members[c][free[members[c]]]
        if heap and len(got) < -heap[0][0] or (heap and len(got) == -heap[0][0]
                                                and heap[0][1] < c):
            heapq.heappush(heap, (-len(got), c))  # stale: count again later
            continue
        if len(got):
            views.append(View(windows[c], [small[j] for j in got]))
            free[got] = False
    return whole, views


def view_batch(sam) -> int:
    """Views per encoder pass for ``sam``'s device: 1 on a CPU (measured with ``embryo``, one
    torch thread: 8 views in one pass took 1.1-1.2x as long per view, 2 the same as one),
    ``GPU_VIEW_BATCH`` elsewhere (an accelerator's cost per pass is mostly fixed)."""
    return 1 if sam.pixel_mean.device.type == "cpu" else GPU_VIEW_BATCH


def embed_views(sam, plane: np.ndarray, windows, normalization=None,
                batch: int | None = None) -> list:
    """``embed_view`` for many windows, ``batch`` (None: ``view_batch``) of them through the
    encoder at once. Windows that resize to the same input frame (square ones: all of
    ``plan_views``' inside a large enough plane) share batches. Returns one
    ``PlaneEmbedding`` per window, in order."""
    from napari_devosam.engine.coords import input_size
    from napari_devosam.engine.embeddings import compute_embeddings
    from napari_devosam.engine.fill import without_fill
    from napari_devosam.engine.image import to_rgb

    batch = view_batch(sam) if batch is None else max(1, int(batch))
    img_size = sam.image_encoder.img_size
    if np.ndim(plane) == 2:  # as the whole plane's embedding saw it (image.plane_rgb)
        plane = without_fill(np.asarray(plane))
    rgbs = [to_rgb(crop(plane, w), normalization) for w in windows]
    groups: dict[tuple, list[int]] = {}
    for i, rgb in enumerate(rgbs):
        groups.setdefault(input_size(rgb.shape[:2], img_size), []).append(i)
    out: list = [None] * len(rgbs)
    for idx in groups.values():
        for start in range(0, len(idx), batch):
            part = idx[start:start + batch]
            for i, emb in zip(part, compute_embeddings(sam, [rgbs[i] for i in part]),
                              strict=True):
                out[i] = emb
    return out


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
