"""The review list: one entry per event, grouped by kind, lowest confidence first."""

import math

import numpy as np
from tracking_oracle import OracleDecoder

from napari_devosam.annotation.store import AnnotationStore
from napari_devosam.synthetic.lineage import make_lineage_timelapse
from napari_devosam.tracking.propagate import BLANK
from napari_devosam.tracking.records import Crop, PropagationResult, ReviewItem, TrackedObject
from napari_devosam.tracking.review_events import KINDS, group_events, review_events
from napari_devosam.tracking.store_tracks import apply_plan, propagate_in_store
from napari_devosam.utils.progress import drain


def _obj(track, t, conf, parent=None):
    crop = Crop.from_mask(np.ones((4, 4), bool))
    return TrackedObject(track, (t,), crop, conf, conf, parent, division=parent is not None)


def _result():
    r = PropagationResult()
    r.objects = [_obj(1, 1, 0.9), _obj(1, 2, 0.5), _obj(1, 3, 0.4), _obj(1, 4, 0.6),
                 _obj(-1, 5, 0.8, 1), _obj(-2, 5, 0.3, 1), _obj(2, 1, 0.95), _obj(2, 2, 0.9),
                 _obj(3, 1, 0.2)]
    r.divisions = [(1, (5,), -1, -2)]
    r.ended = {1: ((5,), "divided"), 2: ((3,), "lost"), 3: ((2,), "left the image")}
    r.review = [ReviewItem((2,), 1, "low confidence", 0.5),
                ReviewItem((3,), 1, "low confidence", 0.4),
                ReviewItem((4,), 1, "low confidence", 0.6),
                ReviewItem((5,), -1, "division", 0.8), ReviewItem((5,), -2, "division", 0.3),
                ReviewItem((2,), 2, "track ended: lost"),
                ReviewItem((1,), 3, "track ended: left the image"),
                ReviewItem((1,), 3, "found again", 0.2), ReviewItem((6,), 0, BLANK)]
    return r


def test_one_event_per_division_end_and_run_of_doubtful_frames():
    events = review_events(_result(), tracks={-1: 10, -2: 11})
    kinds = [e.kind for e in events]
    assert kinds.count("division") == 1 and kinds.count("low confidence") == 1
    assert kinds.count("track end") == 2 and kinds.count("found again") == 0  # in its end
    assert kinds.count("blank plane") == 1 and len(events) == 5
    division = next(e for e in events if e.kind == "division")
    assert (division.track, division.frame, division.confidence) == (1, 5, 0.3)
    assert "10 and 11" in division.reason
    low = next(e for e in events if e.kind == "low confidence")
    assert (low.frame, low.confidence, low.reason) == (3, 0.4, "low confidence on frames 2..4")
    ends = {e.track: e.reason for e in events if e.kind == "track end"}
    # shown on the last object's frame; the frame where it was lost is named
    assert ends == {2: "track ends, lost on frame 3: lost",
                    3: "track ends, lost on frame 2: left the image, after found again from "
                       "a stain seed on frame 1 (its mask had failed)"}


def test_sorted_by_confidence_and_grouped_with_counts():
    events = review_events(_result())
    confs = [e.confidence for e in events if not math.isnan(e.confidence)]
    assert confs == sorted(confs)
    assert math.isnan(events[-1].confidence)  # unknown confidence last
    groups = group_events(events)
    assert list(groups) == [k for k in KINDS if k in groups]
    assert {k: len(v) for k, v in groups.items()} == {
        "division": 1, "track end": 2, "low confidence": 1, "blank plane": 1}
    assert all(e.text() for e in events)


def test_a_real_run_lists_each_division_once(tmp_path):
    stack, labels, _ = make_lineage_timelapse(8, (128, 128), 3, seed=1,
                                              steady_brightness=False)
    store = AnnotationStore(tmp_path / "s.devosam", stack.shape)
    store.commit((0,), [labels[0] == t for t in (1, 2, 3)])
    oracle = OracleDecoder(labels)
    plan = drain(propagate_in_store(None, labels, store, (0,), decoder=oracle,
                                    embedding_for=oracle.embedding_for))
    result = plan.result
    assert result.divisions
    per_daughter = sum(r.reason == "division" for r in result.review)
    events = review_events(result)
    assert per_daughter == 2 * len(result.divisions)
    assert sum(e.kind == "division" for e in events) == len(result.divisions)
    apply_plan(store, plan)
    from_store = review_events(store)  # the same divisions, read back from the records
    assert ({(e.track, e.frame) for e in from_store if e.kind == "division"}
            == {(m, p[0]) for m, p, _, _ in result.divisions})


def test_store_events_name_why_a_track_ended(tmp_path):
    store = AnnotationStore(tmp_path / "s.devosam", (6, 32, 32))
    mask = np.zeros((32, 32), bool)
    mask[4:9, 4:9] = True
    commits = [((t,), mask, {"track": 1, "confidence": c})
               for t, c in zip(range(4), (0.9, 0.5, 0.4, 0.9), strict=True)]
    store.apply_batch((), commits)
    oid = max(store.objects)
    store.change_tracks({oid: {"ended": "lost"}})
    events = review_events(store, review_below=0.7)
    assert [(e.kind, e.frame) for e in events] == [("low confidence", 2), ("track end", 3)]
    assert events[1].reason == "track ends: lost"


def test_a_track_that_stops_keeps_its_reason_in_the_store(tmp_path):
    from napari_devosam.tracking.lineage import lineage
    from napari_devosam.tracking.params import PropagationParams

    stack, labels, _ = make_lineage_timelapse(8, (128, 128), 3, seed=1,

                                              steady_brightness=False)
    labels = labels.copy()
    labels[5:][labels[5:] == 3] = 0  # cell 3 vanishes at frame 5
    store = AnnotationStore(tmp_path / "s.devosam", stack.shape)
    store.commit((0,), [labels[0] == t for t in (1, 2, 3)])
    oracle = OracleDecoder(labels)
    plan = drain(propagate_in_store(None, labels, store, (0,), decoder=oracle,
                                    embedding_for=oracle.embedding_for,
                                    params=PropagationParams(detect_divisions=False)))
    assert plan.result.ended[3] == ((5,), "vanished")
    apply_plan(store, plan)
    assert lineage(store)[3].end_reason == "vanished" and lineage(store)[3].last == 4
    ends = {e.track: (e.frame, e.reason) for e in review_events(store) if e.kind == "track end"}
    assert ends[3] == (4, "track ends: vanished")
    assert {t: f"track ends: {r}" for t, (_, r) in plan.result.ended.items()} == {
        t: reason for t, (_, reason) in ends.items()}  # one event per track that stopped


def test_doubtful_stretches_with_short_gaps_are_one_event_and_fold_into_an_end():
    """The DevoLearn membrane movie's review.csv listed 51 low-confidence frames one by one;
    a stretch with a sure frame or two inside is one thing to check, and one that leads to
    the track's end is part of that end."""
    r = PropagationResult()
    r.objects = [_obj(1, t, 0.5 if t in (2, 3, 5, 9) else 0.9) for t in range(1, 11)]
    r.objects += [_obj(2, t, 0.4 if t >= 6 else 0.9) for t in range(1, 9)]
    r.ended = {2: ((9,), "IoU with previous 0.2")}
    r.review = [ReviewItem((t,), 1, "low confidence", 0.5) for t in (2, 3, 5, 9)]
    r.review += [ReviewItem((t,), 2, "low confidence", 0.4) for t in (6, 7, 8)]
    r.review += [ReviewItem((4,), 1, "found again", 0.3)]
    events = review_events(r)
    [again] = [e for e in events if e.kind == "found again"]
    assert again.reason == "found again from a stain seed on frame 4 (its mask had failed)"
    low = sorted(e.reason for e in events if e.kind == "low confidence")
    assert low == ["low confidence on frame 9", "low confidence on frames 2..5"]
    [end] = [e for e in events if e.kind == "track end"]
    assert end.track == 2 and end.reason == ("track ends, lost on frame 9: IoU with previous 0.2, "
                                             "after low confidence on frames 6..8")
    assert end.confidence == 0.4 and len(events) == 4


def test_review_csv_lists_the_events(tmp_path):
    import csv

    from napari_devosam.tracking.result_files import write_review

    write_review(tmp_path / "review.csv", _result(), 0, {-1: 10, -2: 11})
    rows = list(csv.reader((tmp_path / "review.csv").open()))
    assert rows[0] == ["frame", "track_id", "ctc_label", "reason", "confidence"]
    assert len(rows) - 1 == len(review_events(_result()))
    assert sum("divides into 10 and 11" in r[3] for r in rows) == 1  # not one per daughter
    assert ["6", "", "", BLANK, ""] in rows


def test_a_track_that_ends_right_after_its_seed_names_the_frame():
    r = PropagationResult()
    r.ended = {4: ((1,), "no stain under the mask (3%, was 100%)")}  # only its seed, frame 0
    [end] = review_events(r)
    assert end.reason == "track ends, lost on frame 1: no stain under the mask (3%, was 100%)"


def test_review_csv_names_the_ctc_label_a_split_track_has_on_its_frame(tmp_path):
    """A track with a gap is split in the CTC result (a new label after the gap): review.csv
    names the label the masks show on the event's frame, next to tracks.csv's track id."""
    import csv

    from napari_devosam.tracking.result_files import write_review
    from napari_devosam.tracking.track_files import ctc_tracks, track_rows

    labels = np.zeros((4, 8, 8), dtype=np.int64)
    labels[[0, 2, 3], 2:5, 2:5] = 7  # track 7, missing on frame 1
    ctc, _ = ctc_tracks(labels, {})
    r = PropagationResult()
    r.ended = {7: ((3,), "lost")}
    r.review = [ReviewItem((0,), 7, "low confidence", 0.3),
                ReviewItem((3,), 7, "track ended: lost")]
    write_review(tmp_path / "review.csv", r, 0, {}, track_rows(labels, {}, ctc=ctc))
    rows = list(csv.DictReader((tmp_path / "review.csv").open()))
    shown = {int(r["frame"]): int(r["ctc_label"]) for r in rows}
    assert shown[0] == int(ctc[0].max()) == 7 and shown[3] == int(ctc[3].max()) != 7
