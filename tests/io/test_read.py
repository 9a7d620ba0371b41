"""read_image / read_first_plane: one reader for every format, folders and missing files named,
microscopy formats through bioio; batch and image series find the same files."""

import sys
import types
import warnings

import numpy as np
import pytest
import tifffile

from napari_devosam.engine.stacks import first_plane
from napari_devosam.io.find import find_inputs
from napari_devosam.io.read import (
    IMAGE_SUFFIXES,
    FolderGivenError,
    read_first_plane,
    read_image,
)


@pytest.fixture
def bioio(monkeypatch):
    """A stand-in for the optional bioio: arrays per file name, the axis orders asked for."""
    arrays, asked = {}, []

    class BioImage:
        def __init__(self, path):
            if str(path) not in arrays:
                raise OSError("unsupported file")
            self.tzyx = arrays[str(path)]
            self.dims = types.SimpleNamespace(C=module.channels.get(str(path), 1))

        def get_image_data(self, order, C=0, **index):  # noqa: N803 - bioio's names
            asked.append((order, C, index))
            return self.tzyx if order == "TZYX" else self.tzyx[index["T"], index["Z"]]

    module = types.ModuleType("bioio")
    module.BioImage = BioImage
    module.channels = {}  # file name -> channel count (default 1)
    monkeypatch.setitem(sys.modules, "bioio", module)
    return arrays, asked


def test_a_folder_and_a_missing_file_are_named(tmp_path):
    with pytest.raises(FolderGivenError, match=f"{tmp_path} is a folder, not an image file"):
        read_image(tmp_path)
    with pytest.raises(ValueError, match="is a folder"):  # a ValueError for every caller
        read_first_plane(tmp_path)
    with pytest.raises(FileNotFoundError, match="no image file at .*nope.czi"):
        read_first_plane(tmp_path / "nope.czi")


@pytest.mark.parametrize("suffix", [".czi", ".nd2", ".lif", ".CZI"])
def test_microscopy_files_become_t_z_y_x_of_their_first_channel(tmp_path, bioio, suffix):
    arrays, asked = bioio
    tzyx = np.random.default_rng(0).integers(0, 4000, (3, 1, 20, 30), dtype=np.uint16)
    path = tmp_path / f"movie{suffix}"
    path.write_bytes(b"")
    arrays[str(path)] = tzyx
    np.testing.assert_array_equal(read_image(path), tzyx[:, 0])  # Z of length 1 dropped
    np.testing.assert_array_equal(read_first_plane(path), tzyx[0, 0])
    assert asked == [("TZYX", 0, {}), ("YX", 0, {"T": 0, "Z": 0})]  # the plane read alone
    arrays[str(path)] = tzyx[:1]
    assert read_image(path).shape == (20, 30)


def test_an_unreadable_microscopy_file_is_a_value_error(tmp_path, bioio):
    (tmp_path / "x.nd2").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"cannot read .*x.nd2 with bioio: unsupported"):
        read_image(tmp_path / "x.nd2")


def test_batch_and_series_find_the_same_files(tmp_path):
    from napari_devosam.series.image_series import ImageSeries

    names = sorted(f"img{i}{suffix}" for i, suffix in enumerate(IMAGE_SUFFIXES))
    for name in names:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    found = find_inputs([str(tmp_path)], tmp_path.parent / "out")
    assert [p.name for p in found] == names
    assert ImageSeries.open([str(tmp_path)]).paths == found


def test_plain_formats_read_as_stored(tmp_path):
    from skimage import io as skio

    plane = np.random.default_rng(1).integers(0, 255, (20, 30), dtype=np.uint8)
    skio.imsave(tmp_path / "p.png", plane, check_contrast=False)
    tifffile.imwrite(tmp_path / "p.ome.tif", plane)
    for name in ("p.png", "p.ome.tif"):
        np.testing.assert_array_equal(read_image(tmp_path / name), plane, err_msg=name)
        np.testing.assert_array_equal(read_first_plane(tmp_path / name),
                                      first_plane(read_image(tmp_path / name)))


def test_a_tiff_channel_axis_keeps_the_first_channel_and_says_so(tmp_path):
    """ImageJ hyperstacks name their axes: a channel axis is not taken for Z planes."""
    import tifffile

    data = np.arange(4 * 2 * 24 * 30, dtype=np.uint16).reshape(4, 2, 24, 30)
    path = tmp_path / "tcyx.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"})
    with pytest.warns(UserWarning, match="2 channels .*TCYX.*using the first"):
        out = read_image(path)
    assert out.shape == (4, 24, 30)
    np.testing.assert_array_equal(out, data[:, 0])
    single = tmp_path / "tzcyx.tif"
    tifffile.imwrite(single, data[:, None, :1], imagej=True, metadata={"axes": "TZCYX"})
    assert read_image(single).shape == (4, 24, 30)


def test_a_stack_saved_channels_last_is_refused_with_what_to_do(tmp_path):
    import tifffile

    path = tmp_path / "yxc.tif"
    tifffile.imwrite(path, np.zeros((40, 50, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"last axis \(5\) is too short.*moveaxis"):
        read_image(path)
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((40, 50, 3), dtype=np.uint8), photometric="rgb")
    assert read_image(rgb).shape == (40, 50, 3)
    gray = tmp_path / "zyx3.tif"  # grey values with 3 last: not colour, the file says
    tifffile.imwrite(gray, np.zeros((4, 40, 50, 3), dtype=np.uint8), photometric="minisblack")
    for read in (read_image, read_first_plane):
        with pytest.raises(ValueError, match=r"last axis \(3\) is too short"):
            read(gray)
    colour = tmp_path / "zyxs.tif"
    tifffile.imwrite(colour, np.zeros((4, 40, 50, 3), dtype=np.uint8), photometric="rgb")
    assert read_image(colour).shape == (4, 40, 50, 3)
    assert read_first_plane(colour).shape == (40, 50, 3)


def test_a_microscopy_file_with_several_channels_says_which_is_used(tmp_path, bioio):
    arrays, _ = bioio
    path = tmp_path / "two.czi"
    path.write_bytes(b"")
    arrays[str(path)] = np.zeros((2, 1, 20, 30), dtype=np.uint16)
    sys.modules["bioio"].channels[str(path)] = 3
    with pytest.warns(UserWarning, match="3 channels: using the first"):
        read_image(path)


def test_two_channels_in_the_last_axis_are_named_unless_the_second_is_alpha(tmp_path):
    gray = np.arange(30 * 40, dtype=np.uint8).reshape(30, 40)
    alpha = tmp_path / "alpha.tif"
    tifffile.imwrite(alpha, np.stack([gray, np.full_like(gray, 255)], -1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_image(alpha), gray)
    two = tmp_path / "two.tif"
    tifffile.imwrite(two, np.stack([gray, gray[::-1]], -1))
    with pytest.warns(UserWarning, match="2 channels per pixel and the second is not"):
        np.testing.assert_array_equal(read_image(two), gray)
