"""A review list a person can work through: one entry per event, grouped, worst first.

Propagation lists planes to look at per object (``records.ReviewItem``: a division gives one
item per daughter, a stretch of doubtful planes one item per plane). ``review_events`` turns
them into events:

- "division": one per division (``PropagationResult.divisions``), at the daughters' first
  frame, with the lower of the two daughters' confidences;
- "new cell": one per track that automatic segmentation started on a plane because no track
  covered the cell there (``PropagationResult.started``; ``tracking.new_cells``), at its
  first frame, with its detection score: a cell that entered the plane, or one nobody
  seeded (check that it is no daughter);
- "track end": one per track that stopped before the end of its route
  (``PropagationResult.ended``, divisions aside), with its reason ("left the image", "lost",
  ...) and the confidence of its last object;
- "low confidence" and "found again" (the mask failed its checks and a stain seed gave the
  cell back, on the same plane): one per run of frames of a track (at most ``RUN_GAP``
  frames apart), at its least confident frame, or folded into the track's end when the run
  reaches it;
- "blank plane": one per plane skipped as blank.

From an ``AnnotationStore`` (a reopened store, or tracks imported from another tool) the
events come from its records instead: divisions from ``"parent"``, new cells from the
``"new_cell"`` flag of an object's ``"prompts"`` (``store_tracks.apply_plan`` writes it),
track ends from the lineage's end reasons (not for an object on one frame without a
mother or a recorded end: a seed or an annotation, never tracked), low confidence from each
object's ``"confidence"``.

Events sort by confidence, lowest first (NaN, unknown, last), then by frame and track.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KINDS = ("division", "new cell", "track end", "low confidence", "found again", "blank plane")


@dataclass(frozen=True)
class ReviewEvent:
    """One thing to check: ``kind`` (one of ``KINDS``), ``track`` (0: a whole plane),
    ``frame`` (index along the tracked axis), ``plane`` (the plane to show), ``confidence`` in
    [0, 1] or NaN, and ``reason`` (one line)."""

    kind: str
    track: int
    frame: int
    plane: tuple
    confidence: float
    reason: str

    def text(self) -> str:
        conf = "" if math.isnan(self.confidence) else f" ({self.confidence:.2f})"
        who = f"track {self.track}" if self.track else "plane"
        return f"frame {self.frame}  {who}: {self.reason}{conf}"


def _key(e: ReviewEvent):
    return (math.isnan(e.confidence), 0.0 if math.isnan(e.confidence) else e.confidence,
            e.frame, e.track, KINDS.index(e.kind))


RUN_GAP = 2  # frames without doubt that a run of doubtful frames may hold


def _runs(items, axis: int) -> list[list]:
    """Items of one track and kind, split into runs of frames at most ``RUN_GAP`` frames
    apart (a doubtful stretch with a sure frame or two inside is one thing to check: on the
    DevoLearn membrane movie, 51 low-confidence frames made 38 runs of consecutive frames,
    17 of such stretches)."""
    items = sorted(items, key=lambda i: tuple(i.plane))
    runs: list[list] = []
    for item in items:
        if runs and tuple(item.plane)[axis] - tuple(runs[-1][-1].plane)[axis] <= 1 + RUN_GAP:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def _span_events(kind: str, items, axis: int, tracks, ends=None) -> list[ReviewEvent]:
    """One event per run of ``items`` (``_runs``). ``ends``: ``{track: ReviewEvent}``, the
    "track end" events by their shown track id; a run that reaches a track's end is folded
    into that event (the doubtful frames led to the end: one thing to check), which is
    replaced in ``ends``. A found-again track had no gap: its mask failed the checks and a
    stain seed gave it back on the same plane."""
    by_track: dict[int, list] = {}
    for item in items:
        by_track.setdefault(item.track, []).append(item)
    out = []
    for track, mine in by_track.items():
        shown = tracks.get(track, track)
        for run in _runs(mine, axis):
            worst = min(run, key=lambda i: (math.isnan(i.confidence), i.confidence))
            first, last = tuple(run[0].plane)[axis], tuple(run[-1].plane)[axis]
            where = f"frame {first}" if first == last else f"frames {first}..{last}"
            what = (f"{kind} on {where}" if kind == "low confidence"
                    else f"found again from a stain seed on {where} (its mask had failed)")
            end = (ends or {}).get(shown)
            if end is not None and last >= end.frame - RUN_GAP:
                c = min(end.confidence, worst.confidence, key=lambda v: (math.isnan(v), v))
                ends[shown] = ReviewEvent(end.kind, end.track, end.frame, end.plane, float(c),
                                          f"{end.reason}, after {what}")
                continue
            out.append(ReviewEvent(kind, shown, tuple(worst.plane)[axis],
                                   tuple(worst.plane), float(worst.confidence), what))
    return out


def _from_result(result, axis: int, tracks: dict[int, int]) -> list[ReviewEvent]:
    conf: dict[tuple[int, tuple], float] = {}
    last: dict[int, object] = {}
    for obj in result.objects:
        conf[(obj.track, tuple(obj.plane))] = obj.confidence
        last[obj.track] = obj
    events = []
    for mother, plane, a, b in result.divisions:
        plane = tuple(plane)
        c = min(conf.get((a, plane), math.nan), conf.get((b, plane), math.nan))
        ta, tb, tm = (tracks.get(t, t) for t in (a, b, mother))
        events.append(ReviewEvent("division", tm, plane[axis], plane, float(c),
                                  f"track {tm} divides into {ta} and {tb}"))
    for track, plane in getattr(result, "started", ()):
        plane = tuple(plane)
        t = tracks.get(track, track)
        events.append(ReviewEvent("new cell", t, plane[axis], plane,
                                  float(conf.get((track, plane), math.nan)),
                                  f"track {t} starts: a cell no track covered (new in the "
                                  "plane, or not seeded)"))
    ends: dict[int, ReviewEvent] = {}
    for track, (plane, reason) in result.ended.items():
        if reason == "divided":
            continue
        obj = last.get(track)
        shown = tuple(obj.plane) if obj is not None else tuple(plane)
        c = obj.confidence if obj is not None else math.nan
        t = tracks.get(track, track)
        on = ("" if obj is not None and tuple(plane)[axis] == shown[axis]
              else f", lost on frame {tuple(plane)[axis]}")  # the row's frame: its last object
        ends[t] = ReviewEvent("track end", t, shown[axis], shown, float(c),
                              f"track ends{on}: {reason}")  # shown: its last object
    for kind in ("low confidence", "found again"):
        items = [r for r in result.review if r.reason == kind]
        events += _span_events(kind, items, axis, tracks, ends)
    events += list(ends.values())
    for r in result.review:
        if r.track == 0:
            events.append(ReviewEvent("blank plane", 0, tuple(r.plane)[axis], tuple(r.plane),
                                      math.nan, r.reason))
    return events


def _from_store(store, axis: int, below: float) -> list[ReviewEvent]:
    from napari_devosam.tracking.lineage import lineage
    from napari_devosam.tracking.records import CONTINUED, DIVIDED, ReviewItem, is_division
    from napari_devosam.tracking.store_tracks import track_of

    objects = store.objects
    info = lineage(store, axis)
    at: dict[tuple[int, int], tuple[tuple, float]] = {}  # (track, frame) -> (plane, conf)
    for oid, r in sorted(objects.items(), key=lambda kv: (tuple(kv[1]["plane"]), kv[0])):
        plane = tuple(r["plane"])
        c = r.get("confidence")
        at.setdefault((track_of(oid, r), plane[axis]),
                      (plane, math.nan if c is None else float(c)))
    events = []
    for t, row in sorted(info.items()):
        if is_division(row.daughters):
            starts = [at[(d, info[d].first)] for d in row.daughters]
            confs = [c for _, c in starts if not math.isnan(c)]
            events.append(ReviewEvent(
                "division", t, info[row.daughters[0]].first, starts[0][0],
                min(confs) if confs else math.nan,
                f"track {t} divides into {' and '.join(map(str, row.daughters))}"))
        elif row.end_reason not in (DIVIDED, CONTINUED, "movie end") and (
                row.end_reason or row.parent is not None or row.last > row.first):
            # an object on one frame with no end recorded and no mother was never tracked
            # (a seed, an annotation): no track ended there
            plane, c = at[(t, row.last)]
            why = row.end_reason or "unknown reason"
            events.append(ReviewEvent("track end", t, row.last, plane, c, f"track ends: {why}"))
    for oid, r in objects.items():
        if (r.get("prompts") or {}).get("new_cell") and r.get("parent") is None:
            plane, t = tuple(r["plane"]), track_of(oid, r)
            c = r.get("confidence")
            events.append(ReviewEvent(
                "new cell", t, plane[axis], plane, math.nan if c is None else float(c),
                f"track {t} starts: a cell no track covered (new in the plane, or not seeded)"))
    low = [ReviewItem(tuple(r["plane"]), track_of(oid, r), "low confidence",
                      float(r["confidence"]))
           for oid, r in objects.items()
           if r.get("confidence") is not None and float(r["confidence"]) < below]
    return events + _span_events("low confidence", low, axis, {})


def review_events(source, axis: int = 0, *, tracks: dict[int, int] | None = None,
                  review_below: float = 0.7, visible=None) -> list[ReviewEvent]:
    """The events of ``source``, sorted (lowest confidence first): a ``PropagationResult``
    (``tracks``: its placeholder track ids -> the store's, as ``store_run`` maps them) or an
    ``AnnotationStore`` (``review_below``: the confidence under which an object is doubtful,
    ``PropagationParams.review_below``). ``axis``: the tracked leading axis. ``visible``:
    the track ids (after ``tracks``) that have pixels in what was written (tracks.csv's);
    events of other tracks are left out (None: all kept; a whole plane's events always)."""
    if hasattr(source, "review") and hasattr(source, "ended"):
        events = _from_result(source, axis, tracks or {})
    else:
        events = _from_store(source, axis, review_below)
    if visible is not None:
        events = [e for e in events if not e.track or e.track in visible]
    return sorted(events, key=_key)


def group_events(events) -> dict[str, list[ReviewEvent]]:
    """``{kind: events}`` in ``KINDS`` order, only kinds that occur, each list in the order
    given (sorted by ``review_events``); ``len`` of a list is the group's count."""
    groups: dict[str, list[ReviewEvent]] = {k: [] for k in KINDS}
    for e in events:
        groups[e.kind].append(e)
    return {k: v for k, v in groups.items() if v}


def group_titles(groups: dict[str, list[ReviewEvent]]) -> dict[str, str]:
    """``{kind: "division (3)"}``: a heading with the count of each group."""
    return {k: f"{k} ({len(v)})" for k, v in groups.items()}
