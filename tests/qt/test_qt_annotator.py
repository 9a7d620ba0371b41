"""The SAM annotator widget in a real (headless) napari viewer, with a tiny random SAM.

Run under a display: ``xvfb-run -a python -m pytest tests/test_qt_annotator.py``.
"""

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

import segment_anything  # noqa: E402, F401 - before any viewer: see napari_devosam._qt
from napari.layers import Labels, Points, Shapes  # noqa: E402
from napari.utils._proxies import ReadOnlyWrapper  # noqa: E402
from napari.utils.interactions import mouse_press_callbacks  # noqa: E402

from napari_devosam._qt.annotator_widget import AnnotatorWidget  # noqa: E402
from napari_devosam.models.registry import recommended_bundled  # noqa: E402
from napari_devosam.testing import tiny_sam  # noqa: E402

TIMEOUT = 20_000


def rect(plane, r0, c0, r1, c1):
    return np.array([[plane, r0, c0], [plane, r0, c1], [plane, r1, c1], [plane, r1, c0]], float)


def open_annotator(make_napari_viewer, qtbot, data, sam, plane=None, show=False):
    """The annotator on ``data``; a stack opens at its first plane (or the one last worked
    on), then the test goes to ``plane`` if given."""
    viewer = make_napari_viewer(show=show)
    viewer.add_image(data, name="embryo")
    widget = AnnotatorWidget(viewer, sam=sam)
    viewer.window.add_dock_widget(widget, name="SAM annotator")
    qtbot.waitUntil(lambda: widget.store is not None, timeout=TIMEOUT)
    if data.ndim == 3 and plane is not None:
        viewer.dims.set_current_step(0, plane)
    return viewer, widget


def wait_ready(qtbot, widget, plane):
    qtbot.waitUntil(lambda: widget.state.ready_plane == plane, timeout=TIMEOUT)


def wait_store(qtbot, widget, before):
    qtbot.waitUntil(lambda: not widget.jobs.busy and widget._store_changes > before,
                    timeout=TIMEOUT)


@pytest.fixture
def count_store_changes():
    def attach(widget):
        widget._store_changes = 0

        def bump():
            widget._store_changes += 1

        widget.store_changed.connect(bump)
    return attach


def test_layers_appear_and_shortcuts_are_listed(make_napari_viewer, qtbot, stack, sam):
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam)
    names = [ly.name for ly in viewer.layers]
    for name, kind in [("boxes", Shapes), ("points", Points), ("current object", Labels),
                       ("objects", Labels)]:
        assert name in names
        layer = viewer.layers[name]
        assert isinstance(layer, kind) and layer.ndim == 3
    assert viewer.layers["objects"].data.shape == stack.shape
    assert viewer.layers["objects"].data is w.store.labels
    assert any("Ctrl+Shift+Z" in lbl.text() for lbl in w.findChildren(type(w.status_label)))
    # positive and negative points look different
    points = viewer.layers["points"]
    points.add([0, 10, 10])
    w.toggle_point_kind()
    points.add([0, 20, 20])
    assert not np.array_equal(points.face_color[0], points.face_color[1])
    assert list(points.features["positive"]) == [True, False]


def test_box_on_plane_k_gives_mask_on_plane_k_only_inside_box(make_napari_viewer, qtbot,
                                                              stack, sam):
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam, plane=2)
    wait_ready(qtbot, w, (2,))
    viewer.layers["boxes"].add_rectangles(rect(2, 20, 30, 70, 100))
    current = viewer.layers["current object"].data
    assert current[2].any()
    assert not current[0].any() and not current[1].any()
    inside = np.zeros(current.shape[1:], bool)
    inside[18:73, 28:103] = True  # the box plus the 2-pixel margin
    assert not current[2][~inside].any()
    # the candidates can be cycled and their IoU is shown
    r = w.state.result((2,))
    assert r.n_candidates == 3
    w.next_candidate()
    assert w.state.result((2,)).candidate_index == (r.candidate_index) % 3
    assert "predicted IoU" in w.status_label.text()


def test_points_refine(make_napari_viewer, qtbot, stack, sam):
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam)
    wait_ready(qtbot, w, (0,))
    points = viewer.layers["points"]
    points.add([0, 48, 64])
    first = w.state.result((0,))
    assert first is not None and not first.refined
    w.toggle_point_kind()
    points.add([0, 30, 40])
    second = w.state.result((0,))
    assert second.refined
    expected, _, _ = w.predictor.predict(points=[[48, 64], [30, 40]], point_labels=[1, 0],
                                         mask_input=first.logits[first.candidate_index][None])
    np.testing.assert_array_equal(viewer.layers["current object"].data[0] > 0, expected[0])


def test_commit_undo_redo_delete(make_napari_viewer, qtbot, stack, sam, count_store_changes):
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam, plane=1)
    count_store_changes(w)
    wait_ready(qtbot, w, (1,))
    boxes = viewer.layers["boxes"]
    boxes.add_rectangles([rect(1, 5, 5, 40, 50), rect(1, 50, 60, 90, 120)])
    assert set(np.unique(w.state.current_labels[1])) - {0} == {1, 2}
    # the C key on the active boxes layer commits
    viewer.layers.selection.active = boxes
    viewer.window._qt_viewer._key_map_handler.press_key("c")
    wait_store(qtbot, w, 0)
    objects = viewer.layers["objects"].data
    ids = sorted(set(np.unique(objects[1])) - {0})
    assert ids == [1, 2] and not objects[0].any() and not objects[2].any()
    assert len(boxes.data) == 0 and not w.state.current_labels[1].any()
    assert sorted(w.store.objects) == [1, 2]
    w.undo()
    wait_store(qtbot, w, 1)
    assert not objects.any() and w.store.objects == {}
    w.redo()
    wait_store(qtbot, w, 2)
    assert sorted(set(np.unique(objects[1])) - {0}) == [1, 2]
    # delete by clicking in delete mode
    w.toggle_delete_mode()
    assert viewer.layers.selection.active is viewer.layers["objects"]
    r, c = np.argwhere(objects[1] == 2)[0]
    event = ReadOnlyWrapper(SimpleNamespace(
        type="mouse_press", is_dragging=False, modifiers=[], position=(1, r, c), button=1,
        view_direction=None, up_direction=None, dims_displayed=[1, 2], pos=np.zeros(2),
        handled=False), exceptions=("handled",))
    mouse_press_callbacks(viewer.layers["objects"], event)
    wait_store(qtbot, w, 3)
    assert sorted(w.store.objects) == [1] and not (objects == 2).any()


def test_embedding_runs_in_a_worker_and_waiting_prompts_are_answered(
        make_napari_viewer, qtbot, stack):
    sam = tiny_sam()
    threads = []

    def slow_encoder(module, args, output):
        threads.append(threading.current_thread())
        time.sleep(0.6)

    sam.image_encoder.register_forward_hook(slow_encoder)
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="embryo")
    viewer.dims.set_current_step(0, 0)
    w = AnnotatorWidget(viewer, autoload=False)
    t0 = time.perf_counter()
    w.set_model(sam)  # starts the embedding of the plane shown
    assert time.perf_counter() - t0 < 0.5  # ... without waiting for the (0.6 s) encoder
    ticks = []
    from qtpy.QtCore import QTimer

    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(20)
    # a box drawn while the embedding computes waits, then is answered
    viewer.layers["boxes"].add_rectangles(rect(0, 20, 30, 70, 100))
    assert not w.state.current_labels[0].any() and w.state.is_pending((0,))
    with qtbot.waitSignal(w.embedding_ready, timeout=TIMEOUT):
        pass
    timer.stop()
    assert threads and all(t is not threading.main_thread() for t in threads)
    assert len(ticks) >= 10  # the GUI thread kept running its event loop
    assert not w.state.is_pending((0,)) and w.state.result((0,)) is not None
    assert w.state.current_labels[0].any()
    # revisiting the plane uses the cache: no second encoder run
    n = len(threads)
    viewer.dims.set_current_step(0, 1)
    qtbot.waitUntil(lambda: w.state.ready_plane == (1,), timeout=TIMEOUT)
    viewer.dims.set_current_step(0, 0)
    qtbot.waitUntil(lambda: w.state.ready_plane == (0,), timeout=TIMEOUT)
    assert len(threads) == n + 1
    # precompute all planes: the stack generator in a worker
    assert w.precompute_all() is not None
    qtbot.waitUntil(lambda: not w.embeddings.precomputing, timeout=TIMEOUT)
    assert len(threads) == n + 2  # only plane 2 was missing


def test_autosave_then_restore_in_a_new_viewer(make_napari_viewer, qtbot, stack, sam,
                                               count_store_changes):
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam, plane=2)
    count_store_changes(w)
    wait_ready(qtbot, w, (2,))
    viewer.layers["boxes"].add_rectangles(rect(2, 20, 30, 70, 100))
    w.commit()
    wait_store(qtbot, w, 0)
    saved = w.store.labels.copy()
    folder = w.store.folder
    assert (folder / "store.json").is_file() and saved[2].any()
    viewer.close()

    viewer2, w2 = open_annotator(make_napari_viewer, qtbot, stack.copy(), sam)
    assert w2.store.folder == folder
    np.testing.assert_array_equal(viewer2.layers["objects"].data, saved)
    assert sorted(w2.store.objects) == sorted(set(np.unique(saved)) - {0})


def test_screenshot_shows_the_labels(make_napari_viewer, qtbot, stack, sam, count_store_changes):
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam, show=True)
    count_store_changes(w)
    wait_ready(qtbot, w, (0,))
    viewer.layers["boxes"].add_rectangles([rect(0, 10, 10, 50, 60), rect(0, 45, 60, 90, 125)])
    w.commit()
    wait_store(qtbot, w, 0)
    viewer.layers["objects"].opacity = 1.0
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    coloured = (np.abs(shot[..., 0] - shot[..., 1]) > 30) | (np.abs(shot[..., 1] - shot[..., 2])
                                                           > 30)
    assert coloured.mean() > 0.01  # the image is gray: colour comes from the labels


def test_decoder_swap_keeps_the_embedding(make_napari_viewer, qtbot, stack, tmp_path):
    import torch

    from napari_devosam.models.decoder_files import save_decoder

    sam = tiny_sam(seed=2)
    runs = []
    sam.image_encoder.register_forward_hook(lambda *a: runs.append(1))
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam)
    wait_ready(qtbot, w, (0,))
    viewer.layers["boxes"].add_rectangles(rect(0, 20, 30, 70, 100))
    before = w.state.current_labels[0].copy()
    tuned = tiny_sam(seed=2)
    with torch.no_grad():
        for p in tuned.mask_decoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = save_decoder(tuned, tmp_path / "tuned.safetensors")
    n = len(runs)
    assert w.use_decoder(path) is not None
    assert len(runs) == n
    assert "tuned.safetensors" in w.model_panel.active_label.text()
    assert not np.array_equal(before, w.state.current_labels[0])
    # a decoder made for another encoder is refused with a notification, not a crash
    other = tiny_sam(seed=5)
    bad = save_decoder(other, tmp_path / "other.safetensors")
    assert w.use_decoder(bad) is None


def test_model_panel_presets_and_load_errors_notify(make_napari_viewer, qtbot, monkeypatch,
                                                    tmp_path):
    from napari_devosam._qt.model_panel import CHECKPOINT_CHOICE, DEMO_CHOICE

    monkeypatch.setenv("DEVOSAM_CHECKPOINT", str(tmp_path / "missing.pth"))
    monkeypatch.setenv("DEVOSAM_DEVICE", "cpu")
    viewer = make_napari_viewer()
    w = AnnotatorWidget(viewer)
    panel = w.model_panel
    assert panel.model_combo.currentText() == CHECKPOINT_CHOICE
    assert panel.device_combo.currentText() == "cpu"
    assert not panel.loading and w.predictor is None  # nothing to load offline: no autoload
    errors = []
    monkeypatch.setattr("napari_devosam._qt.model_panel.show_error", errors.append)
    assert panel.load() is not None
    qtbot.waitUntil(lambda: not panel.loading, timeout=TIMEOUT)
    assert w.predictor is None and "no model loaded" in panel.active_label.text()
    assert len(errors) == 1 and "missing.pth" in errors[0]
    panel.select("demo", "cpu")
    assert panel.model_combo.currentText() == DEMO_CHOICE
    with qtbot.waitSignal(w.model_changed, timeout=TIMEOUT):
        panel.load()
    assert w.predictor is not None and recommended_bundled() in panel.active_label.text()


def test_offline_load_failure_notifies_and_frees_the_panel(make_napari_viewer, qtbot, monkeypatch):
    """Offline with nothing cached raises a RuntimeError subclass inside the worker: it must
    still become a notification, and the panel must be usable again."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed: connection refused
    monkeypatch.setenv("DEVOSAM_MODEL_BASE_URL", f"http://127.0.0.1:{port}/")
    viewer = make_napari_viewer()
    w = AnnotatorWidget(viewer, autoload=False)
    panel = w.model_panel
    errors = []
    monkeypatch.setattr("napari_devosam._qt.model_panel.show_error", errors.append)
    panel.select("vit_b", "cpu")
    assert panel.load() is not None
    qtbot.waitUntil(lambda: not panel.loading, timeout=TIMEOUT)
    assert w.predictor is None and panel.load_button.isEnabled()
    assert len(errors) == 1 and "vit_b" in errors[0] and "DEVOSAM_CHECKPOINT" in errors[0]
    first = errors[0].splitlines()[0]  # what the notification shows before it is expanded
    assert "checkpoint field" in first and recommended_bundled() in first
    assert "pass the" not in first


def test_partial_redraw_shows_exactly_the_data(make_napari_viewer, qtbot, stack, sam):
    """The per-click redraw updates only the changed rectangle of the shown plane; what napari
    displays must still equal a full re-slice of the layer's data, click after click."""
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam, plane=1)
    wait_ready(qtbot, w, (1,))
    layer = viewer.layers["current object"]
    viewer.layers["boxes"].add_rectangles(rect(1, 10, 10, 60, 70))
    viewer.layers["points"].add([1, 30, 40])
    viewer.layers["boxes"].add_rectangles(rect(1, 40, 60, 90, 120))
    assert layer.data[1].any()
    shown = np.array(layer._slice.image.view, copy=True)
    layer.refresh()
    np.testing.assert_array_equal(shown, layer._slice.image.view)
    np.testing.assert_array_equal(layer._slice.image.raw, layer.data[1])
