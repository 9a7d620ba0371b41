"""Automatic results as proposals in ``AnnotatorState``: shown, removed by position,
committed only through ``take_commit``, never covering committed pixels."""

import numpy as np
import pytest

from napari_devosam.annotation.state import AnnotatorState, PlanePrompts
from napari_devosam.automatic import AutoResult
from napari_devosam.automatic.proposals import remove_proposal_at, show_proposals


def result():
    labels = np.zeros((40, 60), np.int32)
    labels[2:18, 2:20] = 1
    labels[20:38, 30:58] = 2
    prompts = [{"point": [10.0, 10.0], "box": [2.0, 2.0, 17.0, 19.0], "source": "membrane"},
               {"point": [29.0, 44.0], "box": None, "source": "neighbour"}]
    return AutoResult(labels, {1: 0.9, 2: 0.8}, prompts, "seeded", "membrane")


def test_show_remove_commit():
    state = AnnotatorState((3, 40, 60))
    assert show_proposals(state, (1,), result()) == 2
    assert set(np.unique(state.current_labels[1])) == {0, 1, 2}
    assert not state.current_labels[0].any() and not state.is_pending((1,))
    assert not remove_proposal_at(state, (1,), 0, 0)  # background
    assert remove_proposal_at(state, (1,), 10, 10)
    assert set(np.unique(state.current_labels[1])) == {0, 1}
    masks, prompts = state.take_commit((1,))
    assert masks.shape == (1, 40, 60) and masks[0, 25, 40]
    assert prompts[0]["points"] == [[29.0, 44.0]] and prompts[0]["automatic"] == "seeded"
    assert prompts[0]["score"] == pytest.approx(0.8) and not state.current_labels.any()
    # unchanged (empty) prompts do not recompute the proposals away
    show_proposals(state, (2,), result())
    assert not state.update_prompts((2,), PlanePrompts())
    assert state.current_labels[2].any()


def test_committed_pixels_are_never_proposed_and_current_objects_are_kept():
    state = AnnotatorState((40, 60))
    committed = np.zeros((40, 60), np.uint32)
    committed[2:18, 2:20] = 7  # object 1 is already committed
    committed[20:30, 30:58] = 8  # half of object 2 too
    assert show_proposals(state, (), result(), committed) == 1
    assert not (state.current_labels.astype(bool) & (committed > 0)).any()
    with pytest.raises(ValueError, match="commit or clear"):
        show_proposals(state, (), result())
    assert remove_proposal_at(state, (), 35, 40) and not state.current_labels.any()
