"""A propagation run's result as files: track-id labels, then the result folder.

``result_labels`` paints the seeds and a ``PropagationResult``'s objects into track-id labels
``(F, H, W)`` (new tracks' negative placeholder ids made real by ``real_track_ids``);
``write_results`` writes them as the Cell Tracking Challenge result, ``tracks.csv``,
optionally ``tracks.geff`` (``tracking.track_files``) and ``review.csv``: the one way a run
becomes files, for ``devosam track`` and ``devosam batch``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def real_track_ids(seeds, result) -> dict[int, int]:
    """``{placeholder: id}`` for the new tracks of a run (negative placeholder ids): ids above
    every seed id, in order of appearance (seeds, then the run's objects and their parents).
    Positive ids map to themselves."""
    ids: dict[int, int] = {}
    top = max([s.track for s in seeds if s.track > 0], default=0)
    order = [(s.track, s.parent) for s in seeds] + [(o.track, o.parent) for o in result.objects]
    for track, parent in order:
        for t in (track, parent):
            if t is None or t in ids:
                continue
            if t > 0:
                ids[t] = t
            else:
                top += 1
                ids[t] = top
    return ids


def result_labels(seeds, result, n_frames: int, axis: int, shape) -> tuple[np.ndarray, dict]:
    """Track-id labels ``(n_frames, H, W)`` int64 along ``axis`` from seeds plus a
    ``PropagationResult``, and ``{track: parent}``. New tracks (negative placeholder ids) get
    ids above every seed id, in order of appearance (``real_track_ids``)."""
    labels = np.zeros((n_frames, *shape), dtype=np.int64)
    ids = real_track_ids(seeds, result)
    parents = {}
    items = [(s.track, s.parent, s.plane, np.asarray(s.mask, bool)) for s in seeds]
    items += [(o.track, o.parent, o.plane, o.mask) for o in result.objects]
    for track, parent, plane, mask in items:
        t = ids[track]
        frame = labels[plane[axis]]
        frame[mask & (frame == 0)] = t
        if parent is not None:
            parents[t] = ids[parent]
    return labels, parents


def write_review(path, result, axis: int, ids: dict[int, int], csv_rows=()) -> None:
    """review.csv: the run's events to check (``review_events``: one per division, new cell,
    track end, doubtful stretch of a track, blank plane; worst first), with the track ids of
    tracks.csv (``ids``: ``real_track_ids``; empty for a whole plane, e.g. a blank one), the
    label the track has in the CTC masks on that frame (``ctc_label``, from tracks.csv's
    ``csv_rows``: a track split at a gap has a new label after it; empty without rows), the
    index along ``axis`` as ``frame`` and the event's reason (quoted by the csv module: they
    hold commas). The issue's rule: the list names events, not every object."""
    import csv
    import io

    from napari_devosam.tracking.review_events import review_events
    from napari_devosam.utils.atomic import write_text

    label_at = _ctc_labels(csv_rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("frame", "track_id", "ctc_label", "reason", "confidence"))
    shown = {int(r["track_id"]) for r in csv_rows} if csv_rows else None
    for e in review_events(result, axis, tracks=ids, visible=shown):
        conf = "" if np.isnan(e.confidence) else f"{e.confidence:.3f}"
        writer.writerow((e.frame, e.track or "", label_at(e.track, e.frame), e.reason, conf))
    write_text(path, buf.getvalue())


def _ctc_labels(csv_rows):
    """``label_at(track, frame)``: the CTC label of ``track`` on ``frame`` in tracks.csv's
    rows, else on its last frame before (an end names the frame where the track was lost),
    else its first; "" for no track or no rows."""
    frames: dict[int, list[tuple[int, int]]] = {}
    for r in csv_rows:
        if r.get("ctc_label") not in (None, ""):
            frames.setdefault(int(r["track_id"]), []).append((int(r["frame"]),
                                                              int(r["ctc_label"])))
    for spans in frames.values():
        spans.sort()

    def label_at(track, frame) -> str:
        spans = frames.get(int(track)) if track else None
        if not spans:
            return ""
        before = [label for f, label in spans if f <= int(frame)]
        return str(before[-1] if before else spans[0][1])

    return label_at


def write_results(out_dir, seeds, result, *, axis: int, n_frames: int, plane_shape,
                  z_of_frame=None, geff: bool = False, review: bool = True
                  ) -> tuple[list[tuple], list[dict]]:
    """Write the run of ``seeds`` that made ``result`` into ``out_dir``: ``maskNNN.tif`` +
    ``res_track.txt``, ``tracks.csv`` (``z_of_frame``: ``track_files.frame_z``), with
    ``geff`` ``tracks.geff``, with ``review`` ``review.csv``. ``n_frames`` planes along
    leading ``axis``, each ``plane_shape`` ``(H, W)``. Returns ``(CTC (L, B, E, P) rows, CSV
    rows)``; raises what ``track_files.write_track_results`` raises."""
    from napari_devosam.tracking.track_files import write_track_results

    out_dir = Path(out_dir)
    labels, parents = result_labels(seeds, result, n_frames, axis, plane_shape)
    rows, csv_rows = write_track_results(out_dir, labels, parents, z_of_frame, geff)
    if review:
        write_review(out_dir / "review.csv", result, axis, real_track_ids(seeds, result),
                     csv_rows)
    return rows, csv_rows
