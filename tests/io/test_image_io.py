import numpy as np
import pytest
import tifffile

from napari_devosam.io.read import read_image
from napari_devosam.io.write import write_tiff


@pytest.mark.parametrize("shape", [(3, 40, 50), (4, 40, 50), (2, 3, 40, 50), (40, 50)])
def test_stacks_with_3_or_4_planes_are_written_as_grayscale_pages(tmp_path, shape):
    data = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape)
    path = write_tiff(tmp_path / "stack.tif", data)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.MINISBLACK
    np.testing.assert_array_equal(read_image(path), data)
    assert [p.name for p in tmp_path.iterdir()] == ["stack.tif"]  # no temporary file left


def test_uint8_rgb_is_written_as_colour(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    path = write_tiff(tmp_path / "rgb.tif", rgb)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.RGB
    np.testing.assert_array_equal(read_image(path), rgb)


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tif"):
        read_image(tmp_path / "missing.tif")
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff")
    with pytest.raises(ValueError, match="bad.tif"):
        read_image(bad)
