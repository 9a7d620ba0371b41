"""How the widgets present themselves: docks that scroll, error messages written for the GUI.

``scroll_layout(widget)``: the widget's content goes into a ``QScrollArea``, so a tall dock
(the fine-tune widget, the annotator with its panels) never makes napari's window taller
than the screen; its bottom buttons stay reachable by scrolling.

``tab_pages(widget, titles)``: the annotator's dock as tabs (each page scrolls on its own), so
its main actions fit a 1600 x 1000 screen; ``fill_screen(viewer)``: the window takes the
screen's available area.

``stain_text(decision, box)``: a run's stain note written for the form (``--stain`` becomes
the form's box); a stain given against what the image reads as (``stain.given``) is also
shown as a warning notification, not only in the panel's message line.

``error_text(exc, what)``: a napari notification shows its first line only until expanded,
so the first line says what to do *in the widget*; the core's message (written for the API
and the CLI) follows as details.
"""

from __future__ import annotations

from napari.utils.notifications import show_warning
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFrame, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from napari_devosam.models.registry import recommended_bundled

BUNDLED_MODEL = recommended_bundled()


def scroll_layout(widget: QWidget) -> QVBoxLayout:
    """Give ``widget`` a scroll area; returns the layout to add its content to."""
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    area = QScrollArea(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    content = QWidget(area)
    area.setWidget(content)
    outer.addWidget(area)
    widget.scroll_area = area
    return QVBoxLayout(content)


class _Page(QScrollArea):
    """A page that scrolls vertically and is never narrower than its content needs."""

    def minimumSizeHint(self):  # noqa: N802 - Qt's name
        hint = super().minimumSizeHint()
        content = self.widget()
        if content is not None:
            hint.setWidth(max(hint.width(), content.minimumSizeHint().width()
                              + self.verticalScrollBar().sizeHint().width()))
        return hint


def _scroll_page(parent: QWidget) -> tuple[QScrollArea, QVBoxLayout]:
    area = _Page(parent)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    content = QWidget(area)
    area.setWidget(content)
    return area, QVBoxLayout(content)


def tab_pages(widget: QWidget, titles: list[str]) -> tuple[QVBoxLayout, QTabWidget, dict]:
    """Give ``widget`` a layout ``top`` (always shown), then tabs named ``titles`` whose pages
    scroll on their own. Returns ``(top, tabs, pages)``: ``pages[title]`` is the layout of
    that page; ``widget.tabs`` is the tab widget. A page is never narrower than its content
    needs, so nothing is cut at the dock's right edge."""
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(2, 2, 2, 2)
    top = QVBoxLayout()
    outer.addLayout(top)
    tabs = QTabWidget(widget)
    tabs.setUsesScrollButtons(True)
    pages = {}
    for title in titles:
        area, layout = _scroll_page(tabs)
        tabs.addTab(area, title)
        pages[title] = layout
    outer.addWidget(tabs, 1)
    widget.tabs = tabs
    return top, tabs, pages


def fill_screen(viewer) -> None:
    """Size napari's window to the screen's available area and maximise it (a window
    manager may keep a smaller one; then it still covers the screen)."""
    window = viewer.window._qt_window
    screen = window.screen() if hasattr(window, "screen") else None
    if screen is None:
        from qtpy.QtWidgets import QApplication

        screen = QApplication.primaryScreen()
    if screen is not None:
        window.setGeometry(screen.availableGeometry())
    window.showMaximized()


def _original(exc: BaseException) -> BaseException:
    return getattr(exc, "original", None) or exc


def error_text(exc: BaseException, what: str) -> str:
    """A notification for ``exc`` raised while ``what`` (e.g. "loading the model")."""
    from napari_devosam.models.download import ModelUnavailableError

    original = _original(exc)
    if isinstance(original, ModelUnavailableError):
        return (f"The model could not be downloaded (offline?): enter a local checkpoint in "
                f"the Model panel's checkpoint field, or choose the bundled model "
                f"{BUNDLED_MODEL}, which needs no download.\nDetails: {original}")
    return f"{what[:1].upper()}{what[1:]} failed: {original}"


def stain_text(decision, box: str) -> str:
    """``decision``'s note (a ``stain.StainDecision``; "" for None) with ``--stain`` named as
    the form's ``box``; a contradicted given stain is also a warning notification."""
    if decision is None:
        return ""
    text = decision.note.replace("--stain", box)
    if getattr(decision, "contradicted", False):
        show_warning(text)
    return text
