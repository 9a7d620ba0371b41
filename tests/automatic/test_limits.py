"""Planes too large for automatic segmentation are refused before any compute."""

import pytest

from napari_devosam.automatic.limits import MAX_PIXELS, check_plane_size


def test_a_plane_up_to_the_limit_passes():
    check_plane_size((4096, 4096))
    check_plane_size((MAX_PIXELS, 1))


def test_a_larger_plane_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match=r"6,624 x 9,936 pixels \(65\.8 million\).*"
                                         r"bin it 2 x 2 or crop it first"):
        check_plane_size((6624, 9936))
