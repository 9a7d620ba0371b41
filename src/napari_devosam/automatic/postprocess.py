"""Proposals -> one instance label image.

Rules (``proposals_to_labels``), in order:

1. Duplicates (``dedupe``, seeded mode): proposals are visited best score first; one whose
   mask overlaps an already kept mask by IoU >= ``dup_iou`` (0.5), or lies inside it for at
   least ``contained`` (0.8) of its own area, is dropped. Nuclei stain (``dedupe_nested``):
   visited largest first instead, and a mask lying ``NESTED`` (0.6) inside a kept one is
   dropped: a nucleus with texture gets several seeds, and those with a box smaller than the
   nucleus give fragments of it, which the best-score order kept (their predicted IoU is
   often higher than the whole nucleus's) and which then cut the nucleus apart. A mask that
   holds two proposals lying ``NESTED`` inside it which barely overlap each other (<
   ``SEPARATE`` of the smaller) and together cover ``MERGE_COVER`` (0.7) of it is two
   touching nuclei merged, and goes first; so is one larger than ``MERGE_SIZE`` (2.5) x a
   typical nucleus's area (from the seeds' diameter) holding any two such (DevoLearn
   nuclear movie frame 30: a mask over four nuclei would otherwise swallow three of them).
   Measured with the bundled ``embryo`` model on the same proposals, auto F1@0.5
   (benchmarks/bench_real.py sources): cells3d 0.661 -> 0.692, CTC CHO 0.831 -> 0.844,
   dsb2018 0.833 and CTC HeLa 0.879 unchanged.
2. Each pixel goes to one object: among the proposals whose mask holds it, the one with the
   highest mask logit (SAM's plane-resolution logit) wins.
3. Each object keeps its largest 4-connected part; its holes are filled (pixels no other
   object owns).
4. Objects smaller than ``min_area`` pixels (default ``MIN_AREA`` = 30; a cell of the
   phantoms is >= 60) are removed.
5. Membrane stain only (``grow_to_membranes``): SAM outlines a membrane-stained cell inside
   its membrane, while neighbouring cells meet on the membrane's midline. Unlabelled pixels
   within ``MEMBRANE_GROW_PX`` (6) pixels of an object, inside the embryo and inside the
   closed outline of all objects (gaps between objects, not the embryo's outer rim), join the
   object that a watershed flood of the smoothed plane from the objects reaches first, so
   neighbours meet on the bright ridge. Held-out membrane phantoms with embryo_tiny (4
   planes): mean matched IoU 0.779 -> 0.829 (2 px: 0.805, 4: 0.821, 8: 0.832), F1 unchanged;
   exact masks stay exact.

Before rule 1, seeded mode drops **box-shaped** proposals (``is_box_shaped``): a mask that
fills >= 90 % of its own bounding box, or has two straight sides (>= 75 % of a side of its
box, not on the plane's edge) is a box prompt answered with the box or a mask cut by the
prompt box, not a cell. With no ``min_area`` given, the size filter scales with the cell
size (``size_filter``).

Ids are ``1..n`` by decreasing score; labels are ``int32``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_devosam.automatic.decoding import Proposal

MIN_AREA = 30
MEMBRANE_GROW_PX = 6
FRAGMENT_FRACTION = 0.02
BOX_FILL = 0.9
BOX_SIDE = 0.75
NESTED = 0.6
SEPARATE = 0.2
MERGE_COVER = 0.7
MERGE_SIZE = 2.5


def size_filter(min_area: int | None, diameter: float | None) -> int:
    """The smallest object kept, in pixels: ``min_area`` when given; else ``MIN_AREA``
    shrunk to a fifth of a typical cell's area for small cells (``diameter`` px across) and
    raised to ``FRAGMENT_FRACTION`` of it for large ones (fragments of a large cell go)."""
    if min_area is not None:
        return int(min_area)
    if diameter is None:
        return MIN_AREA
    typical = np.pi * (0.5 * float(diameter)) ** 2
    return int(round(max(min(MIN_AREA, 0.2 * typical), FRAGMENT_FRACTION * typical, 4)))


def is_box_shaped(q: Proposal, plane_shape) -> bool:
    """True for a proposal that is mostly its own bounding box: its mask fills at least
    ``BOX_FILL`` of its tight box, or at least two sides of that box (not on the plane's
    edge) are straight runs of mask over ``BOX_SIDE`` of their length (a mask cut by the
    prompt box, or SAM answering a box with the box). Cells are round or polygons whose
    sides are not aligned with the pixel grid. A refined proposal is judged by SAM's own
    mask (``Proposal.sam_mask``): the shape SAM answered the prompt with."""
    sam = q.mask if q.sam_mask is None else q.sam_mask
    rows = np.flatnonzero(sam.any(axis=1))
    cols = np.flatnonzero(sam.any(axis=0))
    if rows.size == 0:
        return False
    m = sam[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    if m.size >= 16 and m.mean() >= BOX_FILL:
        return True
    r0, c0 = q.box[0] + rows[0], q.box[1] + cols[0]
    r1, c1 = q.box[0] + rows[-1], q.box[1] + cols[-1]
    h, w = plane_shape
    sides = [(m[0], r0 > 0), (m[-1], r1 < h - 1), (m[:, 0], c0 > 0), (m[:, -1], c1 < w - 1)]
    straight = sum(inner and line.size >= 4 and line.mean() >= BOX_SIDE for line, inner in sides)
    return straight >= 2


def drop_box_shaped(props: list[Proposal], plane_shape) -> list[Proposal]:
    """``props`` less the box-shaped ones (``is_box_shaped``)."""
    return [q for q in props if not is_box_shaped(q, plane_shape)]


def _overlap(a: Proposal, b: Proposal) -> int:
    r0, c0 = max(a.box[0], b.box[0]), max(a.box[1], b.box[1])
    r1, c1 = min(a.box[2], b.box[2]), min(a.box[3], b.box[3])
    if r0 >= r1 or c0 >= c1:
        return 0
    ma = a.mask[r0 - a.box[0]:r1 - a.box[0], c0 - a.box[1]:c1 - a.box[1]]
    mb = b.mask[r0 - b.box[0]:r1 - b.box[0], c0 - b.box[1]:c1 - b.box[1]]
    return int(np.count_nonzero(ma & mb))


def dedupe(props: list[Proposal], dup_iou: float = 0.5, contained: float = 0.8,
           ordered: bool = False) -> list[Proposal]:
    """Drop proposals that repeat a better one (rule 1 of the module docstring); visited
    best score first, or in the given order with ``ordered``."""
    kept: list[Proposal] = []
    for q in (props if ordered else sorted(props, key=lambda p: -p.score)):
        area = q.area
        if area == 0:
            continue
        duplicate = False
        for k in kept:
            inter = _overlap(q, k)
            if inter and (inter / (area + k.area - inter) >= dup_iou or inter >= contained * area):
                duplicate = True
                break
        if not duplicate:
            kept.append(q)
    return kept


def _merges(props: list[Proposal], nested: float, typical: float | None) -> set[int]:
    """Indices of the proposals that are smaller ones merged (rule 1, nuclei stain): they
    hold two that lie ``nested`` of their area inside and barely overlap each other, which
    together cover ``MERGE_COVER`` of them, or, larger than ``MERGE_SIZE`` x the ``typical``
    area, any two such (two texture fragments of one nucleus cover less, in a mask of a
    nucleus's size)."""
    area = [q.area for q in props]
    big = np.inf if typical is None else MERGE_SIZE * typical
    out = set()
    for i, q in enumerate(props):
        inner = [j for j, k in enumerate(props) if area[j] < area[i]
                 and _overlap(k, q) >= nested * area[j]]
        for n, a in enumerate(inner):
            if any(_overlap(props[a], props[b]) < SEPARATE * min(area[a], area[b])
                   and (area[i] > big or area[a] + area[b] >= MERGE_COVER * area[i])
                   for b in inner[n + 1:]):
                out.add(i)
                break
    return out


def dedupe_nested(props: list[Proposal], dup_iou: float = 0.5, nested: float = NESTED,
                  diameter: float | None = None) -> list[Proposal]:
    """Nuclei stain: drop merges, then fragments (rule 1 of the module docstring): proposals
    visited largest first, one overlapping a kept one by IoU >= ``dup_iou`` or lying
    ``nested`` of its area inside it is dropped; ties in area keep the better score.
    ``diameter``: the nuclei's typical diameter in pixels (None: merges judged by cover
    alone)."""
    props = [q for q in props if q.area]
    typical = None if diameter is None else np.pi * (0.5 * float(diameter)) ** 2
    merged = _merges(props, nested, typical)
    props = [q for i, q in enumerate(props) if i not in merged]
    return dedupe(sorted(props, key=lambda p: (-p.area, -p.score)), dup_iou, nested,
                  ordered=True)


def _claim(props: list[Proposal], shape) -> np.ndarray:
    owner = np.zeros(shape, dtype=np.int32)
    best = np.full(shape, -np.inf, dtype=np.float32)
    for i, q in enumerate(props, start=1):
        r0, c0, r1, c1 = q.box
        b, o = best[r0:r1, c0:c1], owner[r0:r1, c0:c1]
        win = q.mask & (q.logits > b)
        b[win] = q.logits[win]
        o[win] = i
    return owner


def _tidy(owner: np.ndarray, n: int, min_area: int) -> np.ndarray:
    """Rules 3 and 4: largest part, holes filled, small objects out (in place)."""
    for i, sl in enumerate(ndimage.find_objects(owner, max_label=n), start=1):
        if sl is None:
            continue
        view = owner[sl]
        mask = view == i
        parts, k = ndimage.label(mask)
        if k > 1:
            sizes = np.bincount(parts.ravel())
            sizes[0] = 0
            view[mask & (parts != int(np.argmax(sizes)))] = 0
            mask = parts == int(np.argmax(sizes))
        filled = ndimage.binary_fill_holes(mask)
        view[filled & (view == 0)] = i
        if np.count_nonzero(view == i) < min_area:
            view[view == i] = 0
    return owner


def proposals_to_labels(props: list[Proposal], shape, min_area: int = MIN_AREA
                        ) -> tuple[np.ndarray, dict[int, float], list[dict]]:
    """``(labels (H, W) int32, {id: score}, [prompt of id 1, 2, ...])`` from proposals
    (rules 2-4 of the module docstring; call ``dedupe`` first for rule 1)."""
    props = sorted(props, key=lambda p: -p.score)
    owner = _tidy(_claim(props, tuple(shape)), len(props), min_area)
    present = np.flatnonzero(np.bincount(owner.ravel(), minlength=len(props) + 1)[1:]) + 1
    lut = np.zeros(len(props) + 1, dtype=np.int32)
    lut[present] = np.arange(1, len(present) + 1, dtype=np.int32)
    labels = lut[owner]
    scores = {int(lut[i]): float(props[i - 1].score) for i in present}
    prompts = [dict(props[i - 1].prompt, score=float(props[i - 1].score)) for i in present]
    return labels, scores, prompts


def grow_to_membranes(labels: np.ndarray, smooth: np.ndarray, embryo: np.ndarray,
                      grow_px: int = MEMBRANE_GROW_PX) -> np.ndarray:
    """Rule 5 of the module docstring: ``labels`` ``(H, W)`` int grown up to ``grow_px``
    pixels into the unlabelled ``embryo`` pixels, meeting on the ridges of ``smooth`` (the
    analysed plane, ``seeds.analyse_plane``). Labelled pixels never change; 0 returns
    ``labels`` as they are."""
    if grow_px <= 0 or not labels.any():
        return labels
    # only pixels within grow_px of a label can change: work on the labels' box grown by
    # grow_px + 1 (every step below gives the same result there as on the whole plane)
    rows, cols = np.nonzero(np.any(labels, axis=1))[0], np.nonzero(np.any(labels, axis=0))[0]
    m = grow_px + 1
    box = (slice(max(rows[0] - m, 0), rows[-1] + m + 1),
           slice(max(cols[0] - m, 0), cols[-1] + m + 1))
    grown = labels.copy()
    grown[box] = _grow(labels[box], smooth[box], embryo[box], grow_px)
    return grown


def _grow(labels, smooth, embryo, grow_px: int) -> np.ndarray:
    from skimage.segmentation import watershed

    near = ndimage.distance_transform_edt(labels == 0) <= grow_px
    pad = grow_px + 1  # closing needs room beyond the plane's edge
    closed = ndimage.binary_closing(np.pad(labels > 0, pad), iterations=pad)
    between = ndimage.binary_fill_holes(closed)[pad:-pad, pad:-pad]
    grown = watershed(smooth, markers=labels, mask=(embryo & near & between) | (labels > 0))
    return grown.astype(labels.dtype, copy=False)
