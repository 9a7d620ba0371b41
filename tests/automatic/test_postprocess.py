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
