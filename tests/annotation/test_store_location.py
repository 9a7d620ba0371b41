"""The store-location rule and the binding of a store to its image's pixels."""

import json

import numpy as np
import pytest
import tifffile

from napari_devosam.annotation.store import AnnotationStore, StoreMismatchError
from napari_devosam.annotation.store_location import image_hash, locate_store
from napari_devosam.cli import main


def _disk(h=40, w=50, center=(20, 25), r=8):
    rr, cc = np.mgrid[:h, :w]
    return (rr - center[0]) ** 2 + (cc - center[1]) ** 2 <= r**2


def _stack(seed=0, shape=(3, 40, 50)):
    return np.random.default_rng(seed).integers(0, 4000, size=shape).astype(np.uint16)


class CountingArray:
    """A lazy array: records the largest block read through indexing."""

    def __init__(self, data):
        self._data, self.shape, self.dtype, self.largest = data, data.shape, data.dtype, 0

    def __getitem__(self, index):
        block = self._data[index]
        self.largest = max(self.largest, block.size)
        return block


def test_hash_reads_a_lazy_stack_block_by_block(monkeypatch):
    import napari_devosam.annotation.store_location as loc

    data = _stack(shape=(4, 40, 50))
    monkeypatch.setattr(loc, "_BLOCK", 40 * 50 * 2)  # one uint16 plane per block
    lazy = CountingArray(data)
    assert loc.image_hash(lazy) == loc.image_hash(data)
    assert lazy.largest == 40 * 50
    monkeypatch.undo()
    dask_array = pytest.importorskip("dask.array")
    assert image_hash(dask_array.from_array(data, chunks=(1, 40, 50))) == image_hash(data)


@pytest.mark.parametrize("shape", [(3, 40, 50), (4, 40, 50)])
def test_a_replaced_image_gets_its_own_store(tmp_path, shape):
    path = tmp_path / "embryo.tif"
    old = _stack(0)
    s = AnnotationStore.for_image(path, old)
    s.commit((0,), [_disk()])
    new = _stack(1, shape)  # another acquisition in the same file
    t = AnnotationStore.for_image(path, new)
    assert t.folder != s.folder and t.folder.parent == tmp_path
    assert t.location.note and "another image" in t.location.note
    assert not t.objects and t.labels.shape == shape
    assert t.commit((1,), [_disk()]) == [1]  # the annotator keeps working
    assert list(AnnotationStore.for_image(path, old).objects) == [1]  # old store untouched
    assert AnnotationStore.for_image(path, new).folder == t.folder  # found again


def test_opening_a_store_of_other_pixels_directly_raises(tmp_path):
    s = AnnotationStore(tmp_path / "s", (3, 40, 50), image_hash=image_hash(_stack(0)))
    s.commit((0,), [_disk()])
    with pytest.raises(StoreMismatchError):
        AnnotationStore(tmp_path / "s", (3, 40, 50), image_hash=image_hash(_stack(1)))


def test_a_read_only_store_next_to_the_image_is_used_and_reported(tmp_path, monkeypatch):
    import os

    path = tmp_path / "embryo.tif"
    data = _stack()
    AnnotationStore.for_image(path, data).commit((0,), [_disk()])
    folder = tmp_path / "embryo.tif.devosam"
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: (
        False if str(p) == str(folder) and mode & os.W_OK else real_access(p, mode, **k)))
    loc = locate_store(path, data)
    assert loc.folder == folder and loc.next_to_image and not loc.writable
    assert list(AnnotationStore.for_image(path, data).objects) == [1]


def test_gui_and_cli_agree_when_the_image_folder_is_unwritable(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVOSAM_STORE_DIR", str(tmp_path / "user"))
    path = tmp_path / "embryo.tif"
    data = _stack()
    tifffile.imwrite(path, data, photometric="minisblack")
    (tmp_path / "embryo.tif.devosam").write_text("in the way")  # cannot be made a folder
    s = AnnotationStore.for_image(path, data)  # what the annotator opens
    assert s.folder.parent == tmp_path / "user" and not s.location.next_to_image
    s.commit((0,), [_disk()])
    out = tmp_path / "bundle"
    assert main(["export", str(path), "--out", str(out), "--json"]) == 0
    assert json.loads((out / "manifest.json").read_text())


def test_cli_export_finds_a_project_dir_store(tmp_path):
    path = tmp_path / "embryo.tif"
    data = _stack()
    tifffile.imwrite(path, data, photometric="minisblack")
    AnnotationStore.for_image(path, data, tmp_path / "proj").commit((0,), [_disk()])
    out = tmp_path / "bundle"
    assert main(["export", str(path), "--out", str(out), "--project-dir",
                 str(tmp_path / "proj")]) == 0
