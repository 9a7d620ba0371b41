"""The first hour (issue 25) in real napari viewers: the main actions visible at 1600 x 1000,
the plane a stack opens at, the proposals' colours, Segment all run again, the estimates.

Run under a 1600 x 1000 display:
``xvfb-run -a -s "-screen 0 1600x1000x24" python -m pytest tests/qt/test_qt_first_hour.py``.
Set ``DEVOSAM_SCREENSHOTS=folder`` to keep the screenshot.
"""

import os

import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

import segment_anything  # noqa: E402, F401 - before any viewer: see napari_devosam._qt
from qtpy.QtCore import QPoint, QRect  # noqa: E402
from qtpy.QtWidgets import QApplication, QScrollArea  # noqa: E402

from napari_devosam._qt.annotator_widget import AnnotatorWidget  # noqa: E402
from napari_devosam._qt.presentation import fill_screen  # noqa: E402

TIMEOUT = 20_000


def shown_whole(button, window) -> bool:
    """``button`` is visible, inside the window and inside the scroll area showing it."""
    if not button.isVisible():
        return False
    rect = QRect(button.mapTo(window, QPoint(0, 0)), button.size())
    if not window.rect().contains(rect):
        return False
    parent = button.parentWidget()
    while parent is not None and not isinstance(parent, QScrollArea):
        parent = parent.parentWidget()
    if parent is None:
        return True
    viewport = parent.viewport()
    return viewport.rect().contains(QRect(button.mapTo(viewport, QPoint(0, 0)), button.size()))


def test_main_actions_visible_at_1600_by_1000(make_napari_viewer, qtbot, sam, stack, tmp_path):
    screen = QApplication.primaryScreen().availableGeometry()
    if screen.width() < 1600 or screen.height() < 1000:
        pytest.skip('run under xvfb-run -s "-screen 0 1600x1000x24"')
    viewer = make_napari_viewer(show=True)
    viewer.add_image(stack, name="embryo")
    w = AnnotatorWidget(viewer, sam=sam)
    viewer.window.add_dock_widget(w, name="SAM annotator", area="right")
    window = viewer.window._qt_window
    window.setGeometry(0, 0, 1600, 1000)  # the reported screen, whatever this one is
    fill_screen(viewer)
    window.setGeometry(0, 0, 1600, 1000)
    qtbot.waitUntil(lambda: w.store is not None, timeout=TIMEOUT)
    qtbot.wait(300)
    assert window.width() <= 1600 and window.height() <= 1000
    actions = {"Annotate": w.commit_button,
               "Segment all": w.segment_all_panel.plane_button,
               "Propagate": w.propagate_panel.run_button}
    for tab, button in actions.items():
        w.show_tab(tab)
        qtbot.wait(100)
        assert shown_whole(button, window), f"{button.text()!r} is hidden"
        assert shown_whole(w.status_label, window)
        if tab == "Segment all":
            shot = window.grab()
    # no page is cut at the dock's right edge
    for i in range(w.tabs.count()):
        w.tabs.setCurrentIndex(i)
        qtbot.wait(50)
        page = w.tabs.widget(i)
        assert page.viewport().width() >= page.widget().minimumSizeHint().width()
    out = os.environ.get("DEVOSAM_SCREENSHOTS") or tmp_path
    path = os.path.join(out, "annotator_1600x1000.png")
    assert shot.save(path) and os.path.getsize(path) > 0


def test_fill_screen_uses_the_available_area(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(640, 480)
    fill_screen(viewer)
    qtbot.wait(100)
    screen = window.screen().availableGeometry()
    assert window.width() >= screen.width() - 20 and window.height() >= screen.height() - 60


# -- where work starts --------------------------------------------------------------------
def open_annotator(make_napari_viewer, qtbot, data, sam, tmp_path, **kwargs):
    viewer = make_napari_viewer(**kwargs)
    viewer.add_image(data, name="embryo")
    w = AnnotatorWidget(viewer, sam=sam, project_dir=tmp_path)
    viewer.window.add_dock_widget(w, name="SAM annotator")
    qtbot.waitUntil(lambda: w.store is not None, timeout=TIMEOUT)
    return viewer, w


def test_a_stack_opens_at_its_first_plane_then_where_work_was(make_napari_viewer, qtbot, sam,
                                                              tmp_path):
    from napari_devosam.synthetic.phantoms import make_timelapse

    data = make_timelapse(n_timepoints=7, shape=(64, 80), n_cells=3, seed=5)[0]
    viewer, w = open_annotator(make_napari_viewer, qtbot, data, sam, tmp_path)
    assert w.current_plane == (0,)  # not napari's middle plane (3)
    viewer.dims.set_current_step(0, 5)
    mask = np.zeros((1, 64, 80), bool)
    mask[0, 10:30, 10:30] = True
    w.store_ops.commit((5,), mask, [{"box": None, "points": [], "point_labels": []}], {})
    w.wait_for_store()
    qtbot.waitUntil(lambda: not w.jobs.busy, timeout=TIMEOUT)
    viewer.close()
    # the same image again: its store remembers plane 5
    viewer, w = open_annotator(make_napari_viewer, qtbot, data, sam, tmp_path)
    qtbot.waitUntil(lambda: w.current_plane == (5,), timeout=TIMEOUT)
    assert len(w.store.objects) == 1


# -- proposals --------------------------------------------------------------------------
def squares(shape, corners, size=12):
    from napari_devosam.automatic.core import AutoResult

    labels = np.zeros(shape, np.int32)
    for k, (r, c) in enumerate(corners, start=1):
        labels[r:r + size, c:c + size] = k
    prompts = [{"point": (r + size / 2, c + size / 2), "box": None, "source": "membrane"}
               for r, c in corners]
    return AutoResult(labels, {k: 0.9 for k in range(1, len(corners) + 1)}, prompts)


@pytest.fixture
def scripted(monkeypatch):
    """``core.segment_all`` answers from a script: ``runs[i]`` for the i-th plane asked."""
    import napari_devosam.automatic.core as core

    runs = []
    monkeypatch.setattr(core, "segment_all", lambda plane, *a, **k: runs.pop(0))
    return runs


def test_proposals_have_their_own_colours_and_a_rerun_replaces_them(
        make_napari_viewer, qtbot, sam, stack, tmp_path, scripted):
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam, tmp_path)
    panel = w.segment_all_panel
    shape = stack.shape[-2:]
    first = squares(shape, [(5, 5), (5, 40), (40, 5)])
    scripted.append(first)
    panel.run(all_planes=False)
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    shown = w.layers.current.data[0]
    ids = [k for k in np.unique(shown) if k]
    assert len(ids) == 3
    colours = w.layers.current.colormap.map(np.array(ids))
    assert len({tuple(np.round(c, 2)) for c in colours}) == 3  # one colour each
    # the same run again: nothing changed, and the panel says so
    scripted.append(first)
    panel.run(all_planes=False)
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    assert "same proposals as before" in panel.message.text()
    # another stain finds other cells: they replace the earlier proposals, one undo step
    scripted.append(squares(shape, [(60, 60), (60, 90)]))
    panel.stain_combo.setCurrentIndex(1)
    panel.run(all_planes=False)
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    assert len(np.unique(w.layers.current.data[0])) - 1 == 2
    assert "replace 3 earlier proposals" in panel.message.text()
    w.undo()
    np.testing.assert_array_equal(w.state.current_labels[0], first.labels)
    assert "are back" in panel.message.text()


def test_a_rerun_leaves_objects_of_prompts_alone_and_says_why(
        make_napari_viewer, qtbot, sam, stack, tmp_path, scripted):
    from napari_devosam.annotation.state import PlanePrompts, PlaneResult

    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam, tmp_path)
    panel = w.segment_all_panel
    mask = np.zeros((1, *stack.shape[-2:]), bool)
    mask[0, 3:9, 3:9] = True
    drawn = {"box": (3, 3, 9, 9), "points": [], "point_labels": []}
    w.state.restore((0,), PlanePrompts(), PlaneResult(PlanePrompts(), mask, np.ones(1), [drawn]))
    scripted.append(squares(stack.shape[-2:], [(40, 40)]))
    panel.run(all_planes=False)
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    assert "objects from your prompts left alone" in panel.message.text()
    assert w.state.current_labels[0].sum() == mask.sum()


# -- estimates before long work -----------------------------------------------------------
def test_panels_say_how_long_before_start_and_propagate_covers_a_window(
        make_napari_viewer, qtbot, sam, tmp_path):
    from napari_devosam._qt.estimates import WINDOW

    data = np.random.default_rng(1).integers(0, 255, (30, 64, 64), dtype=np.uint8)
    viewer, w = open_annotator(make_napari_viewer, qtbot, data, sam, tmp_path)
    qtbot.waitUntil(lambda: w.state.ready_plane == (0,), timeout=TIMEOUT)
    w._update_status()
    # the plane shown is in the cache already: 29 planes to embed
    assert "29 planes to embed" in w.precompute_estimate.text() and "measured" in \
        w.precompute_estimate.text() and "1 of 30 in the cache" in w.precompute_estimate.text()
    assert "30 planes to segment" in w.segment_all_panel.estimate.text()
    rng = w.propagate_panel.range
    p = w.propagate_panel
    assert (p.first_spin.value(), p.last_spin.value()) == (0, WINDOW)  # not the whole movie
    assert f"for {WINDOW} planes" in rng.label.text() and "per plane" in rng.label.text()
    viewer.dims.set_current_step(0, 25)
    assert (p.first_spin.value(), p.last_spin.value()) == (25, 29)
    assert "for 4 planes" in rng.label.text()
    p.last_spin.setValue(27)  # the user's bound stays
    viewer.dims.set_current_step(0, 3)
    assert (p.first_spin.value(), p.last_spin.value()) == (25, 27)
    assert "24 planes to track" in rng.label.text()  # forward from 3 up to 27, as a run goes


def test_segment_all_estimates_the_whole_work_and_a_run_records_its_time(
        make_napari_viewer, qtbot, sam, tmp_path):
    from napari_devosam.utils.estimate import record_seconds, recorded_seconds, step_key

    data = np.random.default_rng(2).integers(0, 255, (4, 64, 64), dtype=np.uint8)
    viewer, w = open_annotator(make_napari_viewer, qtbot, data, sam, tmp_path)
    qtbot.waitUntil(lambda: w.state.ready_plane == (0,), timeout=TIMEOUT)
    w._update_status()
    panel = w.segment_all_panel
    key = w.model_panel.loaded.key  # an injected model: its architecture, device, precision
    assert key.startswith("injected ") and key.endswith("|cpu|fp32")
    before = panel.estimate.text()
    assert "4 planes to segment" in before and "3 planes to embed" in before
    assert "counts the encoder only" in before and "automatic segmentation" in before
    assert "first plane will be timed" in before
    record_seconds(step_key("auto", key), 6.4)  # as an earlier run (CLI or GUI) leaves it
    w._update_status()
    recorded = panel.estimate.text()
    assert recorded != before and "about 2" in recorded  # 4 x 6.4 s + the encoder's 3 planes
    assert "embedding 3 planes at" in recorded
    assert "automatic segmentation 6.4 s per plane, recorded on an earlier run here" in recorded
    said, shown = [], panel._on_progress

    def spy(value):
        shown(value)
        said.append(panel.message.text())

    panel._on_progress = spy  # the panel connects it when the run starts
    assert panel.run(all_planes=True) is not None
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    assert any("left for" in line and "measured on" in line for line in said), said
    from napari_devosam._qt.estimates import plane_shape
    from napari_devosam.utils.estimate import size_class

    measured = recorded_seconds(step_key("auto", f"{key}|{size_class(plane_shape(w))}"))
    assert measured is not None and measured != 6.4  # this run's time, for the next estimate
    assert recorded_seconds(key) is not None  # and the encoder's
    after = panel.estimate.text()
    assert after != recorded and "no embedding: every plane is in the cache" in after


def test_a_stain_the_plane_does_not_read_as_is_a_warning(
        make_napari_viewer, qtbot, sam, stack, tmp_path, scripted, monkeypatch):
    import napari_devosam._qt.presentation as presentation
    from napari_devosam.automatic.stain import StainDecision, given

    said = []
    monkeypatch.setattr(presentation, "show_warning", said.append)
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam, tmp_path)
    panel = w.segment_all_panel
    reading = StainDecision("nuclei", True, 0.5, "stain: nuclei (decided from the image, "
                            "ridge score 0.50; --stain to override)")
    for stain in (given("membrane", reading), given("nuclei", reading)):
        res = squares(stack.shape[-2:], [(5, 5)])
        res.stain, res.stain_note = stain, stain.note
        scripted.append(res)
        panel.run(all_planes=False)
        qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    note = ("stain: membrane (given with the stain box, but the image reads as nuclei: ridge "
            "score 0.50; check the stain box)")
    assert said == [note]  # the first run only: the second's stain is the one read
    assert "stain: nuclei (given with the stain box)" in panel.message.text()


def test_many_current_objects_give_a_short_status_line(
        make_napari_viewer, qtbot, sam, stack, tmp_path, scripted):
    """Trial 17: 100 proposals listed 100 predicted IoUs, 8 lines of the status."""
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam, tmp_path)
    corners = [(r, c) for r in range(2, 80, 15) for c in range(2, 80, 15)][:20]
    scripted.append(squares(stack.shape[-2:], corners, size=10))
    w.segment_all_panel.run(all_planes=False)
    qtbot.waitUntil(lambda: not w.segment_all_panel.busy, timeout=TIMEOUT)
    w._update_status()
    text = w.status_label.text()
    assert "20 current objects, predicted IoU 0.90-0.90, median 0.90" in text
