"""Divisions the mother's mask hides: seeds inside one mask, sisters of a lost track, and the
bundled model finding the divisions of a held-out lineage movie."""

import numpy as np

from napari_devosam.automatic.seeds import Seeds
from napari_devosam.synthetic.lineage import make_lineage_timelapse
from napari_devosam.tracking import PropagationParams, Seed, propagate
from napari_devosam.tracking.divisions.stain_seeds import sisters_near, split_by_seeds
from napari_devosam.tracking.records import Crop
from napari_devosam.utils.progress import drain

PARAMS = PropagationParams()


def _rect(shape, r0, c0, r1, c1):
    mask = np.zeros(shape, bool)
    mask[r0:r1, c0:c1] = True
    return Crop.from_mask(mask)


def test_two_seeds_in_one_mask_cut_it_between_them():
    crop = _rect((60, 80), 10, 10, 30, 50)  # 20 x 40
    halves = split_by_seeds(crop, np.array([[20, 15], [20, 44], [55, 75]]), PARAMS)
    assert [h.area for h in halves] == [400, 400]  # cut at the bisector, column 29.5
    assert halves[0].full()[10:30, 10:30].all() and halves[1].full()[10:30, 30:50].all()
    assert split_by_seeds(crop, np.array([[20, 15], [55, 75]]), PARAMS) is None  # one inside
    assert split_by_seeds(crop, np.array([[20, 10], [20, 12]]), PARAMS) is None  # a sliver
    tiny = PropagationParams(division_min_area=500)
    assert split_by_seeds(crop, np.array([[20, 15], [20, 45]]), tiny) is None


def test_a_lost_track_gets_the_two_free_seeds_nearest_to_it():
    shape = (80, 80)
    previous = _rect(shape, 30, 30, 42, 42)
    seeds = Seeds(np.array([[36.0, 24.0], [36.0, 48.0], [36.0, 75.0], [70.0, 10.0]]),
                  np.array([[28, 16, 44, 32], [28, 40, 44, 56], [28, 68, 44, 79],
                            [62, 2, 78, 18]], float), ["membrane"] * 4)
    free = np.ones(shape, bool)
    sisters = sisters_near(seeds, previous, free, PARAMS)  # reach: 2 x 6.8 px
    assert [s.centroid() for s in sisters] == [(36.0, 24.0), (36.0, 48.0)]
    free[36, 48] = False  # another object holds that seed
    assert sisters_near(seeds, previous, free, PARAMS) is None  # the next one is too far


def _divisions_found(sam, seed, params=None):
    """(divisions matching the truth at IoU > 0.5, divisions detected, true divisions)."""
    stack, labels, parents = make_lineage_timelapse(12, (160, 160), 4, seed=seed,
                                                    steady_brightness=False)
    seeds = [Seed(int(t), (0,), labels[0] == t) for t in np.unique(labels[0])[1:]]
    result = drain(propagate(sam, stack, seeds, params=params))
    objects = {(o.track, o.plane): o.crop.full() for o in result.objects}
    truth = {}
    for child, mother in parents.items():
        born = int(np.argmax((labels == child).any(axis=(1, 2))))
        truth.setdefault((mother, born), []).append(labels[born] == child)
    found = 0
    for _, plane, a, b in result.divisions:
        masks = [objects[(a, plane)], objects[(b, plane)]]
        for (_, born), kids in truth.items():
            if born == plane[0] and all(
                    max((m & k).sum() / (m | k).sum() for m in masks) > 0.5 for k in kids):
                found += 1
    return found, len(result.divisions), len(truth)


def test_embryo_tiny_finds_the_divisions_of_held_out_movies():
    from napari_devosam import load_model

    sam = load_model("embryo_tiny", device="cpu", progress=False)
    counts = np.array([_divisions_found(sam, seed) for seed in (10_000_005, 10_000_006)])
    found, detected, true = counts.sum(axis=0)
    assert detected <= true + 2  # no flood of false divisions
    # measured: 18 of 18 (15 before free sisters and flanking daughters; 1 without any of
    # the division steps)
    assert found >= 0.6 * true, counts


def test_a_lost_cell_is_found_again_from_its_seed():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from tracking_oracle import OracleDecoder

    stack, labels, _ = make_lineage_timelapse(3, (128, 128), 4, seed=1)
    oracle = OracleDecoder(labels)
    answer = oracle.decode

    def forgetful(boxes, points, mask_inputs):  # SAM "loses" track 1 on plane 1
        logits, low, iou = answer(boxes, points, mask_inputs)
        if oracle.embedding.plane == (1,) and len(oracle.calls) == 1:
            logits[0] = -10.0
        return logits, low, iou

    oracle.decode = forgetful
    seeds = [Seed(int(t), (0,), labels[0] == t) for t in np.unique(labels[0])[1:]]
    run = propagate(None, stack, seeds, decoder=oracle, embedding_for=oracle.embedding_for,
                    bounds=(0, 1), params=PropagationParams(detect_divisions=False))
    result = drain(run)
    mine = [o for o in result.objects if o.track == seeds[0].track]
    assert len(mine) == 1 and 1 not in result.ended
    truth = labels[1] == seeds[0].track
    assert (mine[0].crop.full() & truth).sum() / (mine[0].crop.full() | truth).sum() > 0.9
    assert any(r.reason == "found again" and r.track == 1 for r in result.review)
    off = PropagationParams(detect_divisions=False, redetect_lost=False, max_missed_planes=0)
    oracle.calls.clear()
    result = drain(propagate(None, stack, seeds, decoder=oracle,
                             embedding_for=oracle.embedding_for, bounds=(0, 1), params=off))
    assert 1 in result.ended  # without it, the track ends there
