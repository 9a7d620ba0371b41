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
