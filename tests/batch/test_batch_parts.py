"""The batch's parts without a cluster: output names, label files (atomic), manifest."""

import errno

import numpy as np
import pytest
import tifffile

from napari_devosam.batch.manifest import Manifest
from napari_devosam.batch.outputs import label_path, read_labels, stems, write_labels


def test_output_names_are_unique_stems(tmp_path):
    assert stems([tmp_path / "a/x.tif", tmp_path / "x.ome.tif"]) == {
        tmp_path / "a/x.tif": "x", tmp_path / "x.ome.tif": "x-2"}


@pytest.mark.parametrize("fmt", ["tif", "zarr"])
def test_labels_round_trip_and_dtype(tmp_path, fmt):
    if fmt == "zarr":
        pytest.importorskip("ome_zarr")
    small = np.arange(2 * 8 * 8).reshape(2, 8, 8)
    big = small + 70000
    for labels, dtype in ((small, np.uint16), (big, np.uint32)):
        path = write_labels(label_path(tmp_path, "s", fmt), labels, small.astype(np.uint8))
        got = read_labels(path)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, labels)
    assert [p.name for p in tmp_path.iterdir()] == [label_path(tmp_path, "s", fmt).name]


def test_full_disk_leaves_no_partial_file(tmp_path, monkeypatch):
    def full(path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", full)
    with pytest.raises(OSError, match="No space"):
        write_labels(tmp_path / "s_labels.tif", np.ones((4, 4), int))
    assert list(tmp_path.iterdir()) == []


def test_manifest_resume_rules(tmp_path):
    image = tmp_path / "x.tif"
    tifffile.imwrite(image, np.zeros((4, 4), np.uint8))
    out = tmp_path / "out"
    m = Manifest(out, {"model": "a"})
    m.entry(image, "x")
    m.set(image, "auto", "done", outputs=["x_labels.tif"], planes=1)
    m.save()
    assert not Manifest(out, {"model": "a"}).is_done(image, "auto", out)  # output missing
    (out / "x_labels.tif").write_bytes(b"")
    assert Manifest(out, {"model": "a"}).is_done(image, "auto", out)
    assert not Manifest(out, {"model": "b"}).is_done(image, "auto", out)  # other settings
    again = Manifest(out, {"model": "a"})
    tifffile.imwrite(image, np.ones((4, 4), np.uint8))  # the input changed
    again.entry(image, "x")
    assert not again.is_done(image, "auto", out)
