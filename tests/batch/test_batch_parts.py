"""The batch's parts without a cluster: inputs, label files (atomic), manifest."""

import errno

import numpy as np
import pytest
import tifffile

from napari_devosam.batch.inputs import find_inputs, read_any, stems
from napari_devosam.batch.manifest import Manifest
from napari_devosam.batch.outputs import label_path, read_labels, write_labels


def test_inputs_files_folders_globs(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/x.tif", "a/y.png", "b.tiff"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "a/notes.txt").write_text("")
    got = find_inputs([str(tmp_path / "a"), str(tmp_path / "*.tiff"), str(tmp_path / "a/x.tif")],
                      tmp_path / "out")
    assert [p.name for p in got] == ["x.tif", "y.png", "b.tiff"]
    assert stems([tmp_path / "a/x.tif", tmp_path / "x.ome.tif"]) == {
        tmp_path / "a/x.tif": "x", tmp_path / "x.ome.tif": "x-2"}


@pytest.mark.parametrize("case, message", [
    ("glob", "no image file matches"), ("empty", "no image in folder"),
    ("inside", "is inside the input folder"), ("missing", "no such file")])
def test_inputs_errors(tmp_path, case, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data/x.tif").write_bytes(b"")
    inputs, out = {"glob": ([str(tmp_path / "*.nd2")], tmp_path / "o"),
                   "empty": ([str(tmp_path / "empty")], tmp_path / "o"),
                   "inside": ([str(tmp_path / "data")], tmp_path / "data/out"),
                   "missing": ([str(tmp_path / "nope.tif")], tmp_path / "o")}[case]
    with pytest.raises(ValueError, match=message):
        find_inputs(inputs, out)


def test_microscopy_formats_name_the_extra(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_bioio(name, *args, **kwargs):
        if name == "bioio":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_bioio)
    (tmp_path / "x.czi").write_bytes(b"")
    with pytest.raises(RuntimeError, match=r"napari-devosam\[bioio\]"):
        read_any(tmp_path / "x.czi")


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
