"""find_inputs (files, folders, globs) and the optional microscopy readers."""

import pytest

from napari_devosam.io.find import find_inputs
from napari_devosam.io.read import read_image


def test_inputs_files_folders_globs(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/x.tif", "a/y.png", "b.tiff"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "a/notes.txt").write_text("")
    got = find_inputs([str(tmp_path / "a"), str(tmp_path / "*.tiff"), str(tmp_path / "a/x.tif")],
                      tmp_path / "out")
    assert [p.name for p in got] == ["x.tif", "y.png", "b.tiff"]


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
        read_image(tmp_path / "x.czi")
