"""A track whose mask leaves the embryo for the background ends ("left the embryo"), as a
person would end it (the trial's membrane tracks ran on empty background for 20 frames)."""

import sys
from pathlib import Path

import numpy as np

from napari_devosam.tracking import PropagationParams, Seed, propagate
from napari_devosam.utils.progress import drain

sys.path.insert(0, str(Path(__file__).parent))
from tracking_oracle import OracleDecoder  # noqa: E402


def _drifting_cell(n=16, shape=(160, 240)):
    """An embryo on the left; track 1's "cell" drifts from inside it to the background."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    embryo = ((yy - 80) / 70) ** 2 + ((xx - 80) / 70) ** 2 < 1
    labels = np.zeros((n, *shape), np.int32)
    stack = np.zeros((n, *shape))
    for t in range(n):
        c = 100 + 7 * t
        labels[t][np.hypot(yy - 80, xx - c) < 12] = 1
        labels[t][np.hypot(yy - 50, xx - 60) < 12] = 2  # a cell that stays
        stack[t] = 100 + 900 * embryo + rng.normal(0, 20, shape)
    return stack.astype(np.float32), labels, embryo


def test_a_track_that_leaves_the_embryo_ends_there():
    stack, labels, embryo = _drifting_cell()
    oracle = OracleDecoder(labels)
    seeds = [Seed(t, (0,), labels[0] == t) for t in (1, 2)]
    params = PropagationParams(detect_divisions=False, max_missed_planes=0, new_tracks=False,
                               min_iou_prev=0.0, division_min_iou_prev=0.0)
    result = drain(propagate(None, stack, seeds, decoder=oracle,
                             embedding_for=oracle.embedding_for, params=params))
    plane, reason = result.ended[1]
    assert reason == "left the embryo"
    for o in result.objects:  # every object kept is mostly inside
        if o.track == 1:
            assert (o.crop.full() & embryo).sum() >= 0.5 * o.crop.area
    assert 2 not in result.ended  # the cell that stays is followed to the end
    off = PropagationParams(detect_divisions=False, max_missed_planes=0, new_tracks=False,
                            min_iou_prev=0.0, division_min_iou_prev=0.0,
                            min_embryo_fraction=0.0)
    result = drain(propagate(None, stack, seeds, decoder=oracle,
                             embedding_for=oracle.embedding_for, params=off))
    assert result.ended.get(1, (None, ""))[1] != "left the embryo"
