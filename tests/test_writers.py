import numpy as np
import pytest
import tifffile

from napari_devosam.writers import write_labels


def test_writes_uint16_tiff_exactly(tmp_path):
    labels = np.zeros((2, 30, 40), np.int32)
    labels[0, 3:9, 4:10] = 7
    labels[1, 10:20, 5:6] = 65535
    paths = write_labels(str(tmp_path / "objects.tif"), labels, {"name": "objects"})
    assert paths == [str(tmp_path / "objects.tif")]
    back = tifffile.imread(paths[0])
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, labels)
    assert [p.name for p in tmp_path.iterdir()] == ["objects.tif"]  # no temp files left


def test_large_ids_become_uint32_and_suffix_is_added(tmp_path):
    labels = np.zeros((8, 8), np.int64)
    labels[1, 1] = 70000
    (path,) = write_labels(str(tmp_path / "big"), labels, {})
    assert path.endswith("big.tif")
    back = tifffile.imread(path)
    assert back.dtype == np.uint32 and back[1, 1] == 70000


@pytest.mark.parametrize("data,name", [(np.full((4, 4), -1), "x.tif"),
                                        (np.zeros((4, 4), float), "x.tif"),
                                        (np.zeros((4, 4), int), "x.png")])
def test_rejects_what_it_cannot_write(tmp_path, data, name):
    with pytest.raises(ValueError):
        write_labels(str(tmp_path / name), data, {})
    assert not list(tmp_path.iterdir())


def test_writer_is_in_the_manifest():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-devosam")
    (writer,) = [w for w in manifest.contributions.writers
                 if w.command == "napari-devosam.write_labels"]
    assert [t.value if hasattr(t, "value") else t for t in writer.layer_types] == ["labels"]
