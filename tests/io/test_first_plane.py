"""read_first_plane: the first plane alone, equal to the first plane of the whole file, with
the same errors."""

from __future__ import annotations

import numpy as np
import tifffile

from napari_devosam.engine.stacks import first_plane


def test_the_first_plane_is_read_alone_and_equals_the_whole_files(tmp_path):
    import tracemalloc

    from napari_devosam.io.read import read_first_plane, read_image

    rng = np.random.default_rng(3)
    cases = {
        "movie.tif": (rng.integers(0, 4000, (60, 256, 256), dtype=np.uint16), {}),
        "tz.tif": (rng.integers(0, 4000, (2, 3, 40, 50), dtype=np.uint16), {}),
        "rgb.tif": (rng.integers(0, 255, (40, 50, 3), dtype=np.uint8), {"photometric": "rgb"}),
        "alpha.tif": (rng.integers(0, 255, (4, 40, 50, 2), dtype=np.uint8),
                      {"photometric": "minisblack", "extrasamples": ["unassalpha"]}),
        "plane.png": (rng.integers(0, 255, (40, 50), dtype=np.uint8), None),
    }
    for name, (data, kw) in cases.items():
        if kw is None:
            from skimage import io as skio

            skio.imsave(tmp_path / name, data, check_contrast=False)
        else:
            tifffile.imwrite(tmp_path / name, data, **kw)
        np.testing.assert_array_equal(read_first_plane(tmp_path / name),
                                      first_plane(read_image(tmp_path / name)), err_msg=name)
    tracemalloc.start()
    read_first_plane(tmp_path / "movie.tif")  # 7.9 MB on disk, one page is 131 kB
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2_000_000


def test_a_damaged_tiff_gets_the_same_error_as_a_whole_read(tmp_path):
    import pytest

    from napari_devosam.io.read import read_first_plane, read_image

    for name, content in (("header.tif", b"II*\x00garbage"), ("text.tif", b"not a tiff")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError) as whole:
            read_image(tmp_path / name)
        with pytest.raises(ValueError) as first:
            read_first_plane(tmp_path / name)
        assert str(first.value) == str(whole.value) and "cannot read" in str(first.value)
