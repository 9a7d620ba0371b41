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
