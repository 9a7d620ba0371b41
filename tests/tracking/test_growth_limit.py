"""A mask that creeps over its neighbours a little at each step ends the track ("grew"),
where every single step passes the other checks (issue 22's nuclear movie: a seed of 3,700
px grew to 28,000 px in ten frames)."""

import sys
from pathlib import Path

import numpy as np

from napari_devosam.tracking import PropagationParams, Seed, propagate
from napari_devosam.utils.progress import drain

sys.path.insert(0, str(Path(__file__).parent))
from tracking_oracle import OracleDecoder  # noqa: E402


def _growing_disc(n=10, shape=(160, 160)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros((n, *shape), np.int32)
    for t in range(n):
        radius = 8 * 1.2 ** t  # +44% area a step: each step alone looks like the same cell
        labels[t][np.hypot(yy - 80, xx - 80) < radius] = 1
    return (labels * 1000).astype(np.uint16), labels


def _run(params):
    stack, labels = _growing_disc()
    oracle = OracleDecoder(labels)
    seeds = [Seed(1, (0,), labels[0] == 1)]
    return drain(propagate(None, stack, seeds, decoder=oracle,
                           embedding_for=oracle.embedding_for, params=params))


def test_a_creeping_mask_ends_the_track():
    result = _run(PropagationParams(detect_divisions=False, max_missed_planes=0))
    plane, reason = result.ended[1]
    assert reason.startswith("grew")
    last = max(o.plane[0] for o in result.objects if o.track == 1)
    areas = {o.plane[0]: o.crop.area for o in result.objects if o.track == 1}
    first = int((_growing_disc()[1][0] == 1).sum())
    assert areas[last] <= 3.0 * first < int((_growing_disc()[1][plane[0]] == 1).sum())


def test_no_limit_follows_it_to_the_end():
    result = _run(PropagationParams(detect_divisions=False, max_missed_planes=0, max_growth=0))
    assert 1 not in result.ended or result.ended[1][0] == (9,)
    assert max(o.plane[0] for o in result.objects if o.track == 1) == 9
