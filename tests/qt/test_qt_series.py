"""The annotator's image series: one image after the other, each with its own store, done marks
in the series folder, the next images embedded ahead, nothing uncommitted left behind. Real
napari viewers."""

import json

import numpy as np
import pytest
import tifffile

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

import segment_anything  # noqa: E402, F401 - before any viewer: see napari_devosam._qt
from napari.utils.key_bindings import coerce_keybinding  # noqa: E402

from napari_devosam._qt.annotator_widget import AnnotatorWidget  # noqa: E402
from napari_devosam.annotation.store import AnnotationStore  # noqa: E402
from napari_devosam.engine.embeddings import signature  # noqa: E402
from napari_devosam.series.image_series import SERIES_FILE  # noqa: E402
from napari_devosam.synthetic.phantoms import make_embryo  # noqa: E402
from napari_devosam.testing import tiny_sam  # noqa: E402

TIMEOUT = 20_000


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "embryos"
    root.mkdir()
    for i in range(3):
        image, _ = make_embryo((96, 128), 4, seed=20 + i, dtype=np.uint16)
        tifffile.imwrite(root / f"e{i}.tif", image)
    return root


def open_series(make_napari_viewer, qtbot, folder):
    viewer = make_napari_viewer()
    widget = AnnotatorWidget(viewer, sam=tiny_sam())
    viewer.window.add_dock_widget(widget, name="SAM annotator")
    assert widget.series_panel.open([folder])
    moved(widget.series_panel, qtbot)
    qtbot.waitUntil(lambda: widget.store is not None, timeout=TIMEOUT)
    return viewer, widget


def shown(widget, qtbot):
    qtbot.waitUntil(lambda: not widget.series_panel.reading, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: widget.store is not None and widget.state.ready_plane == (),
                    timeout=TIMEOUT)
    return widget.image_layer


def moved(panel, qtbot) -> bool:
    """Wait for the image a move started to read; True (moves return True when started)."""
    qtbot.waitUntil(lambda: not panel.reading, timeout=TIMEOUT)
    return True


def test_next_and_previous_open_each_image_with_its_own_store(make_napari_viewer, qtbot,
                                                              folder):
    viewer, w = open_series(make_napari_viewer, qtbot, folder)
    layer = shown(w, qtbot)
    assert layer.name == "e0" and layer.source.path == str(folder / "e0.tif")
    viewer.layers["boxes"].add_rectangles(np.array([[20, 30], [20, 70], [60, 70], [60, 30]],
                                                   float))
    qtbot.waitUntil(lambda: w.state.current_labels.any(), timeout=TIMEOUT)
    w.commit()
    w.wait_for_store()
    first_store = w.store.folder
    w.next_image()  # the PageDown action
    layer = shown(w, qtbot)
    assert layer.name == "e1" and w.store.folder != first_store
    assert not w.layers.objects.data.any()  # e1's own, empty store
    assert [ly.name for ly in viewer.layers if ly.name.startswith("e")] == ["e1"]
    w.previous_image()
    shown(w, qtbot)
    qtbot.waitUntil(lambda: w.layers.objects.data.any(), timeout=TIMEOUT)
    assert w.store.folder == first_store and len(AnnotationStore(first_store).objects) == 1
    for key in ("PageDown", "PageUp"):
        assert viewer.keymap.get(coerce_keybinding(key)) is not None


def test_uncommitted_objects_keep_the_user_on_the_image(make_napari_viewer, qtbot, folder,
                                                        notes):
    viewer, w = open_series(make_napari_viewer, qtbot, folder)
    shown(w, qtbot)
    viewer.layers["boxes"].add_rectangles(np.array([[20, 30], [20, 70], [60, 70], [60, 30]],
                                                   float))
    qtbot.waitUntil(lambda: w.state.current_labels.any(), timeout=TIMEOUT)
    assert not w.series_panel.next_image()
    assert w.image_layer.name == "e0" and w.state.current_labels.any()
    assert any("not committed" in n.message for n in notes)
    w.clear_prompts()
    assert w.series_panel.next_image() and moved(w.series_panel, qtbot)
    assert w.image_layer.name == "e1"


def test_done_marks_are_kept_and_the_next_image_is_embedded_ahead(make_napari_viewer, qtbot,
                                                                  folder):
    viewer, w = open_series(make_napari_viewer, qtbot, folder)
    shown(w, qtbot)
    panel = w.series_panel
    qtbot.waitUntil(lambda: panel.prefetch_worker is None, timeout=TIMEOUT)
    for name in ("e1.tif", "e2.tif"):  # PREFETCH = 2 images ahead
        key = signature(tifffile.imread(folder / name), w.sam)
        assert w.cache.get(key, w.sam.pixel_mean.device) is not None
    panel.done_box.setChecked(True)
    saved = json.loads((folder / SERIES_FILE).read_text())
    assert list(saved["done"]) == ["e0.tif"]
    assert panel.next_undone() and moved(panel, qtbot) and w.image_layer.name == "e1"
    assert "1 done" in panel.label.text() and not panel.done_box.isChecked()
    viewer2, w2 = open_series(make_napari_viewer, qtbot, folder)  # resumes where it was
    assert w2.image_layer.name == "e1" and w2.series_panel.series.is_done(0)


def test_unreadable_files_are_skipped_with_a_message(make_napari_viewer, qtbot, folder, notes):
    (folder / "e1.tif").write_bytes(b"broken")
    tifffile.imwrite(folder / "e15.tif", np.zeros((0,), np.uint8))  # "reads" as empty data
    viewer, w = open_series(make_napari_viewer, qtbot, folder)
    shown(w, qtbot)
    assert w.series_panel.next_image()  # e1 and e15 cannot be shown: on to e2
    moved(w.series_panel, qtbot)
    assert w.image_layer.name == "e2" and w.series_panel.series.path.name == "e2.tif"
    assert any("Cannot open e1.tif" in n.message for n in notes)
    assert any("Cannot open e15.tif" in n.message for n in notes)
    assert not w.series_panel.next_image() and w.image_layer.name == "e2"  # the end
    w.series_panel.series.go(1)  # saved at an unreadable image: opening goes on from there
    viewer2, w2 = open_series(make_napari_viewer, qtbot, folder)
    assert w2.image_layer.name == "e2"


def test_the_model_panel_loads_the_chosen_encoder_precision(make_napari_viewer, qtbot,
                                                            monkeypatch, notes):
    from napari_devosam.models.precision import precision_of

    monkeypatch.setenv("DEVOSAM_PRECISION", "bf16")
    viewer = make_napari_viewer()
    widget = AnnotatorWidget(viewer, autoload=False)
    panel = widget.model_panel
    assert panel.precision_combo.currentText() == "bf16"  # preset from the environment
    panel.select("embryo_tiny", "cpu")
    assert panel.load() is not None
    qtbot.waitUntil(lambda: widget.sam is not None, timeout=60_000)
    assert precision_of(widget.sam) == "bf16" and "bf16 encoder" in panel.active_label.text()
    first = widget.sam
    panel.select(precision="fp32")
    qtbot.waitUntil(lambda: not panel.loading, timeout=60_000)
    assert panel.load() is not None
    qtbot.waitUntil(lambda: widget.sam is not first, timeout=60_000)
    assert precision_of(widget.sam) == "fp32" and not notes


def test_the_next_image_is_read_off_the_gui_thread(make_napari_viewer, qtbot, folder, notes,
                                                    monkeypatch):
    import threading

    import napari_devosam.io.read as reader

    viewer, w = open_series(make_napari_viewer, qtbot, folder)
    shown(w, qtbot)
    real, threads, release = reader.read_image, [], threading.Event()

    def slow_read(path):  # a big stack: reading takes a while
        threads.append(threading.current_thread())
        release.wait(10)
        return real(path)

    monkeypatch.setattr(reader, "read_image", slow_read)
    panel = w.series_panel
    assert panel.next_image() and panel.reading
    assert not panel.next_button.isEnabled() and "Opening e1.tif" in panel.label.text()
    assert not panel.next_image()  # one move at a time
    assert any("Still opening" in n.message for n in notes)
    assert w.image_layer.name == "e0"  # the viewer keeps working on the current image
    release.set()
    moved(panel, qtbot)
    assert w.image_layer.name == "e1" and threads[0] is not threading.main_thread()
    release.clear()
    assert panel.previous_image() and panel.reading  # back to e0 ...
    viewer.window.remove_dock_widget(w)  # ... but the user closes the annotator meanwhile
    release.set()
    qtbot.waitUntil(lambda: not panel.reading, timeout=TIMEOUT)
    qtbot.wait(200)
    assert [ly.name for ly in viewer.layers if ly.name.startswith("e")] == ["e1"]
    viewer.window.add_dock_widget(w, name="SAM annotator")
    release.clear()
    assert panel.next_image() and panel.reading  # on to e2 ...
    viewer.close()  # ... but the user closes napari while it is read
    release.set()
    qtbot.waitUntil(lambda: not panel.reading, timeout=TIMEOUT)
    qtbot.wait(200)  # the worker's signals are delivered: nothing is added, nothing raises
    assert all(ly.name != "e2" for ly in viewer.layers)
