import json
import os

import numpy as np
import pytest

from napari_devosam.annotation import store_files
from napari_devosam.annotation.store import AnnotationStore, StoreCorruptError, image_hash


def _disk(h=40, w=50, center=(20, 25), r=8):
    rr, cc = np.mgrid[:h, :w]
    return (rr - center[0]) ** 2 + (cc - center[1]) ** 2 <= r**2


@pytest.fixture
def stack():
    return np.arange(3 * 40 * 50, dtype=np.uint16).reshape(3, 40, 50)


def test_for_image_next_to_a_file(tmp_path, stack):
    path = tmp_path / "embryo.tif"
    path.write_bytes(b"x")
    s = AnnotationStore.for_image(path, stack)
    assert s.folder == tmp_path / "embryo.tif.devosam"
    assert s.labels.shape == stack.shape and s.labels.dtype == np.uint32
    assert not s.labels.any()
    assert not s.folder.exists()  # nothing written until the first commit
    s.commit((0,), [_disk()])
    assert (s.folder / "store.json").is_file()


def test_for_image_without_a_path_is_keyed_by_pixel_hash(tmp_path, stack):
    a = AnnotationStore.for_image(None, stack, project_dir=tmp_path)
    a.commit((1,), [_disk()], [{"box": [12, 17, 28, 33]}])
    b = AnnotationStore.for_image(None, stack.copy(), project_dir=tmp_path)
    assert b.folder == a.folder and list(b.objects) == [1]
    other = stack.copy()
    other[0, 0, 0] += 1
    assert AnnotationStore.for_image(None, other, project_dir=tmp_path).folder != a.folder
    assert image_hash(stack) != image_hash(stack.astype(np.int32))


def test_for_image_falls_back_to_the_user_store_when_unwritable(tmp_path, stack, monkeypatch):
    monkeypatch.setenv("DEVOSAM_STORE_DIR", str(tmp_path / "user"))
    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    s = AnnotationStore.for_image(tmp_path / "ro" / "x.tif", stack)
    assert s.folder.parent == tmp_path / "user"


def test_commit_assigns_ids_and_never_overwrites(tmp_path, stack):
    s = AnnotationStore(tmp_path / "s", stack.shape)
    a = _disk(center=(20, 20))
    b = _disk(center=(20, 30))  # overlaps a
    ids = s.commit((0,), [a, b], [{"box": [0, 0, 5, 5]}, {"points": np.array([[1, 2]])}])
    assert ids == [1, 2]
    plane = s.labels[0]
    assert np.all(plane[a] == 1)  # a kept its overlap
    assert np.all(plane[b & ~a] == 2)
    assert not s.labels[1:].any()
    assert s.objects[2]["prompts"] == {"points": [[1, 2]]}
    assert s.objects[1]["area"] == int(a.sum())
    # fully covered mask adds nothing
    assert s.commit((0,), [a], None) == [0]


def test_undo_redo_delete_and_ids_are_never_reused(tmp_path, stack):
    s = AnnotationStore(tmp_path / "s", stack.shape)
    m1, m2 = _disk(center=(10, 10), r=5), _disk(center=(30, 40), r=5)
    s.commit((2,), [m1])
    s.commit((2,), [m2])
    s.delete(1)
    assert set(s.objects) == {2} and not (s.labels[2] == 1).any()
    assert s.undo() == {"kind": "delete", "plane": (2,), "ids": [1]}
    assert np.all(s.labels[2][m1] == 1)
    s.undo()  # undo commit of 2
    assert set(s.objects) == {1} and not (s.labels == 2).any()
    s.redo()
    assert set(s.objects) == {1, 2} and np.all(s.labels[2][m2] == 2)
    s.undo()
    assert s.commit((2,), [m2]) == [3]  # 2 is never reused
    assert not s.can_redo
    with pytest.raises(ValueError, match="no object"):
        s.delete(2)
    assert s.undo()["ids"] == [3]
    assert s.undo()["ids"] == [1]
    assert s.undo() is None and not s.labels.any()


def test_every_change_is_on_disk_without_closing(tmp_path, stack):
    s = AnnotationStore(tmp_path / "s", stack.shape)
    s.commit((0,), [_disk()], [{"box": [12, 17, 28, 33]}])
    s.commit((1,), [_disk(r=4)])
    s.delete(1)
    s.undo()
    s.commit((2,), [_disk(r=3)])
    reopened = AnnotationStore(tmp_path / "s")  # what a new process would see
    np.testing.assert_array_equal(reopened.labels, s.labels)
    assert reopened.objects == s.objects
    assert reopened.next_id == 4
    assert reopened.planes() == [(0,), (1,), (2,)]
    assert reopened.object_at((0,), (20, 25)) == 1
    # only referenced plane files remain
    names = sorted(p.name for p in (tmp_path / "s").glob("plane*.npz"))
    assert len(names) == 3


def test_a_failed_write_keeps_the_previous_state(tmp_path, stack, monkeypatch):
    s = AnnotationStore(tmp_path / "s", stack.shape)
    s.commit((0,), [_disk(r=4)])
    before = s.labels.copy()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store_files, "write_text", boom)  # dies before store.json lands
    with pytest.raises(OSError):
        s.commit((1,), [_disk()])
    np.testing.assert_array_equal(s.labels, before)  # memory rolled back
    assert list(s.objects) == [1]
    monkeypatch.undo()
    reopened = AnnotationStore(tmp_path / "s")
    np.testing.assert_array_equal(reopened.labels, before)
    assert len(list((tmp_path / "s").glob("plane*.npz"))) == 1


def test_corrupt_store_is_moved_aside_not_overwritten(tmp_path, stack):
    s = AnnotationStore(tmp_path / "s", stack.shape)
    s.commit((0,), [_disk()])
    (tmp_path / "s" / "store.json").write_text('{"format": "devosam-annot')
    with pytest.raises(StoreCorruptError, match="moved to"):
        AnnotationStore(tmp_path / "s", stack.shape)
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("s.corrupt-")]
    assert len(kept) == 1 and (kept[0] / "store.json").read_text().startswith('{"format"')
    fresh = AnnotationStore(tmp_path / "s", stack.shape)
    assert not fresh.objects
    assert str(kept[0]) in fresh.set_aside_note()  # said when a command finds no objects
    from napari_devosam.tracking.store_tracks import export_store_tracks

    with pytest.raises(ValueError, match="unreadable store of this image was moved to"):
        export_store_tracks(tmp_path / "out", fresh, (), 0)


def test_shape_mismatch_and_bad_input(tmp_path, stack):
    s = AnnotationStore(tmp_path / "s", stack.shape)
    s.commit((0,), [_disk()])
    with pytest.raises(ValueError, match="shape"):
        AnnotationStore(tmp_path / "s", (4, 40, 50))
    with pytest.raises(ValueError, match="does not fit labels"):
        s.commit((5,), [_disk()])
    with pytest.raises(ValueError, match="mask shape"):
        s.commit((0,), [np.ones((3, 3), bool)])
    with pytest.raises(ValueError, match="prompt"):
        s.commit((0,), [_disk()], [{}, {}])
    with pytest.raises(FileNotFoundError):
        AnnotationStore(tmp_path / "nothing")


def test_2d_and_rgb_images(tmp_path):
    rgb = np.zeros((40, 50, 3), np.uint8)
    s = AnnotationStore.for_image(None, rgb, project_dir=tmp_path)
    assert s.labels.shape == (40, 50)
    assert s.commit((), [_disk()]) == [1]
    manifest = json.loads((s.folder / "store.json").read_text())
    assert manifest["objects"]["1"]["plane"] == []
    assert AnnotationStore(s.folder).labels.sum() == _disk().sum()


def test_a_process_killed_mid_save_loses_no_commit(tmp_path):
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import os
        import numpy as np
        from napari_devosam.annotation import store as store_mod, store_files
        s = store_mod.AnnotationStore({str(tmp_path / "s")!r}, (2, 40, 50))
        m = np.zeros((40, 50), bool)
        m[5:15, 5:15] = True
        s.commit((0,), [m])
        store_files.write_text = lambda *a, **k: os._exit(9)  # killed before store.json lands
        s.commit((1,), [m])
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert len(list((tmp_path / "s").glob("plane*.npz"))) == 2  # the orphan of commit 2
    reopened = AnnotationStore(tmp_path / "s")
    assert list(reopened.objects) == [1]
    assert reopened.labels[0].sum() == 100 and not reopened.labels[1].any()
    assert len(list((tmp_path / "s").glob("plane*.npz"))) == 1
    assert reopened.commit((1,), [reopened.labels[0] > 0]) == [2]
