"""Carry committed objects from one plane to its neighbours along T or Z with SAM.

``propagate`` is a generator: it yields a ``Progress`` after every plane and returns a
``PropagationResult``; closing it (cancel) at any yield stops cleanly, and since nothing is
committed until the caller applies the result (``tracking.store_tracks``), a cancelled run
changes nothing. Per step, for every object still tracked on plane ``k`` (prompts:
``tracking.prompts``):

1. prompts for plane ``k +- 1``: the box of its mask moved by its recent motion and grown,
   a positive point at the mask's interior maximum, and SAM's own low-res logits of the
   previous step as ``mask_input`` (seeds and user-made objects have none: box + point);
2. all objects of the plane decode in one batch (``tracking.decode.BatchDecoder``);
3. mutual exclusion: each pixel goes to the object with the highest logit, if that logit is
   above SAM's mask threshold, inside the object's box (grown by ``clip_margin_px``) and not
   locked (committed objects propagation must not overwrite);
4. the mask is split into daughters (``tracking.divisions.split``, and stain seeds inside one
   mask or inside a track's previous mask: ``tracking.divisions.steps``; forward only) or
   cleaned of fragments; each pair of daughters is decoded again on its own (box + point per
   daughter, one batch: the mother's prompt outlines daughters poorly);
5. the track ends when the object vanished, left the image, or its IoU with the
   motion-shifted previous mask or SAM's predicted IoU fell below the thresholds of
   ``PropagationParams``;
6. on membrane planes a mask that overlaps the embryo is cut back to it (``clip_to_embryo``);
7. with ``new_tracks``, the plane is segmented automatically (``tracking.detections``): on
   nuclear stains the tracked masks are matched one-to-one to the detections before the
   track ends are judged (a second round from the motion-shifted previous masks for the
   tracks left over): a matched track takes the detection's mask and goes on (two
   daughters stand only on two detections; ``snap_to_detections``), step 5 judges the
   others, and ends an unmatched mask of more than ``max_growth`` typical nuclei;
   every cell no track covers starts a new track with no mother
   (``tracking.new_cells``): a cell that entered the plane.

The SAM-as-tracker scheme (previous mask as the next frame's prompt) follows the mask
propagation of SAM-based video annotators such as SAM-Track (Cheng et al. 2023,
arXiv:2305.06558) and micro-sam's ``segment_mask_in_volume`` (Archit et al. 2025, Nat.
Methods 22:579).
"""

from __future__ import annotations

import functools
from collections.abc import Generator

import numpy as np

from napari_devosam.tracking import prompts as pr
from napari_devosam.tracking.detections import (
    detect_plane,
    detections,
    snap_parts,
    snapping,
)
from napari_devosam.tracking.divisions.evidence import refuse_unlike, refuse_unproven, stain_refusal
from napari_devosam.tracking.divisions.free_cells import claim_free_sisters
from napari_devosam.tracking.divisions.split import split_mask
from napari_devosam.tracking.divisions.stain_seeds import plane_seeds, seed_points
from napari_devosam.tracking.divisions.steps import (
    end_reason,
    propose_splits,
    redetect,
    refine_daughters,
)
from napari_devosam.tracking.exclusion import exclusive, owned
from napari_devosam.tracking.membrane_growth import grow_objects
from napari_devosam.tracking.new_cells import sam_detector
from napari_devosam.tracking.params import PropagationParams
from napari_devosam.tracking.plane_checks import (  # noqa: F401 - BLANK re-exported
    BLANK,
    blank,
    check_seeds,
    clipped,
    embryo_of,
    inside_fraction,
    plane_embryo,
    stain_lost,
)
from napari_devosam.tracking.records import (
    Crop,
    Plane,
    Progress,
    PropagationResult,
    ReviewItem,
    Seed,
    TrackedObject,
)
from napari_devosam.tracking.route import Route
from napari_devosam.tracking.run_state import ActiveTrack, RunContext, end_track, run_stain


def propagate(sam, stack, seeds: list[Seed], *, axis: int = 0, direction: str = "forward",
              bounds=None, params: PropagationParams | None = None, cache=None,
              normalization=None, embedding_for=None, locked_for=None,
              existing_for=None, decoder=None, route: Route | None = None,
              detector=None) -> Generator[Progress, None, PropagationResult]:
    """Propagate ``seeds`` (all on one plane) along leading axis ``axis`` of ``stack``.

    Arguments:
      sam: a ``segment_anything`` ``Sam``.
      stack: ``(..., H, W)`` array (numpy, dask, zarr) with 1 or 2 leading (T and/or Z) axes.
      seeds: ``Seed`` objects on one plane; their track ids are kept (negative: new tracks).
      axis: which leading axis to follow (0 or 1); other leading indices stay the seed's.
      direction: "forward" (increasing index), "backward" or "both" (forward first).
      bounds: inclusive ``(first, last)`` indices along ``axis`` to stay within.
      params: thresholds (``PropagationParams``); divisions are only looked for forward.
      cache, normalization: for embeddings (``engine.embeddings.embed_plane``).
      embedding_for(plane) -> PlaneEmbedding: overrides the default embedding lookup.
      locked_for(plane) -> (H, W) bool or None: pixels no new object may take.
      existing_for(plane) -> {track: Crop}: tracks that already have an object there; they
        get no new object on that plane and continue from the existing one.
      decoder: replaces ``BatchDecoder(sam)`` (same methods; tests use an oracle).
      route: the run's ``Route`` when the caller computed it already (it must start on the
        seeds' plane along ``axis``); else ``Route.through(..., direction, bounds)``.
      detector(pixels, embedding, stain, diameter) -> (labels, {label: score}): finds the
        cells of a plane for ``params.new_tracks`` (``tracking.new_cells``; ``diameter``: the
        tracked objects' in pixels); default: automatic segmentation with ``sam`` (none when
        ``sam`` is None, as with an injected decoder).

    A blank plane (no finite value, or constant: an acquisition gap) gets no object: tracks
    go on from their last objects to the next plane, and the plane is listed for review.

    Yields ``Progress`` after each plane; returns ``PropagationResult``. Raises
    ``ValueError`` for bad seeds, axis, direction or bounds.
    """
    from napari_devosam.engine.embeddings import embed_plane
    from napari_devosam.tracking.decode import BatchDecoder

    params = params or PropagationParams()
    lead = tuple(stack.shape[:-2])
    if not lead:
        raise ValueError("a single 2D plane has no T or Z axis to propagate along")
    if not 0 <= axis < len(lead):
        raise ValueError(f"axis {axis} does not exist: the stack has {len(lead)} leading axes")
    if lead[axis] < 2:
        raise ValueError(f"axis {axis} has length 1: there is no other plane to propagate to")
    start = check_seeds(seeds, lead, stack.shape[-2:])
    route = Route.checked(route, lead, start, axis, direction, bounds)
    if embedding_for is None:
        def embedding_for(plane):
            return embed_plane(sam, np.asarray(stack[plane]), cache, normalization)
    if decoder is None:
        window = (params.window_context, params.window_context_cells) \
            if params.decode_window else None
        decoder = BatchDecoder(sam, window, params.clip_margin_px)
    ctx = RunContext(decoder, params, embedding_for,
                   locked_for or (lambda p: None), existing_for or (lambda p: {}),
                   lambda plane: np.asarray(stack[plane]), PropagationResult(),
                   min(-1, *(s.track - 1 for s in seeds)))
    ctx.stain = params.stain  # "auto": decided now for the run
    ctx.stain = run_stain(ctx, route)
    ctx.detector = _detector(sam, params, detector)
    ctx.typical_area = float(np.median([np.count_nonzero(s.mask) for s in seeds]))
    done = 0
    yield Progress(0, route.total, start, len(seeds), stain=ctx.result.stain)  # set up
    for number, leg in enumerate(route.legs):
        forward = leg and leg[0] > start[axis]
        active = {s.track: ActiveTrack(s.track, s.parent, Crop.from_mask(s.mask), None, [],
                                   start) for s in seeds}
        for a in active.values():
            a.centroids.append(a.crop.centroid())
        previous = start
        for index in leg:
            if not active and ctx.detector is None:
                break
            plane = route.plane(index)
            if _step(ctx, active, plane, previous, bool(forward and number == 0)):
                previous = plane
            done += 1
            yield Progress(done, route.total, plane, len(active), ctx.detect_seconds)
    return ctx.result


def _detector(sam, params: PropagationParams, detector):
    """The run's new-cell detector: ``detector``, else automatic segmentation with ``sam``
    (none without a ``sam``); None when ``params.new_tracks`` is off."""
    if not params.new_tracks:
        return None
    return detector or (sam_detector(sam, params.detection_second_round)
                        if sam is not None else None)


def _step(ctx: RunContext, active: dict, plane: Plane, previous: Plane, detect: bool) -> bool:
    """One plane: propagate the active tracks, then start new ones; False for a blank plane
    (SAM would outline noise there: tracks skip it)."""
    pixels = ctx.pixels(plane)  # read once per plane (dask/zarr stacks read lazily)
    if blank(pixels):
        ctx.result.review.append(ReviewItem(plane, 0, BLANK))
        return False
    made = len(ctx.result.objects)
    emb = _advance(ctx, active, plane, previous, detect, pixels)
    if ctx.detector is not None:
        detect_plane(ctx, active, plane, pixels, emb, ctx.result.objects[made:])
    return True


def _prompts(ctx: RunContext, active: dict, plane: Plane, shape, last: Plane) -> list[tuple]:
    """``(track, box, point, shifted previous crop)`` per track to decode on ``plane``."""
    p = ctx.params
    existing = ctx.existing(plane)
    todo = []
    for track in list(active):
        a = active[track]
        if track in existing:  # a committed object of this track: continue from it
            a.crop, a.logits = existing[track], None
            a.centroids.append(a.crop.centroid())
            continue
        dr, dc = pr.velocity(a.centroids, p.motion)
        box = pr.grown_box(pr.bbox(a.crop) + [dr, dc, dr, dc], p.box_margin, p.box_margin_px)
        if pr.inside_fraction(box, shape) < p.min_inside_fraction:
            end_track(ctx, active, track, plane, "left the image", last)
            continue
        r, c = pr.interior_point(a.crop)
        point = (min(max(r + dr, 0), shape[0] - 1), min(max(c + dc, 0), shape[1] - 1))
        todo.append((track, pr.clip_to_plane(box, shape), point,
                     pr.shift_crop(a.crop, (dr, dc))))
    return todo


def _advance(ctx: RunContext, active: dict, plane: Plane, previous: Plane, detect: bool,
             pixels: np.ndarray):
    """One step: every active track gets its object on ``plane`` (or ends there). Returns
    the plane's embedding."""
    p = ctx.params
    emb = ctx.embedding(plane)
    todo = _prompts(ctx, active, plane, tuple(emb.original_size), previous)
    if not todo:
        return emb
    ctx.decoder.set_embedding(emb, pixels)
    boxes = np.array([t[1] for t in todo])
    points = np.array([t[2] for t in todo]) if p.use_point else None
    masks_in = [active[t[0]].logits if p.use_mask_input else None for t in todo]
    logits, low_res, iou = ctx.decoder.decode(boxes, points, masks_in)
    owner = exclusive(logits, boxes, ctx.locked(plane), p.clip_margin_px,
                      float(getattr(ctx.decoder.sam, "mask_threshold", 0.0)))
    found = [split_mask(owned(owner, i + 1, t[1], p.clip_margin_px), p, detect)
             for i, t in enumerate(todo)]
    before, again = {}, {}
    ending = {i for i, t in enumerate(todo)
              if end_reason(found[i], active[t[0]].crop.area, t[3], p)[0]}
    seeds = analysis = None
    if p.membrane_grow_px > 0 or p.clip_to_embryo:
        analysis = ctx.analysis(pixels, plane)
    divisions = detect and p.detect_divisions
    if (ending and p.redetect_lost) or (divisions and (p.division_seeds or p.free_sisters)):
        analysis = analysis if analysis is not None else ctx.analysis(pixels, plane)
        seeds = plane_seeds(pixels, p.division_min_area, analysis)
    if divisions and p.division_seeds:
        before = propose_splits(found, [t[3] for t in todo], ending, seeds, owner, p)
    if p.refine_daughters or before:
        refine_daughters(ctx.decoder, p, found, owner, ctx.locked(plane), before)
    if p.redetect_lost:
        lost = {i: todo[i][3] for i in ending if len(found[i]) < 2}
        again = redetect(ctx.decoder, p, lost, seeds, owner, ctx.locked(plane)) if lost else {}
    if divisions and p.free_sisters:
        for i, (crop, _, _) in again.items():
            found[i] = [crop]  # what the plane holds now: free cells are those outside
        claim_free_sisters(ctx.decoder, p, found, [t[3] for t in todo],
                           [active[t[0]].crop for t in todo], set(again), seeds,
                           lambda: ctx.seeds(previous), ctx.locked(plane))
    grow_objects(found, again, analysis, p.membrane_grow_px, ctx.locked(plane))
    if divisions:  # proposals without evidence are no divisions (divisions.evidence)
        if any(len(f) == 2 for f in found) and (p.division_min_membrane > 0
                                                 or p.division_min_brightness > 0):
            analysis = analysis if analysis is not None else ctx.analysis(pixels, plane)

        def membrane(daughters):
            return stain_refusal(daughters, analysis,
                                 lambda: ctx.analysis(ctx.pixels(previous), previous), p)

        ages = [None if active[t[0]].parent is None else len(active[t[0]].centroids)
                for t in todo]  # daughters: planes followed (division_min_age)
        refuse_unproven(found, [active[t[0]].crop for t in todo], [t[3] for t in todo], seeds,
                        lambda: seed_points(ctx.seeds(previous)), p, ctx.stain, membrane,
                        ages)
    ctx.seeds_of = (plane, seeds)
    _record(ctx, active, plane, previous, todo, found, again, (iou, low_res), analysis,
            (pixels, emb))
    return emb


def _record(ctx: RunContext, active: dict, plane: Plane, previous: Plane, todo: list,
            found: list, again: dict, decoded: tuple, analysis, plane_data: tuple) -> None:
    """Each decoded track's parts on ``plane`` (``found``, or ``again``: found again from a
    seed), held to the embryo (``clip_to_embryo``) and snapped to the plane's detections
    (``snap_to_detections``, ``tracking.detections``), recorded or ended (``_update``). When
    snapping, an unmatched track whose parts hold more than ``max_growth`` times the typical
    area (the median of the last plane's tracked objects) ends: it grew over neighbours.
    ``decoded``: the decoder's ``(predicted IoU, low-res logits)``; ``plane_data``: the
    plane's ``(pixels, embedding)``."""
    p = ctx.params
    iou, low_res = decoded
    embryo = embryo_of(analysis, p)
    clip = plane_embryo(analysis) if p.clip_to_embryo and ctx.stain == "membrane" else None
    chosen = []
    for i, (track, _, _, _) in enumerate(todo):
        parts, score, logits_i = found[i], float(iou[i]), low_res[i]
        if i in again:
            crop, score, logits_i = again[i]
            parts = [crop]
        outside = (embryo is not None and parts
                   and inside_fraction(parts, embryo) < p.min_embryo_fraction
                   <= inside_fraction([active[track].crop], embryo))  # it was inside: it left
        parts = clipped(parts, clip) if clip is not None and parts else parts
        chosen.append([parts, score, logits_i, outside])
    matched = set()
    if ctx.detector is not None and ctx.stain == "auto":
        ctx.analysis(plane_data[0], plane)  # fixes the run's stain before snapping
    if snapping(ctx):  # matched tracks go on as their detections, whatever the end checks
        labels = detections(ctx, plane, *plane_data)
        snapped = snap_parts([c[0] for c in chosen], labels, ctx.locked(plane), clip, p,
                             previous=[t[3] for t in todo])
        for i, (parts, keep_logits, hit) in snapped.items():
            chosen[i][0] = parts
            chosen[i][2] = chosen[i][2] if keep_logits else None
            if hit:
                matched.add(i)
        if any(len(c[0]) == 2 for c in chosen):  # daughters held again on their detections
            groups = [c[0] for c in chosen]
            for i in refuse_unlike(groups, [t[3] for t in todo],
                                   lambda: ctx.analysis(plane_data[0], plane), p):
                chosen[i][0], chosen[i][2] = groups[i], None
    limit = p.max_growth * ctx.typical_area if snapping(ctx) else 0.0
    stain = _nuclear_analysis(ctx, plane_data[0], plane)
    # the previous plane's analysis, read once and only if a track needs it
    before = functools.cache(lambda: ctx.analysis(ctx.pixels(previous), previous))
    for i, (track, _, _, shifted) in enumerate(todo):
        parts, score, logits_i, outside = chosen[i]
        left = "left the embryo" if outside else None
        if stain is not None and parts and not left:
            left, parts = stain_lost(active[track], parts, stain, before, p, i in matched)
        area = sum(c.area for c in parts)
        if limit > 0 and i not in matched and area > limit:  # no one nucleus (max_growth)
            left = f"grew to {area / ctx.typical_area:.1f}x the typical area"
        a = active[track]
        a.unmatched = 0 if i in matched or not snapping(ctx) else a.unmatched + 1
        if not left and 0 < p.max_unmatched_planes < a.unmatched:
            left = f"no detection for {a.unmatched} planes"
        _update(ctx, active, track, plane, parts, shifted, score, logits_i, previous,
                found_again=i in again, left=left, matched=i in matched)


def _nuclear_analysis(ctx: RunContext, pixels: np.ndarray, plane: Plane):
    """The plane's analysis when its stain is nuclei and ``min_stained_fraction`` is on
    (the stain under a mask is judged), else None."""
    if ctx.params.min_stained_fraction <= 0 or ctx.stain == "membrane":
        return None
    analysis = ctx.analysis(pixels, plane)
    return analysis if analysis.found and ctx.stain == "nuclei" else None


def _update(ctx: RunContext, active: dict, track: int, plane: Plane, parts: list[Crop],
            shifted: Crop, pred_iou: float, low_res, previous: Plane,
            found_again: bool = False, left: str | None = None, matched: bool = False) -> None:
    """Record the new object(s) of ``track`` on ``plane``, or end the track. An object found
    again from a seed (``found_again``) is held to ``division_min_iou_prev`` and reviewed.
    A track ``matched`` to a detection (``parts``: the detection's masks) is on a cell of
    this plane: it goes on, whatever the end checks say (they judge the others)."""
    p, res, a = ctx.params, ctx.result, active[track]
    reason, iou_prev = end_reason(parts, a.crop.area, shifted, p, loose=found_again)
    reason = reason or left
    if not reason and p.min_pred_iou > 0 and pred_iou < p.min_pred_iou:  # 0 disables
        reason = f"predicted IoU {pred_iou:.2f}"
    area = sum(c.area for c in parts)
    if not reason and p.max_growth > 0 and area > p.max_growth * max(a.first_area, 1):
        reason = f"grew {area / max(a.first_area, 1):.1f}x"
    if reason and not matched:
        if a.missed < p.max_missed_planes:  # looked for again on the next plane
            a.lost = a.lost if a.missed else (plane, reason)
            a.missed, a.logits = a.missed + 1, None
            return None
        plane, reason = a.lost or (plane, reason)  # where it was lost first
        return end_track(ctx, active, track, plane, reason, a.last or previous)
    found_again = found_again or a.missed > 0
    a.missed, a.last = 0, plane
    if len(parts) == 1:
        obj = TrackedObject(track, plane, parts[0], pred_iou, iou_prev, a.parent)
        res.objects.append(obj)
        a.crop, a.logits = parts[0], low_res
        a.centroids.append(parts[0].centroid())
        if found_again:
            res.review.append(ReviewItem(plane, track, "found again", obj.confidence))
        elif obj.confidence < p.review_below:
            res.review.append(ReviewItem(plane, track, "low confidence", obj.confidence))
        return None
    daughters = [ctx.new_track(), ctx.new_track()]
    del active[track]
    res.ended[track] = (plane, "divided")
    res.divisions.append((track, plane, *daughters))
    for d, part in zip(daughters, parts, strict=True):
        obj = TrackedObject(d, plane, part, pred_iou, iou_prev, track, division=True)
        res.objects.append(obj)
        res.review.append(ReviewItem(plane, d, "division", obj.confidence))
        active[d] = ActiveTrack(d, track, part, None, [part.centroid()], plane,
                                stained=a.stained)  # a stained mother's daughters
    return None
