"""A nuclear track whose mask lies on unstained background ends ("no stain under the mask"):
on the real DevoLearn nuclear movie, SAM kept drawing masks on the dark plane for several
frames after a nucleus faded or left the focal plane."""

import sys
from pathlib import Path

import numpy as np

from napari_devosam.tracking import PropagationParams, Seed, propagate
from napari_devosam.tracking.plane_checks import stained_fraction
from napari_devosam.tracking.records import Crop
from napari_devosam.utils.progress import drain

sys.path.insert(0, str(Path(__file__).parent))
from tracking_oracle import OracleDecoder  # noqa: E402

CENTRES = [(40, 40), (40, 120), (110, 60), (110, 150), (70, 200)]


def _fading_nucleus(n=8, shape=(160, 240)):
    """Five bright nuclei on a dark plane; nucleus 1 fades out at plane 3, while the
    (oracle) decoder keeps returning its mask: a ghost on the background."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros((n, *shape), np.int32)
    stack = np.zeros((n, *shape), np.float32)
    for t in range(n):
        stack[t] = 100 + rng.normal(0, 5, shape)
        for k, (r, c) in enumerate(CENTRES, start=1):
            disc = np.hypot(yy - r, xx - c) < 13
            labels[t][disc] = k
            stack[t][disc] += 400 if k != 1 or t < 3 else 0
    return stack, labels


def _run(params):
    stack, labels = _fading_nucleus()
    oracle = OracleDecoder(labels)
    seeds = [Seed(k, (0,), labels[0] == k) for k in range(1, len(CENTRES) + 1)]
    return drain(propagate(None, stack, seeds, decoder=oracle,
                           embedding_for=oracle.embedding_for, params=params))


def test_a_nucleus_mask_on_background_ends_its_track():
    quiet = dict(detect_divisions=False, new_tracks=False, max_missed_planes=0)
    result = _run(PropagationParams(**quiet))
    plane, reason = result.ended[1]
    assert plane == (3,) and reason.startswith("no stain under the mask"), result.ended
    assert set(result.ended) == {1}  # the stained nuclei go on to the end
    assert not any(o.track == 1 and o.plane[0] >= 3 for o in result.objects)
    off = _run(PropagationParams(min_stained_fraction=0.0, **quiet))
    assert 1 not in off.ended  # without the check the ghost goes on


def test_a_nucleus_dim_from_the_start_goes_on():
    """A nucleus that never held stain is no ghost (CTC HeLa's dim nuclei, seeded from the
    reference): 5 % of the others' brightness on every plane."""
    stack, labels = _fading_nucleus()
    yy, xx = np.mgrid[: stack.shape[1], : stack.shape[2]]
    disc = np.hypot(yy - CENTRES[0][0], xx - CENTRES[0][1]) < 13
    stack[:, disc] = 100 + 20 + np.random.default_rng(2).normal(0, 5, (len(stack), disc.sum()))
    oracle = OracleDecoder(labels)
    seeds = [Seed(k, (0,), labels[0] == k) for k in range(1, len(CENTRES) + 1)]
    quiet = dict(detect_divisions=False, new_tracks=False, max_missed_planes=0)
    result = drain(propagate(None, stack, seeds, decoder=oracle,
                             embedding_for=oracle.embedding_for,
                             params=PropagationParams(**quiet)))
    assert result.ended == {}, result.ended


def test_stained_fraction_counts_pixels_halfway_to_the_stain():
    from napari_devosam.automatic.seeds import PlaneAnalysis

    smooth = np.zeros((20, 20), np.float32)
    smooth[:, 10:] = 10.0
    a = PlaneAnalysis(smooth, t_low=2.0, t_high=8.0)  # halfway: 5
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True  # half on each side
    assert stained_fraction([Crop.from_mask(mask)], a) == 0.5
    assert stained_fraction([], a) == 1.0


def test_a_daughter_on_background_is_no_division():
    """Two daughters of a stained nucleus, one of them on the dark plane (a new-user trial
    on the DevoLearn nuclear movie): the stained one goes on alone; daughters of a stained
    mother that both lose the stain end the track."""
    from types import SimpleNamespace

    from napari_devosam.automatic.seeds import PlaneAnalysis
    from napari_devosam.tracking.plane_checks import stain_lost

    smooth = np.zeros((40, 80), np.float32)
    smooth[10:30, 5:25] = 10.0  # one nucleus; the rest is background
    now = PlaneAnalysis(smooth, t_low=2.0, t_high=8.0)
    on, off = np.zeros((40, 80), bool), np.zeros((40, 80), bool)
    on[12:28, 7:23] = True
    off[12:28, 50:66] = True
    p = PropagationParams()
    mother = SimpleNamespace(stained=1.0, crop=Crop.from_mask(on))
    why, parts = stain_lost(mother, [Crop.from_mask(on), Crop.from_mask(off)], now, None, p,
                            matched=False)
    assert why is None and len(parts) == 1 and parts[0].area == on.sum()
    why, parts = stain_lost(SimpleNamespace(stained=1.0, crop=None), [Crop.from_mask(off)],
                            now, None, p, matched=False)
    assert why.startswith("no stain under the mask (0%, was 100%)")
    dim = SimpleNamespace(stained=0.1, crop=None)  # dim from the start: goes on
    assert stain_lost(dim, [Crop.from_mask(off)], now, None, p, matched=False)[0] is None
