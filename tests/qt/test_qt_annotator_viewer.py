"""What the user sees: the image fitted after docking, docks that fit the screen, the live
object unlike committed ones, an image list that follows renames.

Run under a display: ``xvfb-run -a -s "-screen 0 1600x1000x24" python -m pytest ...``.
"""

import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

import segment_anything  # noqa: E402, F401 - before any viewer: see napari_devosam._qt
from qtpy.QtWidgets import QApplication  # noqa: E402

from napari_devosam._qt.annotator_widget import AnnotatorWidget  # noqa: E402
from napari_devosam._qt.finetune_widget import FinetuneWidget  # noqa: E402

TIMEOUT = 20_000


def image_fits(viewer, layer) -> bool:
    """The whole image is inside the canvas at the current zoom."""
    lo, hi = np.asarray(layer.extent.world)[:, -2:]
    size = (hi - lo) * viewer.camera.zoom
    canvas = np.asarray(viewer.canvas.size, dtype=float)
    centre = np.asarray(viewer.camera.center[-2:])
    return bool(np.all(size <= canvas + 2) and np.allclose(centre, (lo + hi) / 2, atol=2))


def test_docking_fits_the_image_in_view(make_napari_viewer, qtbot, sam):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1200, 800)
    image = viewer.add_image(np.zeros((600, 1400), np.uint8), name="embryo")
    qtbot.wait(100)
    w = AnnotatorWidget(viewer, sam=sam)
    viewer.window.add_dock_widget(w, name="SAM annotator", area="right")
    qtbot.waitUntil(lambda: image_fits(viewer, image), timeout=5_000)


@pytest.mark.parametrize("kind", ["finetune", "annotator"])
def test_docks_fit_the_screen_and_scroll(make_napari_viewer, qtbot, sam, kind):
    viewer = make_napari_viewer(show=True)
    widget = FinetuneWidget(viewer) if kind == "finetune" else AnnotatorWidget(viewer, sam=sam)
    viewer.window.add_dock_widget(widget, name=kind, area="right")
    qtbot.wait(200)
    screen = QApplication.primaryScreen().availableGeometry().height()
    assert viewer.window._qt_window.frameGeometry().height() <= screen
    if kind == "finetune":
        assert widget.scroll_area.widget().isAncestorOf(widget.use_btn)  # reachable by scrolling
    else:  # the annotator's pages scroll on their own, under tabs; the status line stays
        for i in range(widget.tabs.count()):
            assert widget.tabs.widget(i).widget().layout() is not None
        assert widget.status_label.isVisible()


def test_live_objects_have_their_own_colours(make_napari_viewer, qtbot, sam):
    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).integers(0, 255, (96, 128), np.uint8))
    w = AnnotatorWidget(viewer, sam=sam)
    qtbot.waitUntil(lambda: w.store is not None, timeout=TIMEOUT)
    ids = np.arange(1, 21)
    live = w.layers.current.colormap.map(ids)
    committed = w.layers.objects.colormap.map(ids)
    # each live object (a proposal too) has its own colour, never committed object k's
    distinct = {tuple(np.round(c, 2)) for c in live}
    assert len(distinct) == len(ids)
    assert np.all(np.abs(live - committed)[:, :3].max(axis=1) > 0.1)


def test_image_choice_follows_a_rename(make_napari_viewer, qtbot, sam):
    viewer = make_napari_viewer()
    layer = viewer.add_image(np.zeros((32, 32), np.uint8), name="embryo")
    w = AnnotatorWidget(viewer, sam=sam)
    layer.name = "embryo 2"
    assert [w.image_combo.itemText(i) for i in range(w.image_combo.count())] == ["embryo 2"]
    assert w.image_combo.currentText() == "embryo 2"
