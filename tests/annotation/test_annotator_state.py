"""AnnotatorState: prompts per plane -> current objects, with a real (tiny, random) SAM."""

import numpy as np
import pytest

from napari_devosam.annotation.state import (
    AnnotatorState,
    PlanePrompts,
    plane_prompts_from_layer_data,
)
from napari_devosam.engine.predictor import Predictor
from napari_devosam.synthetic.phantoms import make_timelapse
from napari_devosam.testing import tiny_sam


@pytest.fixture(scope="module")
def stack():
    data, _ = make_timelapse(n_timepoints=3, shape=(96, 128), n_cells=4, seed=1)
    return data


@pytest.fixture(scope="module")
def predictor():
    return Predictor(tiny_sam())


def ready(state, predictor, stack, plane):
    predictor.set_image(stack[plane])
    return state.embedding_ready(plane)


def test_layer_data_is_split_by_plane():
    rect = lambda t, r0, c0, r1, c1: np.array(  # noqa: E731
        [[t, r0, c0], [t, r0, c1], [t, r1, c1], [t, r1, c0]], dtype=float)
    boxes = [rect(0, 1, 2, 10, 20), rect(2, 30, 5, 5, 40)]
    points = np.array([[0, 3, 4], [2, 7, 8], [2.2, 9, 9]])
    p0 = plane_prompts_from_layer_data(boxes, points, [1, 0, 1], (0,))
    p2 = plane_prompts_from_layer_data(boxes, points, [1, 0, 1], (2,))
    p1 = plane_prompts_from_layer_data(boxes, points, [1, 0, 1], (1,))
    np.testing.assert_array_equal(p0.boxes, [[1, 2, 10, 20]])
    np.testing.assert_array_equal(p0.points, [[3, 4]])
    np.testing.assert_array_equal(p2.boxes, [[5, 5, 30, 40]])  # corners normalised
    np.testing.assert_array_equal(p2.labels, [0, 1])
    assert p1.empty


def test_box_on_plane_k_only_changes_plane_k(stack, predictor):
    state = AnnotatorState(stack.shape, predictor)
    box = PlanePrompts(boxes=[[20, 30, 70, 90]])
    assert not state.update_prompts((1,), box)  # no embedding yet: waits
    assert state.is_pending((1,))
    assert ready(state, predictor, stack, (1,))
    assert not state.is_pending((1,))
    lab = state.current_labels
    assert lab[1].any()
    assert not lab[0].any() and not lab[2].any()
    r = state.result((1,))
    assert r.n_candidates == 3 and len(r.candidate_scores) == 3
    # cycling candidates shows each one in turn
    seen = [lab[1].copy()]
    for _ in range(3):
        assert state.next_candidate((1,))
        seen.append(lab[1].copy())
    np.testing.assert_array_equal(seen[0], seen[3])


def test_points_refine_with_previous_logits(stack, predictor):
    state = AnnotatorState(stack.shape, predictor)
    ready(state, predictor, stack, (0,))
    state.update_prompts((0,), PlanePrompts(points=[[48, 64]], labels=[1]))
    first = state.result((0,))
    assert not first.refined and first.n_candidates == 3
    state.update_prompts((0,), PlanePrompts(points=[[48, 64], [20, 20]], labels=[1, 0]))
    second = state.result((0,))
    assert second.refined
    m, _, _ = predictor.predict(points=[[48, 64], [20, 20]], point_labels=[1, 0],
                                mask_input=first.logits[first.candidate_index][None])
    np.testing.assert_array_equal(second.masks[0], m[0])
    # removing a point starts afresh (no stale logits)
    state.update_prompts((0,), PlanePrompts(points=[[20, 20]], labels=[1]))
    assert not state.result((0,)).refined


def test_several_boxes_give_several_objects(stack, predictor):
    state = AnnotatorState(stack.shape, predictor)
    ready(state, predictor, stack, (2,))
    boxes = [[5, 5, 40, 50], [50, 60, 90, 120], [10, 70, 45, 125]]
    state.update_prompts((2,), PlanePrompts(boxes=boxes, points=[[60, 80]], labels=[1]))
    r = state.result((2,))
    assert len(r.masks) == 3
    assert r.prompts[1]["points"] == [[60.0, 80.0]] and r.prompts[0]["points"] == []
    ref, _ = predictor.predict_boxes(np.array(boxes)[[0, 2]])
    inside = np.zeros(ref.shape[1:], dtype=bool)
    inside[3:43, 3:53] = True  # box 0 grown by BOX_MARGIN
    np.testing.assert_array_equal(r.masks[0], ref[0] & inside)
    assert not r.masks[0][~inside].any()
    assert set(np.unique(state.current_labels[2])) <= {0, 1, 2, 3}
    masks, prompts = state.take_commit((2,))
    assert len(masks) == len(prompts) >= 1 and prompts[0]["plane"] == [2]
    assert not state.current_labels[2].any() and (2,) not in state.prompts


def test_unusable_prompts_are_dropped_and_the_others_answered(stack, predictor):
    state = AnnotatorState(stack.shape, predictor)
    ready(state, predictor, stack, (0,))
    assert not state.update_prompts((0,), PlanePrompts(points=[[500, 500]], labels=[1]))
    assert not state.current_labels[0].any() and len(state.dropped) == 1
    assert "point dropped" in state.dropped[0] and not state.is_pending((0,))
    prompts = PlanePrompts(boxes=[[10, 10, 40, 50], [5, 5, 5, 30], [200, 200, 300, 300]],
                           points=[[20, 20], [-50, 3]], labels=[1, 0])
    assert state.update_prompts((0,), prompts)
    assert len(state.dropped) == 3 and "zero area" in state.dropped[0]
    result = state.result((0,))
    assert len(result.masks) == 1 and state.current_labels[0].any()
    assert result.prompts[0]["points"] == [[20.0, 20.0]]
    with pytest.raises(ValueError):
        state.check_plane((3,))
