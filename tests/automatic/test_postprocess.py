"""Post-processing of automatic labels: membrane-stained objects reach the membrane midline."""

import numpy as np


def test_membrane_objects_grow_to_the_midline_between_them_only():
    from napari_devosam.automatic.postprocess import grow_to_membranes

    smooth = np.zeros((40, 60))
    smooth[:, 29:31] = 10.0  # a bright membrane between two cells, columns 29-30
    embryo = np.zeros((40, 60), bool)
    embryo[2:38, 2:58] = True
    labels = np.zeros((40, 60), np.int32)
    labels[5:35, 5:26] = 1  # SAM stops 3 px short of the membrane on both sides
    labels[5:35, 34:55] = 2
    grown = grow_to_membranes(labels, smooth, embryo, grow_px=6)
    assert (grown[labels > 0] == labels[labels > 0]).all()  # nothing labelled changes
    row = grown[20]
    assert (row[26:29] == 1).all() and (row[31:34] == 2).all()  # the gap is shared
    assert set(row[29:31]) <= {1, 2}
    assert not grown[2:5].any() and not grown[:, 2:5].any()  # the outer rim stays free
    assert grow_to_membranes(labels, smooth, embryo, grow_px=0) is labels


def test_growing_on_the_labels_box_equals_growing_on_the_whole_plane():
    """grow_to_membranes works on the labels' box: the same result as the whole plane's
    computation (``_grow`` on the full arrays), for cells anywhere, borders included."""
    from scipy import ndimage
    from skimage.segmentation import find_boundaries

    from napari_devosam.automatic.postprocess import _grow, grow_to_membranes
    from napari_devosam.automatic.seeds import analyse_plane
    from napari_devosam.synthetic.phantoms import make_embryo

    for seed, keep in ((3, None), (4, (1, 2)), (5, (7,))):
        image, truth = make_embryo((160, 200), 9, seed=seed)
        a = analyse_plane(image)
        # SAM-like outlines: every cell 3 px short of its membranes
        edges = ndimage.binary_dilation(find_boundaries(truth), iterations=3)
        inner = np.where(edges, 0, truth)
        if keep is not None:  # a few cells only: a small box
            inner = np.where(np.isin(inner, keep), inner, 0)
        inner[:3, :5] = 9  # a labelled patch on the plane's corner
        full = _grow(inner, a.smooth, a.embryo, 6)
        out = grow_to_membranes(inner, a.smooth, a.embryo, 6)
        assert out.dtype == inner.dtype
        np.testing.assert_array_equal(out, full)
        if keep is None:  # cells grow between neighbours only
            assert (out != inner).any()


def _disc_proposal(centre, radius, score, shape=(80, 120), also=None):
    """A Proposal of a disc ``centre`` (row, col), ``radius`` px (and of the disc ``also``
    = (centre, radius)), cropped to its extent."""
    from napari_devosam.automatic.decoding import Proposal

    rr, cc = np.indices(shape)
    full = (rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius ** 2
    if also is not None:
        full |= (rr - also[0][0]) ** 2 + (cc - also[0][1]) ** 2 <= also[1] ** 2
    rows, cols = np.flatnonzero(full.any(1)), np.flatnonzero(full.any(0))
    box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    mask = full[box[0]:box[2], box[1]:box[3]]
    logits = np.where(mask, 1.0, -1.0).astype(np.float32)
    return Proposal(box, mask, logits, score, 0.9, {"point": list(centre), "box": None,
                                                    "source": "nuclei"})


def test_nuclei_keep_the_whole_nucleus_over_its_better_scored_fragments():
    """Two texture seeds inside one nucleus gave fragments with a higher predicted IoU than
    the whole nucleus: the best-score order keeps all three (the fragments cut the nucleus
    apart); the nested rule keeps the whole nucleus alone."""
    from napari_devosam.automatic.postprocess import dedupe, dedupe_nested

    whole = _disc_proposal((40, 40), 20, 0.70)
    parts = [_disc_proposal((40, 30), 8, 0.90), _disc_proposal((40, 50), 8, 0.85)]
    # a fragment lying 0.6-0.8 inside the nucleus: the score order keeps it
    rim = _disc_proposal((40, 57), 7, 0.95)
    props = [whole, *parts, rim]
    assert len(dedupe(props)) > 1
    kept = dedupe_nested(props)
    assert kept == [whole]


def test_nuclei_drop_a_mask_that_merges_two_separate_nuclei():
    """A mask holding two barely overlapping nuclei that have proposals of their own is a
    merge of touching nuclei: the two stay, the merge goes, whatever the scores."""
    from napari_devosam.automatic.postprocess import dedupe_nested

    left, right = _disc_proposal((40, 40), 12, 0.6), _disc_proposal((40, 66), 12, 0.6)
    merged = _disc_proposal((40, 40), 13, 0.95, also=((40, 66), 13))
    kept = dedupe_nested([merged, left, right])
    assert merged not in kept and left in kept and right in kept
    # a lone nucleus with one fragment is no merge: the nucleus stays
    assert dedupe_nested([merged, left]) == [merged]


def test_nuclei_drop_a_mask_many_nuclei_large_that_holds_separate_ones():
    """A mask over several nuclei (more than MERGE_SIZE typical nuclei) swallows those it
    holds when it is kept; with the nuclei's diameter it is seen as a merge, even when the
    nuclei with masks of their own cover less than MERGE_COVER of it."""
    from napari_devosam.automatic.postprocess import MERGE_COVER, MERGE_SIZE, dedupe_nested

    big = _disc_proposal((40, 60), 30, 0.9)
    small = [_disc_proposal((40, 45), 9, 0.6), _disc_proposal((40, 75), 9, 0.6)]
    assert sum(q.area for q in small) < MERGE_COVER * big.area
    assert dedupe_nested([big, *small]) == [big]  # no size known: a nucleus and fragments
    diameter = 20.0  # typical area ~314 px: the big mask is > MERGE_SIZE of it
    assert big.area > MERGE_SIZE * np.pi * (diameter / 2) ** 2
    kept = dedupe_nested([big, *small], diameter=diameter)
    assert big not in kept and all(q in kept for q in small)
