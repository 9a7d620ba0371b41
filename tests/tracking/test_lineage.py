"""Lineage edits on the annotation store: each edit, each refusal, undo/redo, reload, exports."""

import json

import numpy as np
import pytest

from napari_devosam.annotation.store import AnnotationStore
from napari_devosam.tracking.lineage import (
    LineageError,
    delete_track,
    join_tracks,
    lineage,
    object_of,
    set_parent,
    split_track,
    swap_tracks,
)
from napari_devosam.tracking.store_tracks import export_store_tracks

# track: (first frame, last frame, mother); each track a square of its own rows
SPEC = {1: (0, 2, None), 2: (3, 7, 1), 3: (3, 7, 1), 4: (0, 7, None), 5: (0, 3, None)}


def _square(track, shape=(64, 64)):
    mask = np.zeros(shape, dtype=bool)
    mask[track * 10:track * 10 + 6, 5:11] = True
    return mask


@pytest.fixture
def store(tmp_path):
    s = AnnotationStore(tmp_path / "movie.devosam", (8, 64, 64))
    commits = [((f,), _square(t), {"track": t, "parent": p})
               for t, (a, b, p) in SPEC.items() for f in range(a, b + 1)]
    s.apply_batch((), commits, next_id=100)
    return s


def _shape(store):
    """``{track: (first, last, parent, daughters, end reason)}``."""
    return {t: (i.first, i.last, i.parent, i.daughters, i.end_reason)
            for t, i in lineage(store).items()}


def _state(store):
    return store.labels.tobytes(), json.dumps(store.objects, sort_keys=True)


def _exported(store, folder):
    export_store_tracks(folder, store, (0,), 0)
    rows = sorted(tuple(int(v) for v in line.split())
                  for line in (folder / "res_track.txt").read_text().splitlines())
    return rows


def _undo_redo_restores(store, before, edited):
    assert store.undo() is not None
    assert _state(store) == before
    assert store.redo() is not None
    assert _state(store) == edited
    reloaded = AnnotationStore(store.folder)
    assert _shape(reloaded) == _shape(store)  # persisted
    assert np.array_equal(reloaded.labels, store.labels)


def test_lineage_rows_and_object_lookup(store):
    rows = _shape(store)
    assert rows[1] == (0, 2, None, (2, 3), "divided")
    assert rows[2] == (3, 7, 1, (), "movie end")
    assert rows[5] == (0, 3, None, (), "")
    plane, oid = object_of(store, 4, 6)
    assert plane == (6,) and store.objects[oid]["track"] == 4
    assert object_of(store, 1, 5) is None


def test_set_parent_makes_and_undoes_a_division(store, tmp_path):
    before = _state(store)
    set_parent(store, 3, None)  # undo a (false) division
    assert _shape(store)[3][2] is None and _shape(store)[1][3] == (2,)
    assert (3, 3, 7, 0) in _exported(store, tmp_path / "a")
    _undo_redo_restores(store, before, _state(store))
    store.undo()
    assert (3, 3, 7, 1) in _exported(store, tmp_path / "b")


def test_split_gives_a_fresh_track_from_the_frame_on(store, tmp_path):
    before = _state(store)
    new = split_track(store, 4, 5)
    rows = _shape(store)
    assert new not in SPEC and new >= 100
    assert rows[4][:2] == (0, 4) and rows[new][:3] == (5, 7, None)
    assert (new, 5, 7, 0) in _exported(store, tmp_path / "a")
    assert split_track(store, 5, 2) not in (new, *SPEC)  # never the same id twice
    store.undo()
    _undo_redo_restores(store, before, _state(store))


def test_split_moves_the_daughters_to_the_later_part(store):
    new = split_track(store, 1, 1)
    rows = _shape(store)
    assert rows[1][:4] == (0, 0, None, ())
    assert rows[new][3] == (2, 3) and rows[2][2] == new


def test_join_continues_a_with_b(store, tmp_path):
    set_parent(store, 3, None)
    delete_track(store, 3, 0)  # leave track 1 with one daughter, then join it
    before = _state(store)
    join_tracks(store, 1, 2)
    rows = _shape(store)
    assert 2 not in rows and rows[1][:4] == (0, 7, None, ())
    assert (1, 0, 7, 0) in _exported(store, tmp_path / "a")
    _undo_redo_restores(store, before, _state(store))


def test_swap_trades_identities_and_daughters(store, tmp_path):
    before = _state(store)
    swap_tracks(store, 1, 4, 1)
    rows = _shape(store)
    assert rows[1][:2] == (0, 7) and rows[4][:2] == (0, 2)
    assert rows[4][3] == (2, 3) and rows[2][2] == 4
    plane, oid = object_of(store, 1, 1)
    assert np.array_equal(store.labels[plane] == oid, _square(4))  # pixels kept, id swapped
    exported = _exported(store, tmp_path / "a")
    assert (2, 3, 7, 4) in exported and (1, 0, 7, 0) in exported
    _undo_redo_restores(store, before, _state(store))


@pytest.mark.parametrize("descendants", [False, True])
def test_delete_from_a_frame_with_or_without_descendants(store, descendants):
    before = _state(store)
    gone = delete_track(store, 1, 1, descendants=descendants)
    rows = _shape(store)
    assert all(i not in store.objects for i in gone)
    assert rows[1][:2] == (0, 0)
    if descendants:
        assert 2 not in rows and 3 not in rows and len(gone) == 2 + 5 + 5
        assert rows[1][4] == "deleted"
    else:
        assert rows[2][2] == 1 and len(gone) == 2
    _undo_redo_restores(store, before, _state(store))


def test_one_daughter_left_is_no_division_anywhere(store, tmp_path):
    """A new-user trial: after one daughter was deleted, the tree said "divided", the export
    counted the division and the review list did not. One rule now: two daughters or more."""
    from napari_devosam.tracking.records import CONTINUED, DIVIDED, division_count
    from napari_devosam.tracking.review_events import review_events

    assert _shape(store)[1][4] == DIVIDED
    assert export_store_tracks(tmp_path / "a", store, (0,), 0)["divisions"] == 1
    delete_track(store, 3, 3)
    assert _shape(store)[1][3:] == ((2,), CONTINUED)
    assert export_store_tracks(tmp_path / "b", store, (0,), 0)["divisions"] == 0
    assert not [e for e in review_events(store) if e.kind == "division"]
    assert division_count({2: 1, 3: 1, 7: 5}) == 1


def test_a_swap_that_leaves_a_gap_says_so(store):
    """A new-user trial swapped from a frame before track B began: A silently got a gap."""
    late = split_track(store, 4, 5)  # frames 5..7
    assert swap_tracks(store, 5, late, 2) == ["track 5 now skips frames 2..4"]
    assert swap_tracks(store, 5, late, 2) == []  # swapped back: no gap left
    assert swap_tracks(store, 4, 5, 1) == []  # both go on from frame 1: no gap


def test_one_skipped_frame_is_said_in_the_singular(store):
    late = split_track(store, 4, 5)  # frames 5..7
    assert swap_tracks(store, 5, late, 4) == ["track 5 now skips frame 4"]  # 0..3, then 5..7


def test_track_colours_stay_when_other_tracks_change(store):
    """New-user trial 19: deleting one track recoloured 49 of 93 others."""
    from napari_devosam.tracking.lineage_colors import track_colors

    before = track_colors(lineage(store))
    delete_track(store, 4, 0)
    split_track(store, 5, 2)
    after = track_colors(lineage(store))
    assert all(after[t] == before[t] for t in (1, 2, 3, 5))
    assert len({before[t] for t in (1, 4, 5)}) == 3  # roots still differ


def test_undoing_a_track_deletion_says_it_was_a_track_edit(store):
    """New-user trial 19: it said "a change over several planes (a run, an import or
    Segment all)"."""
    from napari_devosam.annotation.history import step_text

    delete_track(store, 4, 3)
    assert step_text("undo", store.undo()).startswith("Undo: a track edit (")


def test_a_one_frame_track_cannot_be_split(store):
    one = split_track(store, 5, 3)  # frames 3..3
    with pytest.raises(LineageError, match=f"track {one} has one frame \\(3\\): nothing to split"):
        split_track(store, one, 3)


def test_deleting_a_whole_mother_frees_her_daughters(store):
    delete_track(store, 1, 0)
    rows = _shape(store)
    assert 1 not in rows and rows[2][2] is None and rows[3][2] is None
    store.undo()
    assert _shape(store)[2][2] == 1


@pytest.mark.parametrize("edit, message", [
    (lambda s: set_parent(s, 4, 1), "would have 3 daughters"),
    (lambda s: set_parent(s, 1, 2), "descend from itself"),
    (lambda s: set_parent(s, 5, 4), "not after its mother 4 ends"),
    (lambda s: set_parent(s, 9, 1), "there is no track 9"),
    (lambda s: set_parent(s, 4, 4), "its own mother"),
    (lambda s: join_tracks(s, 4, 5), "overlap in time"),
    (lambda s: join_tracks(s, 1, 2), "divides into 3"),
    (lambda s: split_track(s, 4, 0), "split it on a frame after 0"),
    (lambda s: split_track(s, 4, 8), "frame 8 is not in the movie (frames 0..7)"),
    (lambda s: split_track(s, 5, 3 + 1), "up to 3"),
    (lambda s: delete_track(s, 3, -1), "frame -1 is not in the movie"),
    (lambda s: swap_tracks(s, 4, 5, -2), "frame -2 is not in the movie"),
    (lambda s: swap_tracks(s, 1, 5, 6), "neither track"),
    (lambda s: swap_tracks(s, 2, 4, 0), "not after its mother 1 ends"),
    (lambda s: delete_track(s, 5, 4), "nothing to delete"),
])
def test_refusals_are_one_line_and_change_nothing(store, edit, message):
    before = _state(store)
    manifest = (store.folder / "store.json").read_text()
    with pytest.raises(LineageError) as info:
        edit(store)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert _state(store) == before
    assert (store.folder / "store.json").read_text() == manifest
    store.undo()  # the last step is still the fixture's batch
    assert not store.objects


def test_records_change_touches_only_track_fields(store):
    oid = object_of(store, 4, 3)[1]
    with pytest.raises(ValueError, match="not a track field"):
        store.change_tracks({oid: {"area": 1}})
    assert not store.change_tracks({oid: {"track": 4}})  # no change, no undo step
    assert store.change_tracks({oid: {"ended": "lost"}})
    assert store.objects[oid]["ended"] == "lost"
    store.undo()
    assert "ended" not in store.objects[oid]


def test_track_objects_index_matches_object_of(store):
    from napari_devosam.tracking.lineage import track_objects

    index = track_objects(store)
    assert set(index) == set(SPEC)
    for t, (first, last, _) in SPEC.items():
        assert sorted(index[t]) == list(range(first, last + 1))
        assert all(object_of(store, t, f) == index[t][f] for f in index[t])
