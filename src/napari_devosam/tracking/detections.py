"""A plane's automatic segmentation used by propagation (private to tracking): tracked masks
snapped onto the detected cells they match, and new tracks for the cells nobody tracks.

With ``PropagationParams.new_tracks`` every propagated plane is segmented automatically,
once (``detections``; the detector of ``tracking.new_cells``). Then:

1. with ``snap_to_detections``, before a track's end is judged, the parts propagation found
   for every track (one object, or two daughters) and the plane's detections are matched
   one-to-one by the Hungarian method on their IoU
   (``scipy.optimize.linear_sum_assignment``, maximising the summed IoU; Kuhn 1955); a part
   with an IoU of at least ``snap_min_iou`` takes the detection's mask (less locked pixels,
   and held to the embryo with ``clip_to_embryo``). A track none of whose parts matched is
   matched again from its previous mask shifted by its motion to the detections left
   (``match_previous``; within one equivalent radius), and no track takes a detection more
   than ``snap_max_growth`` times its previous mask (a merged detection). A propagated mask
   drifts in a crowd, one step at a time, over its neighbours; a detection outlines one cell
   on this plane alone, so a track that takes it stays on one nucleus. A matched track goes
   on, whatever the track-end checks say of its propagated mask (on the DevoLearn nuclear
   movie about 45 tracks a run ended there, and their nuclei came back as new tracks on the
   same plane). Two daughters of which only one matches a detection are no division (the
   second "daughter" was a piece of a neighbour or of the background). A part that matches
   nothing keeps its propagated mask, less the pixels snapped to others, and is judged by
   the usual track ends (``snap_parts``);
2. every detected cell no track covers starts a new track (``detect_plane``, with
   ``new_cells.untracked_cells``).

The one-to-one assignment is the frame-to-frame linking of tracking-by-detection, here
between SAM's propagated masks and the plane's detections; the rules are this package's own.
"""

from __future__ import annotations

import time

import numpy as np

from napari_devosam.tracking import prompts as pr
from napari_devosam.tracking.new_cells import (
    covered_pixels,
    diameter_of,
    untracked_cells,
)
from napari_devosam.tracking.params import PropagationParams
from napari_devosam.tracking.plane_checks import plane_embryo
from napari_devosam.tracking.records import Crop, Plane, ReviewItem, TrackedObject
from napari_devosam.tracking.run_state import ActiveTrack, RunContext


def iou_with_labels(crops: list[Crop], labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(IoU (n_crops, n_ids), ids)``: each crop's IoU with every object of ``labels``
    (``(H, W)`` int, 0 background; ``ids`` its object values, sorted). Crops may reach past
    the plane (their outside pixels count in their area only)."""
    labels = np.asarray(labels)
    ids = np.unique(labels)
    ids = ids[ids > 0]
    index = np.zeros(int(labels.max()) + 1 if labels.size else 1, dtype=np.int64)
    index[ids] = np.arange(1, ids.size + 1)
    sizes = np.bincount(index[labels].ravel(), minlength=ids.size + 1)[1:]
    table = np.zeros((len(crops), ids.size))
    rows, cols = labels.shape
    for k, crop in enumerate(crops):
        r0, c0 = crop.offset
        h, w = crop.data.shape
        a, b, e, f = max(r0, 0), max(c0, 0), min(r0 + h, rows), min(c0 + w, cols)
        if e <= a or f <= b or not ids.size:
            continue
        inside = crop.data[a - r0:e - r0, b - c0:f - c0]
        hits = np.bincount(index[labels[a:e, b:f][inside]], minlength=ids.size + 1)[1:]
        table[k] = hits / np.maximum(crop.area + sizes - hits, 1)
    return table, ids


def match(table: np.ndarray, min_iou: float) -> dict[int, int]:
    """``{row: column}`` of the one-to-one assignment that maximises the summed IoU of
    ``table`` (rows: tracked objects, columns: detections), pairs below ``min_iou`` left
    out."""
    from scipy.optimize import linear_sum_assignment

    if not table.size:
        return {}
    rows, cols = linear_sum_assignment(table, maximize=True)
    return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if table[r, c] >= min_iou}


def snapping(ctx: RunContext) -> bool:
    """Whether tracked masks snap to detections: ``snap_to_detections`` with a detector, on
    a nuclear stain (membrane-stained cells tile the embryo: propagation follows them well,
    and on the DevoLearn membrane movie snapping broke more tracks than it kept)."""
    return (ctx.detector is not None and ctx.params.snap_to_detections
            and ctx.stain != "membrane")


def detections(ctx: RunContext, plane: Plane, pixels: np.ndarray, emb) -> np.ndarray:
    """The detected cells of ``plane``, ``(H, W)`` int labels (0: none), computed once per
    plane with ``ctx.detector`` at the size of the tracked cells (``ctx.typical_area``);
    the scores are kept in ``ctx.detected`` for the new tracks."""
    if ctx.detected[0] != plane:
        started = time.perf_counter()
        labels, scores = ctx.detector(pixels, emb, ctx.stain, diameter_of(ctx.typical_area))
        ctx.detect_seconds += time.perf_counter() - started
        labels = np.zeros(np.shape(pixels)[:2], np.int32) if labels is None else labels
        ctx.detected = (plane, np.asarray(labels), scores)
    return ctx.detected[1]


def match_previous(previous: list[Crop], labels: np.ndarray, taken: set[int],
                   min_iou: float, max_growth: float = 0.0) -> dict[int, int]:
    """The second round of the snap: ``{row: column}`` matching the tracks' motion-shifted
    previous masks (``previous``, rows) one-to-one to the detections of ``labels`` (columns
    as ``iou_with_labels`` gives them) not in ``taken``, by the Hungarian method on IoU
    (``match``, ``min_iou``), a detection's centroid within one equivalent radius
    (``sqrt(area / pi)`` of the previous mask) of the previous mask's centroid and its area
    at most ``max_growth`` times the previous mask's (0: any; ``_sizes_ok``). A nucleus
    whose propagated mask shrank or drifted off it still lies where the track's motion puts
    it."""
    from scipy import ndimage

    table, ids = iou_with_labels(previous, labels)
    if not table.size:
        return {}
    table[:, sorted(taken)] = 0.0
    sizes = _sizes(labels, ids)
    centres = np.asarray(ndimage.center_of_mass(np.ones(np.shape(labels)), labels, ids),
                         dtype=float).reshape(-1, 2)
    for k, crop in enumerate(previous):
        if crop.area == 0:
            table[k] = 0.0
            continue
        reach = np.sqrt(crop.area / np.pi)
        far = np.linalg.norm(centres - np.asarray(crop.centroid(), float), axis=1) > reach
        table[k, far | ~_sizes_ok(sizes, crop.area, max_growth)] = 0.0
    return match(table, min_iou)


def _sizes(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``(len(ids),)`` int: the pixels of each detection ``ids`` of ``labels``."""
    if not ids.size:
        return np.zeros(0, np.int64)
    return np.bincount(np.asarray(labels).ravel(), minlength=int(ids.max()) + 1)[ids]


def _sizes_ok(sizes: np.ndarray, area: int, max_growth: float) -> np.ndarray:
    """Which detections (``sizes``, from ``_sizes``) hold at most ``max_growth`` times
    ``area`` pixels (all for ``max_growth`` 0): a detection far larger than the track's
    previous mask holds several nuclei (``snap_max_growth``)."""
    if max_growth <= 0:
        return np.ones(sizes.size, dtype=bool)
    return sizes <= max_growth * max(area, 1)


def _pairs(parts: list[list[Crop]], labels: np.ndarray, p: PropagationParams,
           previous: list[Crop] | None, only) -> tuple[list[tuple[int, int, float]], np.ndarray]:
    """``([(track index, detection column, IoU)], ids)``: the first round of ``snap_parts``
    (every part against every detection) and, with ``previous``, the second
    (``match_previous``) for the tracks (in ``only``) none of whose parts matched."""
    flat = [(i, crop) for i, group in enumerate(parts) for crop in group]
    table, ids = iou_with_labels([c for _, c in flat], labels)
    if not ids.size:
        return [], ids
    if previous is not None:  # merged detections: not snapped to (snap_max_growth)
        sizes = _sizes(labels, ids)
        for k, (i, _) in enumerate(flat):
            table[k, ~_sizes_ok(sizes, previous[i].area, p.snap_max_growth)] = 0.0
    out = [(flat[k][0], c, float(table[k, c]))
           for k, c in sorted(match(table, p.snap_min_iou).items())]
    if previous is None or not p.snap_previous:
        return out, ids
    hit = {i for i, _, _ in out}
    rest = [i for i in range(len(parts)) if i not in hit and (only is None or i in only)]
    if rest:
        second = match_previous([previous[i] for i in rest], labels, {c for _, c, _ in out},
                                p.snap_min_iou, p.snap_max_growth)
        out += [(rest[k], c, 0.0) for k, c in sorted(second.items())]
    return out, ids


def snap_parts(parts: list[list[Crop]], labels: np.ndarray, locked: np.ndarray | None,
               embryo: np.ndarray | None, p: PropagationParams, only=None,
               previous: list[Crop] | None = None
               ) -> dict[int, tuple[list[Crop], bool, bool]]:
    """Snap each track's parts on a plane (``parts[i]``: one object, or two daughters) to
    the detections of ``labels`` they match one-to-one (``match`` over every part, with
    ``p.snap_min_iou``): a matched part takes the detection's mask, less ``locked`` pixels,
    inside ``embryo`` (None: anywhere). Two daughters of which only one matches a detection
    are no division: the track goes on as that detection. ``previous[i]``: track ``i``'s
    previous mask shifted by its motion; a track none of whose parts matched is matched
    again from it to the detections left (``match_previous``; its propagated mask shrank,
    vanished or drifted; on the DevoLearn nuclear movie, matching again only the tracks the
    end checks would end kept 12 fewer tracks over all frames 30-36). A detection more than
    ``p.snap_max_growth`` times the track's previous mask is matched in neither round. An
    unmatched part loses the pixels snapped to others; one left with none is no object (a
    daughter: no division; the only part: the track has nothing there, ``end_reason``'s
    "vanished"). It was kept whole before, under another track's mask, and hidden there in
    the written labels: a new-user trial found a daughter track with no pixels in
    tracks.csv and a division with one daughter (the DevoLearn nuclear movie). Returns
    ``{i: (new parts, keep SAM's logits, matched)}`` for the tracks that changed; the logits
    are kept only when the mask barely changed (IoU 0.9); ``matched``: the parts are
    detections. ``only``: the tracks that may change (None: all); every part takes part in
    the first round."""
    pairs, ids = _pairs(parts, labels, p, previous, only)
    keep = np.ones(np.shape(labels), dtype=bool) if locked is None else ~np.asarray(locked)
    if embryo is not None:
        keep &= embryo
    taken = np.zeros(np.shape(labels), dtype=bool)
    new: dict[int, list] = {}
    for i, column, iou in pairs:
        mask = (labels == ids[column]) & keep
        if mask.any():
            taken |= mask
            new.setdefault(i, []).append((Crop.from_mask(mask), iou))
    out = {}
    for i, group in enumerate(parts):
        if only is not None and i not in only:
            continue
        if i in new:
            crops = [c for c, _ in new[i]]
            keep = len(crops) == 1 and len(group) == 1 and new[i][0][1] >= 0.9
            out[i] = (crops, keep, True)
        elif taken.any() and group:
            rest = [Crop.from_mask(c.full() & ~taken) for c in group]
            if any(r.area < c.area for r, c in zip(rest, group, strict=True)):
                out[i] = ([r for r in rest if r.area], False, False)
    return out


def detect_plane(ctx: RunContext, active: dict, plane: Plane, pixels: np.ndarray, emb,
                 made: list[TrackedObject]) -> None:
    """New tracks on ``plane`` for the cells ``ctx.detector`` finds there that no track
    covers (``tracking.new_cells``); ``made``: the objects propagation put there (snapped
    to the detections already: ``tracking.propagate``)."""
    p = ctx.params
    analysis = ctx.analysis(pixels, plane)  # fixes the run's stain, gives the embryo
    existing = list(ctx.existing(plane).values())
    tracked = [o.crop for o in made] + existing
    if tracked:
        ctx.typical_area = float(np.median([c.area for c in tracked]))
    labels = detections(ctx, plane, pixels, emb)  # made for the snap, or now
    scores = ctx.detected[2]
    if not np.any(labels):
        return
    clip = plane_embryo(analysis) if p.clip_to_embryo and ctx.stain == "membrane" else None
    looked_for = []  # tracks that missed this plane: their cells are not new
    for a in active.values():
        if a.last != plane and a.crop.area:
            looked_for.append(pr.shift_crop(a.crop, pr.velocity(a.centroids, p.motion)))
    covered = covered_pixels(np.shape(labels), tracked + looked_for, ctx.locked(plane))
    embryo = analysis.embryo if analysis is not None and analysis.found else None
    for crop, score in untracked_cells(labels, scores, covered, tracked, ctx.typical_area,
                                       embryo, p, analysis):
        if clip is not None:
            crop = Crop.from_mask(crop.full() & clip)
            if crop.area < p.min_area:
                continue
        _start(ctx, active, plane, crop, score)


def _start(ctx: RunContext, active: dict, plane: Plane, crop: Crop, score: float) -> None:
    """A new track, with no mother, from ``crop`` on ``plane``."""
    track = ctx.new_track()
    obj = TrackedObject(track, plane, crop, score, score, None, start=True)
    ctx.result.objects.append(obj)
    ctx.result.started.append((track, plane))
    ctx.result.review.append(ReviewItem(plane, track, "new cell", obj.confidence))
    active[track] = ActiveTrack(track, None, crop, None, [crop.centroid()], plane)
