"""No work is lost in the annotator: corrections are saved, failed saves keep the user's work
and offer a project folder, an unwritable embedding cache only warns. Real napari viewers."""

import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

import segment_anything  # noqa: E402, F401 - before any viewer: see napari_devosam._qt

from napari_devosam._qt.annotator_widget import AnnotatorWidget  # noqa: E402
from napari_devosam.annotation.store import AnnotationStore  # noqa: E402
from napari_devosam.annotation.store_location import image_hash  # noqa: E402

TIMEOUT = 20_000


def rect(plane, r0, c0, r1, c1):
    return np.array([[plane, r0, c0], [plane, r0, c1], [plane, r1, c1], [plane, r1, c0]], float)


def open_annotator(make_napari_viewer, qtbot, data, sam, **kwargs):
    viewer = make_napari_viewer()
    viewer.add_image(data, name="embryo")
    viewer.dims.set_current_step(0, 1)
    widget = AnnotatorWidget(viewer, sam=sam, **kwargs)
    viewer.window.add_dock_widget(widget, name="SAM annotator")
    qtbot.waitUntil(lambda: widget.store is not None, timeout=TIMEOUT)
    return viewer, widget


def settle(qtbot, widget):
    widget.wait_for_store()
    qtbot.waitUntil(lambda: not widget.jobs.busy, timeout=TIMEOUT)


def test_brush_erase_and_fill_are_saved_undone_and_restored(make_napari_viewer, qtbot, stack,
                                                             sam):
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam)
    objects = viewer.layers["objects"]
    folder = w.store.folder
    objects._begin_stroke()  # one brush stroke of two dabs: one store step
    objects.brush_size = 5
    objects.paint((1, 20, 20), 4)
    objects.paint((1, 20, 26), 4)
    objects._commit_stroke()
    settle(qtbot, w)
    assert 4 in AnnotationStore(folder).objects
    painted = np.count_nonzero(AnnotationStore(folder).labels[1] == 4)
    assert painted > 25
    objects.paint((1, 20, 20), 0)  # erase part of it
    settle(qtbot, w)
    assert 0 < AnnotationStore(folder).objects[4]["area"] < painted
    objects.fill((2, 5, 5), 9)  # fill the background of plane 2
    settle(qtbot, w)
    assert AnnotationStore(folder).objects[9]["area"] == 96 * 128
    w.undo()  # undoes the fill, then the erase, then the stroke: one stack with commits
    w.undo()
    settle(qtbot, w)
    disk = AnnotationStore(folder)
    assert 9 not in disk.objects and np.count_nonzero(disk.labels[1] == 4) == painted
    assert not objects.data[2].any() and np.count_nonzero(objects.data[1] == 4) == painted
    viewer2, w2 = open_annotator(make_napari_viewer, qtbot, stack, sam)  # restored
    assert np.count_nonzero(viewer2.layers["objects"].data[1] == 4) == painted


def test_the_layers_own_undo_steps_the_store(make_napari_viewer, qtbot, stack, sam):
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam)
    objects = viewer.layers["objects"]
    folder = w.store.folder
    objects.paint((1, 20, 20), 4)
    settle(qtbot, w)
    assert 4 in AnnotationStore(folder).objects
    objects.undo()  # napari's binding, a script or another plugin: not only our Ctrl+Z
    settle(qtbot, w)
    assert 4 not in AnnotationStore(folder).objects and not objects.data[1].any()
    objects.redo()
    settle(qtbot, w)
    assert 4 in AnnotationStore(folder).objects and (objects.data[1] == 4).any()


def test_an_unwritable_store_keeps_the_mask_and_offers_a_project_folder(
        make_napari_viewer, qtbot, stack, sam, tmp_path, monkeypatch, notes):

    root = tmp_path / "stores"
    root.mkdir()
    monkeypatch.setenv("DEVOSAM_STORE_DIR", str(root))
    (root / f"{image_hash(stack)}.devosam").write_text("in the way")  # cannot be a folder
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam)
    viewer.dims.set_current_step(0, 1)  # a stack opens at its first plane; work on plane 1
    qtbot.waitUntil(lambda: any("cannot be written" in n.message for n in notes),
                    timeout=TIMEOUT)  # announced at opening, with a way out
    [warning] = [n for n in notes if "cannot be written" in n.message]
    assert warning.actions and "folder" in warning.actions[0][0].lower()
    qtbot.waitUntil(lambda: w.state.ready_plane == (1,), timeout=TIMEOUT)
    viewer.layers["boxes"].add_rectangles(rect(1, 20, 30, 70, 100))
    mask = w.state.current_labels[1].copy()
    assert mask.any()
    w.commit()
    settle(qtbot, w)
    qtbot.waitUntil(lambda: any("Commit failed" in n.message for n in notes), timeout=TIMEOUT)
    np.testing.assert_array_equal(w.state.current_labels[1], mask)  # the mask is kept
    assert len(viewer.layers["boxes"].data) == 1  # and its prompt
    viewer.layers["objects"].paint((1, 5, 5), 3)  # a correction that cannot be saved yet
    settle(qtbot, w)
    assert w.store_ops.unsaved
    w.store_ops.relocate(tmp_path / "project")
    qtbot.waitUntil(lambda: w.store is not None, timeout=TIMEOUT)
    settle(qtbot, w)
    w.commit()
    settle(qtbot, w)
    disk = AnnotationStore(w.store.folder)
    assert w.store.folder.parent == tmp_path / "project"
    assert 3 in disk.objects and len(disk.objects) == 2 and not w.store_ops.unsaved


def test_an_unwritable_embedding_cache_warns_once_and_segments(make_napari_viewer, qtbot,
                                                               stack, sam, tmp_path, notes):
    (tmp_path / "a-file").write_text("not a folder")
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam,
                               cache_dir=tmp_path / "a-file" / "cache")
    for plane in (1, 2, 0):
        viewer.dims.set_current_step(0, plane)
        qtbot.waitUntil(lambda p=plane: w.state.ready_plane == (p,), timeout=TIMEOUT)
    viewer.layers["boxes"].add_rectangles(rect(0, 20, 30, 70, 100))
    assert w.state.current_labels[0].any()
    qtbot.wait(100)
    assert len([n for n in notes if "embedding cache" in n.message]) == 1


def test_a_store_changed_by_another_program_is_read_again_and_the_stroke_kept(
        make_napari_viewer, qtbot, stack, sam):
    """New-user trial 19: ``devosam import-tracks`` replaced the store the viewer held, and
    the viewer's next edit lost the store. Now the viewer's write is refused, the store is
    read again (the other program's objects shown) and the stroke is saved into it."""
    import subprocess
    import sys
    import textwrap

    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam)
    objects = viewer.layers["objects"]
    folder = w.store.folder
    objects.paint((1, 20, 20), 4)
    settle(qtbot, w)
    script = textwrap.dedent(f"""
        import numpy as np
        from napari_devosam.annotation.store import AnnotationStore
        s = AnnotationStore({str(folder)!r})
        mask = np.zeros(s.shape[1:], bool)
        mask[60:70, 90:100] = True
        s.commit((2,), [mask])
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    other = max(AnnotationStore(folder).objects)

    objects.paint((1, 50, 50), 7)  # refused: the store changed since the viewer read it
    settle(qtbot, w)
    qtbot.waitUntil(lambda: w.store is not None and 7 in w.store.objects, timeout=TIMEOUT)
    settle(qtbot, w)
    disk = AnnotationStore(folder)  # readable, with all three programs' objects
    assert {4, 7, other} <= set(disk.objects)
    assert (viewer.layers["objects"].data[2] == other).any()
    assert (viewer.layers["objects"].data[1] == 7).any()
