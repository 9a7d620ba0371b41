"""Tracked objects of membrane-stained planes grow to the membranes' midline."""

import numpy as np
from scipy import ndimage

from napari_devosam.automatic.seeds import analyse_plane
from napari_devosam.synthetic.phantoms import make_embryo
from napari_devosam.tracking.membrane_growth import grow_objects
from napari_devosam.tracking.records import Crop


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def _interiors(truth, ids):
    return [[Crop.from_mask(ndimage.binary_erosion(truth == i, iterations=3))] for i in ids]


def test_interiors_grow_to_whole_cells_and_leave_locked_pixels():
    image, truth = make_embryo((160, 200), 8, seed=10_000_301, kind="membrane")
    analysis = analyse_plane(image)
    assert analysis.stain == "membrane"
    ids = [int(i) for i in np.unique(truth)[1:]]
    found = _interiors(truth, ids)
    before = [_iou(f[0].full(), truth == i) for f, i in zip(found, ids, strict=True)]
    locked = truth == ids[-1]  # a committed object: never taken
    grow_objects(found[:-1], {}, analysis, 6, locked)
    after = [_iou(f[0].full(), truth == i) for f, i in zip(found[:-1], ids[:-1], strict=True)]
    assert np.mean(after) > np.mean(before[:-1]) + 0.1, (before, after)
    assert not any((f[0].full() & locked).any() for f in found[:-1])
    masks = [f[0].full() for f in found[:-1]]
    assert sum(m.astype(int) for m in masks).max() == 1  # each pixel one object


def test_cells_found_again_grow_and_nuclei_stay_as_they_are():
    image, truth = make_embryo((160, 200), 8, seed=10_000_302, kind="membrane")
    analysis = analyse_plane(image)
    ids = [int(i) for i in np.unique(truth)[1:]]
    found = _interiors(truth, ids[:2])
    again = {1: (found[1][0], 0.9, None)}
    grow_objects(found, again, analysis, 6, None)
    assert again[1][0].area > found[1][0].area  # the cell found again grew (its parts not)
    assert again[1][1] == 0.9
    nuclei, ntruth = make_embryo((160, 200), 8, seed=10_000_303, kind="nuclei")
    nfound = _interiors(ntruth, [1])
    area = nfound[0][0].area
    grow_objects(nfound, {}, analyse_plane(nuclei), 6, None)
    assert nfound[0][0].area == area
    grow_objects(nfound, {}, analysis, 0, None)  # 0: SAM's outlines as they are
    assert nfound[0][0].area == area
