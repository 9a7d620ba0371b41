"""Tracks in the annotation store: batch commits, one undo step, redo downstream, cancel."""

import json

import numpy as np
import pytest
from tracking_oracle import OracleDecoder

from napari_devosam.annotation.store import AnnotationStore
from napari_devosam.synthetic.lineage import make_lineage_timelapse
from napari_devosam.tracking.store_tracks import (
    apply_plan,
    propagate_in_store,
    store_track_labels,
    track_table,
    tracks_layer_data,
)
from napari_devosam.utils.progress import drain


@pytest.fixture
def setup(tmp_path):
    stack, labels, parents = make_lineage_timelapse(8, (128, 128), 3, seed=1)
    store = AnnotationStore(tmp_path / "s.devosam", stack.shape)
    store.commit((0,), [labels[0] == t for t in (1, 2, 3)])
    return stack, labels, parents, store


def _plan(store, labels, plane=(0,), **kw):
    oracle = OracleDecoder(labels)
    return drain(propagate_in_store(None, labels, store, plane, decoder=oracle,
                                    embedding_for=oracle.embedding_for, **kw))


def test_one_run_is_one_undo_step_and_persists_tracks(setup):
    _, labels, parents, store = setup
    before = store.labels.copy()
    ids = apply_plan(store, _plan(store, labels))
    assert all(ids)
    table = track_table(store.objects)
    assert {1, 2, 3} <= set(table)
    assert all(len(table[t]["planes"]) >= 4 for t in (1, 2, 3))
    daughters = [t for t, e in table.items() if e["parent"] is not None]
    assert daughters and all(table[t]["parent"] in table for t in daughters)
    reloaded = AnnotationStore(store.folder)
    assert track_table(reloaded.objects) == table
    assert np.array_equal(reloaded.labels, store.labels)
    track_labels, lineage = store_track_labels(reloaded, (0,), 0)
    assert np.array_equal(track_labels[:4] > 0, labels[:4] > 0)
    assert set(lineage) == set(daughters)
    data, graph = tracks_layer_data(reloaded, (0,), 0)
    assert data.shape[1] == 4 and set(graph) == set(daughters)
    store.undo()
    assert np.array_equal(store.labels, before)
    store.redo()
    assert track_table(store.objects) == table


def test_cancel_leaves_the_store_as_it_was(setup):
    _, labels, _, store = setup
    manifest = (store.folder / "store.json").read_text()
    oracle = OracleDecoder(labels)
    gen = propagate_in_store(None, labels, store, (0,), decoder=oracle,
                             embedding_for=oracle.embedding_for)
    next(gen)
    next(gen)
    gen.close()
    assert (store.folder / "store.json").read_text() == manifest
    assert not store.labels[1:].any() and not store.can_redo


def test_never_overwrites_other_objects_and_redo_replaces_only_the_track(setup):
    _, labels, _, store = setup
    # a user object on plane 2 that overlaps cell 2
    store.commit((2,), [labels[2] == 2])
    user_id = max(store.objects)
    apply_plan(store, _plan(store, labels, bounds=(0, 3)))
    objects = store.objects
    assert user_id in objects and np.array_equal(store.labels[2] == user_id, labels[2] == 2)
    table = track_table(objects)
    assert (2,) not in table[2]["planes"]  # the user's object kept its pixels: track 2 ended
    other = {t: dict(e["planes"]) for t, e in table.items() if t != 3}
    # "propagate from here" for track 3 from plane 1: only track 3 is recomputed downstream
    seed = table[3]["planes"][(1,)]
    old = {p: o for p, o in table[3]["planes"].items() if p[0] > 1}
    assert old
    n_undo = store.history.undo_count
    apply_plan(store, _plan(store, labels, plane=(1,), object_ids={seed}, redo=True,
                            bounds=(0, 3)))
    after = track_table(store.objects)
    assert {t: e["planes"] for t, e in after.items() if t != 3} == other
    assert after[3]["planes"][(1,)] == seed
    new = {p: o for p, o in after[3]["planes"].items() if p[0] > 1}
    assert set(new) == set(old) and not set(new.values()) & set(old.values())
    assert store.history.undo_count == n_undo + 1
    assert user_id in store.objects


def test_old_stores_load_and_give_one_plane_tracks(setup):
    _, _, _, store = setup
    manifest = json.loads((store.folder / "store.json").read_text())
    assert all("track" not in o for o in manifest["objects"].values())
    table = track_table(AnnotationStore(store.folder).objects)
    assert {t: e["planes"] for t, e in table.items()} == {1: {(0,): 1}, 2: {(0,): 2},
                                                          3: {(0,): 3}}


def test_apply_batch_validation(setup):
    _, labels, _, store = setup
    with pytest.raises(ValueError, match="unknown"):
        store.apply_batch([999], [])
    before = store.objects
    with pytest.raises(ValueError):
        store.apply_batch([1], [((9,), labels[0] == 1, {})])  # bad plane: nothing changes
    assert store.objects == before
    assert store.apply_batch([], []) == []


def test_seed_plane_without_objects(setup):
    _, labels, _, store = setup
    with pytest.raises(ValueError, match="no committed objects"):
        _plan(store, labels, plane=(5,))


def test_no_sliver_under_the_min_area_is_committed_beside_kept_objects(setup):
    """New-user trial 20 propagated onto planes whose cells were already committed: the
    pixels left to new tracks' masks beside them (1-18 px) were committed as objects under a
    min area of 20. Now such an object is not committed (id 0); a larger one is."""
    from napari_devosam.tracking.records import Crop, PropagationResult, TrackedObject
    from napari_devosam.tracking.store_tracks import StorePlan

    _, labels, _, store = setup
    cell = labels[2] == 2
    cols = np.flatnonzero(cell.any(axis=0))
    kept = cell.copy()
    kept[:, cols[-2:]] = False  # an object committed before leaves the last two columns
    store.commit((2,), [kept])
    sliver = int((cell & ~kept).sum())
    assert 0 < sliver < 40
    new = [TrackedObject(-1, (2,), Crop.from_mask(cell), 0.9, 0.9, start=True),  # a sliver left
           TrackedObject(-2, (2,), Crop.from_mask(labels[2] == 3), 0.9, 0.9, start=True)]
    plan = StorePlan(PropagationResult(objects=new, started=[(-1, (2,)), (-2, (2,))]),
                     min_area=sliver + 1)
    ids = apply_plan(store, plan)
    assert ids[0] == 0 and ids[1] and store.objects[ids[1]]["area"] == (labels[2] == 3).sum()
    plan.min_area = sliver  # at the min area: committed
    assert store.undo() and apply_plan(store, plan)[0]
