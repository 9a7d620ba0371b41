"""Brush, eraser and fill corrections saved by the store: on disk, undoable, exported."""

import numpy as np
import pytest

from napari_devosam.annotation.store import AnnotationStore


def _disk(h=40, w=50, center=(20, 25), r=8):
    rr, cc = np.mgrid[:h, :w]
    return (rr - center[0]) ** 2 + (cc - center[1]) ** 2 <= r**2


def _flat(mask):
    return np.flatnonzero(mask.ravel())


def test_painting_erasing_and_new_objects_are_saved_and_undoable(tmp_path):
    folder = tmp_path / "s"
    s = AnnotationStore(folder, (3, 40, 50))
    [a] = s.commit((1,), [_disk()])
    grow = _disk(center=(20, 35), r=6) & ~_disk()
    s.apply_edit((1,), _flat(grow), a)  # brush with the object's id
    area = int(np.count_nonzero(s.labels[1] == a))
    assert s.objects[a]["area"] == area and AnnotationStore(folder).objects[a]["area"] == area
    new = s.apply_edit((2,), _flat(_disk(r=4)), 7)  # a new label on another plane
    assert new == [7] and s.objects[7]["source"] == "manual" and s.next_id == 8
    assert s.apply_edit((2,), _flat(_disk(center=(5, 5), r=2)), a) == [8]  # a's id: other plane
    reopened = AnnotationStore(folder)
    np.testing.assert_array_equal(reopened.labels, s.labels)
    s.apply_edit((1,), _flat(s.labels[1] == a), 0)  # erase all of a
    assert a not in s.objects and not AnnotationStore(folder).labels[1].any()
    assert s.undo()["kind"] == "edit"
    assert a in s.objects and np.count_nonzero(AnnotationStore(folder).labels[1] == a) == area
    s.undo(), s.undo(), s.undo()  # the two new objects and the growth
    np.testing.assert_array_equal(AnnotationStore(folder).labels[1], _disk() * a)
    s.redo()
    assert s.objects[a]["area"] == area


def test_an_edit_already_painted_into_labels_and_a_failed_write(tmp_path, monkeypatch):
    s = AnnotationStore(tmp_path / "s", (2, 40, 50))
    pixels = _flat(_disk())
    s.labels[0].ravel()[pixels] = 5  # a viewer painted the live array
    assert s.apply_edit((0,), pixels, 5, previous=0) == [5]
    assert AnnotationStore(tmp_path / "s").objects[5]["area"] == pixels.size
    import napari_devosam.annotation.store_files as store_files

    def fail(*a, **k):
        raise OSError("read-only file system")

    monkeypatch.setattr(store_files, "write_text", fail)
    with pytest.raises(OSError):
        s.apply_edit((0,), pixels, 0)
    assert s.objects[5]["area"] == pixels.size and (s.labels[0].ravel()[pixels] == 5).all()
