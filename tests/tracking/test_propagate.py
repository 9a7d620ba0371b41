"""Propagation mechanics: with an oracle decoder (ground-truth answers) and with tiny_sam."""

import numpy as np
import pytest
from tracking_oracle import OracleDecoder

from napari_devosam.engine.embeddings import EmbeddingCache
from napari_devosam.synthetic.lineage import make_lineage_timelapse
from napari_devosam.testing import tiny_sam
from napari_devosam.tracking import PropagationParams, Seed, propagate
from napari_devosam.tracking.divisions.split import split_mask
from napari_devosam.tracking.prompts import crop_iou, interior_point
from napari_devosam.tracking.records import Crop
from napari_devosam.tracking.result_files import result_labels
from napari_devosam.tracking.route import plane_legs
from napari_devosam.utils.progress import drain


@pytest.fixture(scope="module")
def movie():
    return make_lineage_timelapse(12, (128, 128), 3, seed=1,
                                  steady_brightness=False)


def _seeds(labels, plane=(0,)):
    frame = labels[plane]
    return [Seed(int(t), plane, frame == t) for t in np.unique(frame)[1:]]


def _run(labels, seeds, **kw):
    oracle = OracleDecoder(labels)
    gen = propagate(None, labels, seeds, decoder=oracle, embedding_for=oracle.embedding_for, **kw)
    progress = []
    result = drain(gen, progress.append)
    return result, progress, oracle


def test_oracle_follows_cells_and_finds_divisions(movie):
    _, labels, parents = movie
    seeds = _seeds(labels)
    result, progress, _ = _run(labels, seeds)
    assert [p.done for p in progress] == list(range(0, 12))  # 0: the setup is over
    assert progress[0].plane == (0,) and progress[0].active == len(seeds)
    lab, par = result_labels(seeds, result, 12, 0, labels.shape[-2:])
    # until the first division every cell keeps its id and its exact mask
    assert np.array_equal(lab[:4], labels[:4])
    first = min(p for _, (p,), *_ in result.divisions)
    assert first == min(f for f in range(12) if set(np.unique(labels[f])) - {0, 1, 2, 3})
    mothers = {m for m, *_ in result.divisions}
    assert {parents[d] for d in parents if parents[d] <= 3} <= mothers | {1, 2, 3}
    assert all(r.reason == "division" for r in result.review if r.reason == "division")
    assert {d for *_, a, b in result.divisions for d in (a, b)} <= set(range(-100, 0))
    assert set(par.values()) <= set(range(1, 100))


def test_decodes_all_objects_of_a_plane_in_one_batch(movie):
    _, labels, _ = movie
    _, _, oracle = _run(labels, _seeds(labels), bounds=(0, 3))
    assert oracle.calls == [((1,), 3), ((2,), 3), ((3,), 3)]


def test_backward_and_both_directions(movie):
    _, labels, _ = movie
    result, progress, _ = _run(labels, _seeds(labels, (3,)), direction="both")
    planes = [p.plane for p in progress if p.done]  # done 0: the setup, on the seeds' plane
    assert progress[0].done == 0 and progress[0].plane == (3,)
    assert planes[:8] == [(i,) for i in range(4, 12)] and planes[8:] == [(2,), (1,), (0,)]
    back = [o for o in result.objects if o.plane[0] < 3]
    assert back and not any(o.division for o in back)  # no divisions backwards
    assert plane_legs(10, 4, "backward", (2, 8)) == [[3, 2]]
    with pytest.raises(ValueError, match="direction"):
        plane_legs(10, 4, "sideways")


def test_track_ends_are_reported(movie):
    _, labels, _ = movie
    gone = labels.copy()
    gone[5:][gone[5:] == 3] = 0  # cell 3 disappears at frame 5
    result, _, _ = _run(gone, _seeds(gone), params=PropagationParams(detect_divisions=False))
    assert result.ended[3] == ((5,), "vanished")
    assert any(r.track == 3 and r.plane == (4,) and r.reason.startswith("track ended")
               for r in result.review)
    assert not result.divisions


def test_locked_pixels_and_existing_objects_are_respected(movie):
    _, labels, _ = movie
    locked = {(1,): labels[1] == 2}
    existing = {(2,): {1: Crop.from_mask(labels[2] == 1)}}
    result, _, _ = _run(labels, _seeds(labels), bounds=(0, 2),
                        locked_for=lambda p: locked.get(p),
                        existing_for=lambda p: existing.get(p, {}))
    made = {(o.track, o.plane) for o in result.objects}
    assert (1, (2,)) not in made and (1, (1,)) in made
    assert not any((o.mask & locked[(1,)]).any() for o in result.objects if o.plane == (1,))


def test_cancel_at_any_yield(movie):
    _, labels, _ = movie
    oracle = OracleDecoder(labels)
    gen = propagate(None, labels, _seeds(labels), decoder=oracle,
                    embedding_for=oracle.embedding_for)
    assert next(gen).done == 0  # the setup is over: nothing decoded yet
    assert not oracle.calls
    next(gen)
    gen.close()  # no exception, nothing left running
    assert len(oracle.calls) == 1


@pytest.mark.parametrize("bad, match", [
    (lambda s, lab: [], "no objects"),
    (lambda s, lab: [Seed(1, (0,), np.zeros((5, 5), bool))], "does not fit"),
    (lambda s, lab: [Seed(1, (0,), np.zeros_like(lab[0], bool))], "empty"),
    (lambda s, lab: [s[0], Seed(2, (1,), s[1].mask)], "one plane"),
])
def test_bad_seeds(movie, bad, match):
    _, labels, _ = movie
    with pytest.raises(ValueError, match=match):
        _run(labels, bad(_seeds(labels), labels))


def test_bad_stacks():
    seeds = [Seed(1, (), np.ones((8, 8), bool))]
    with pytest.raises(ValueError, match="no T or Z"):
        drain(propagate(None, np.zeros((8, 8)), seeds))
    with pytest.raises(ValueError, match="length 1"):
        drain(propagate(None, np.zeros((1, 8, 8)), [Seed(1, (0,), np.ones((8, 8), bool))]))


def test_with_tiny_sam_runs_end_to_end(movie, one_torch_thread):
    stack, labels, _ = movie
    sam = tiny_sam()
    params = PropagationParams(min_iou_prev=0, min_pred_iou=0, min_area_fraction=0,
                               min_area=1, min_inside_fraction=0)
    result = drain(propagate(sam, stack, _seeds(labels), bounds=(0, 3), params=params,
                             cache=EmbeddingCache()))
    assert result.objects
    for o in result.objects:
        assert o.plane[0] in (1, 2, 3) and o.mask.shape == (128, 128)
        assert 0 <= o.confidence <= 1 or np.isnan(o.confidence)
    for plane in {o.plane for o in result.objects}:  # mutual exclusion
        total = sum(o.mask.astype(int) for o in result.objects if o.plane == plane)
        assert total.max() <= 1


def test_helpers():
    mask = np.zeros((20, 30), bool)
    mask[2:12, 3:9] = True
    mask[2:5, 9:25] = True  # a thin arm: the interior maximum stays in the body
    r, c = interior_point(Crop.from_mask(mask))
    assert 4 <= r <= 9 and 4 <= c <= 7
    a = Crop.from_mask(mask)
    assert crop_iou(a, a) == 1.0
    two = np.zeros((40, 40), bool)
    two[5:15, 5:15] = True
    two[5:15, 20:30] = True
    p = PropagationParams(division_min_area=10)
    assert len(split_mask(Crop.from_mask(two), p)) == 2
    assert len(split_mask(Crop.from_mask(two), p, detect=False)) == 1
    assert len(split_mask(Crop.from_mask(two), PropagationParams(detect_divisions=False))) == 1
    with pytest.raises(ValueError):
        PropagationParams(min_iou_prev=2)
    with pytest.raises(ValueError, match="unknown"):
        PropagationParams.from_dict({"nope": 1})


def test_a_blank_plane_is_skipped_and_tracks_go_on_after_it():
    from napari_devosam.tracking.propagate import BLANK

    stack, labels, _ = make_lineage_timelapse(4, (96, 96), 3, seed=1)
    stack = stack.astype(np.float32)
    stack[2] = np.nan  # a frame the microscope did not record
    oracle = OracleDecoder(labels)
    seeds = [Seed(int(t), (0,), labels[0] == t) for t in np.unique(labels[0])[1:]]
    params = PropagationParams(detect_divisions=False)
    result = drain(propagate(None, stack, seeds, decoder=oracle,
                             embedding_for=oracle.embedding_for, params=params))
    planes = {o.plane for o in result.objects}
    assert (2,) not in planes and (3,) in planes and (1,) in planes
    assert [r.plane for r in result.review if r.reason == BLANK] == [(2,)]
    assert all(p != (2,) for p, _ in oracle.calls)  # SAM was not asked about it
    stack[2] = 7.0  # a constant frame is blank too
    oracle.calls.clear()
    result = drain(propagate(None, stack, seeds, decoder=oracle,
                             embedding_for=oracle.embedding_for, params=params))
    assert (2,) not in {o.plane for o in result.objects}
