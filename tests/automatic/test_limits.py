"""Planes too large or too small for automatic segmentation are refused before any
compute."""

import pytest

from napari_devosam.automatic.limits import MAX_PIXELS, MIN_SIDE, check_plane_size


def test_a_plane_up_to_the_limit_passes():
    check_plane_size((4096, 4096))
    check_plane_size((MAX_PIXELS // MIN_SIDE, MIN_SIDE))


@pytest.mark.parametrize("shape", [(8, 8), (MIN_SIDE - 1, 500), (500, 1)])
def test_a_plane_too_small_to_hold_a_cell_is_refused(shape):
    import numpy as np

    from napari_devosam.automatic.core import segment_all

    with pytest.raises(ValueError, match=rf"{shape[0]} x {shape[1]} pixels: .* at least "
                                         rf"{MIN_SIDE} pixels a side"):
        check_plane_size(shape)
    with pytest.raises(ValueError, match="pixels a side"):
        segment_all(np.ones(shape, np.float32), object())


def test_a_larger_plane_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match=r"6,624 x 9,936 pixels \(65\.8 million\).*"
                                         r"bin it 2 x 2 or crop it first"):
        check_plane_size((6624, 9936))


def test_a_diameter_larger_than_the_plane_is_refused_with_the_plane_size():
    import numpy as np

    from napari_devosam.automatic.core import segment_all
    from napari_devosam.automatic.limits import check_diameter

    check_diameter(None, (10, 10))
    check_diameter(40.0, (276, 414))
    with pytest.raises(ValueError, match=r"5000 pixels is larger than the plane \(276 x 414"):
        check_diameter(5000, (276, 414))
    with pytest.raises(ValueError, match="must be > 0"):
        check_diameter(-3, (276, 414))
    with pytest.raises(ValueError, match="the diameter of 1 pixels is under 4: no cell"):
        check_diameter(1, (276, 414))  # trial 17: 36 "cells" on an 8-cell embryo
    check_diameter(4, (276, 414))
    with pytest.raises(ValueError, match="larger than the plane"):
        segment_all(np.zeros((40, 60), np.float32), object(), diameter=61)


def test_the_cli_says_so_in_one_line(tmp_path, capsys):
    import numpy as np
    import tifffile

    from napari_devosam.cli import main

    image = tmp_path / "plane.tif"
    tifffile.imwrite(image, np.zeros((60, 80), np.uint16))
    rc = main(["segment", str(image), "--auto", "--diameter", "5000",
               "--out", str(tmp_path / "out.tif")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1
    assert "--diameter of 5000 pixels is larger than the plane (60 x 80 pixels)" in err[0]
    assert not (tmp_path / "out.tif").exists()


def test_the_cli_refuses_a_tiny_plane_in_one_line(tmp_path, capsys):
    import numpy as np
    import tifffile

    from napari_devosam.cli import main

    image = tmp_path / "tiny.tif"
    tifffile.imwrite(image, np.zeros((12, 16), np.uint16))
    rc = main(["segment", str(image), "--auto", "--out", str(tmp_path / "out.tif")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "needs at least 20 pixels a side" in err[0]
    assert not (tmp_path / "out.tif").exists()
