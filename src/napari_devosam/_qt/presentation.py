"""How the widgets present themselves: docks that scroll, error messages written for the GUI.

``scroll_layout(widget)``: the widget's content goes into a ``QScrollArea``, so a tall dock
(the fine-tune widget, the annotator with its panels) never makes napari's window taller
than the screen; its bottom buttons stay reachable by scrolling.

``error_text(exc, what)``: a napari notification shows its first line only until expanded,
so the first line says what to do *in the widget*; the core's message (written for the API
and the CLI) follows as details.
"""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

BUNDLED_MODEL = "embryo_tiny"


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
