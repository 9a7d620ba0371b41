"""ImageSeries: order, moves, done marks kept in the series folder, resume, fallbacks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

import napari_devosam.series.image_series as series_mod
from napari_devosam.series.image_series import SERIES_FILE, ImageSeries


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "embryos"
    root.mkdir()
    for i, name in enumerate(["e02.tif", "e01.tif", "e10.tif"]):
        tifffile.imwrite(root / name, np.full((16, 20), i, np.uint16))
    (root / "notes.txt").write_text("not an image")
    return root


def test_a_folder_opens_its_images_in_name_order(folder):
    s = ImageSeries.open([folder])
    assert [p.name for p in s.paths] == ["e01.tif", "e02.tif", "e10.tif"]
    assert s.folder == folder.resolve() and s.note is None
    assert s.index == 0 and s.previous() is None and s.index == 0
    assert s.next().name == "e02.tif" and s.upcoming(5) == s.paths[2:]
    assert s.next().name == "e10.tif" and s.next() is None and s.index == 2
    assert s.upcoming(2) == []


def test_done_marks_and_position_are_kept_in_the_folder(folder):
    s = ImageSeries.open([folder])
    s.go(1)
    s.set_done(True)
    saved = json.loads((folder / SERIES_FILE).read_text())
    assert saved["current"] == "e02.tif" and list(saved["done"]) == ["e02.tif"]
    again = ImageSeries.open([folder])
    assert again.index == 1 and again.is_done() and again.done_count == 1
    again.set_done(False)
    assert not ImageSeries.open([folder]).is_done(1)


def test_next_undone_skips_done_images_and_wraps(folder):
    s = ImageSeries.open([folder])
    s.set_done(True, index=1)
    assert s.next_undone().name == "e10.tif"
    assert s.next_undone().name == "e01.tif"  # wrapped
    s.set_done(True, index=0)
    s.set_done(True, index=2)
    assert s.next_undone() is None and s.index == 0


def test_files_from_several_folders_share_their_common_folder(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        tifffile.imwrite(tmp_path / sub / "x.tif", np.zeros((8, 8), np.uint8))
    s = ImageSeries.open([tmp_path / "b" / "x.tif", tmp_path / "a" / "x.tif"])
    assert s.folder == tmp_path.resolve()
    s.set_done(True)
    assert json.loads((tmp_path / SERIES_FILE).read_text())["done"].keys() == {"b/x.tif"}


def test_an_unwritable_folder_keeps_the_marks_in_the_user_folder(folder, tmp_path,
                                                                  monkeypatch):
    import napari_devosam.annotation.store_location as loc

    monkeypatch.setenv("DEVOSAM_STORE_DIR", str(tmp_path / "user"))
    monkeypatch.setattr(loc, "is_writable", lambda f: False)
    s = ImageSeries.open([folder])
    assert "not writable" in s.note and s.marks_path.parent == tmp_path / "user" / "series"
    s.set_done(True)
    assert not (folder / SERIES_FILE).exists()
    assert ImageSeries.open([folder]).is_done(0)


def test_a_damaged_series_file_is_reported_and_kept_aside(folder):
    (folder / SERIES_FILE).write_text("{ not json")
    s = ImageSeries.open([folder])
    assert "could not be read" in s.note and "kept as" in s.note and s.done_count == 0
    [kept] = folder.glob(f"{SERIES_FILE}.damaged-*")
    assert kept.read_text() == "{ not json"  # the user's marks can still be recovered
    s.set_done(True)
    assert ImageSeries.open([folder]).is_done(0)


def test_a_named_file_that_is_no_image_is_refused(folder):
    with pytest.raises(ValueError, match="notes.txt is not an image file"):
        ImageSeries.open([folder / "e01.tif", folder / "notes.txt"])


@pytest.mark.parametrize("inputs,message", [
    (["{tmp}/nothing-here"], "no such file or folder"),
    (["{tmp}/empty"], "no image in folder"),
    (["{tmp}/*.png"], "no image file matches"),
])
def test_naming_no_image_is_one_clear_error(tmp_path, inputs, message):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=message):
        ImageSeries.open([i.format(tmp=tmp_path) for i in inputs])
    with pytest.raises(ValueError, match="at least one image"):
        ImageSeries([])


def test_writes_are_atomic(folder, monkeypatch):
    s = ImageSeries.open([folder])
    s.set_done(True)
    before = (folder / SERIES_FILE).read_text()

    def fail(path, text):
        raise OSError("disk full")

    monkeypatch.setattr(series_mod, "write_text", fail)
    with pytest.raises(OSError, match="disk full"):
        s.set_done(True, index=2)
    assert (folder / SERIES_FILE).read_text() == before
