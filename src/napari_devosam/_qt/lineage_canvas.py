"""The Lineage dock's tree: a QWidget painted with QPainter.

Why QPainter and not vispy, pyqtgraph or matplotlib: measured by
``benchmarks/bench_lineage.py`` (300 frames x 500 tracks, 2-core VM under Xvfb, redraw =
layout + colours + a synchronous repaint, interleaved): QPainter 57 ms p50, vispy (one segment
``Line`` visual + ``Markers`` in a ``SceneCanvas``) 1.2x to 1.4x that in three runs (0.8x
once, at load 12), matplotlib (``LineCollection`` on its Qt canvas) 2.4x to 3.3x. A lineage is
a few thousand straight segments and some marks: QPainter paints them on the CPU with no
second GL context in napari's window (vispy without a GPU goes through llvmpipe), no figure
machinery, and no new dependency (pyqtgraph is not installed with napari). Click hit tests
are arithmetic on the layout (``lineage_layout.hit``).

Mouse: left click on a track selects it and emits ``node_clicked(track, frame, modifiers)``
(Shift/Ctrl-click adds a second track, as the dock reads it); the wheel zooms around the
cursor (Shift: time only, Ctrl: tracks only); a right or middle drag pans; a double click
shows the whole lineage. The first view shows every frame and as many tracks as fit
``ROW_MIN_PX`` apart, ids written (new-user trial 19: 100 tracks squeezed 2 px apart could
not be told apart, and a Shift-click took a neighbour); the dock's scroll bar
(``row_window``, ``scroll_to``) moves through the rest.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QEvent, QLineF, QPointF, QRectF, QSize, Qt, Signal
from qtpy.QtGui import QColor, QKeySequence, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

from napari_devosam.tracking.lineage_layout import LineageLayout, hit

BACKGROUND = QColor(38, 41, 48)
AXIS = QColor(160, 160, 160)
SELECTED = QColor(255, 255, 255)
CURRENT_FRAME = QColor(255, 220, 80, 160)
# track ends: (symbol, colour) by reason; "divided" ends are the forks themselves
END_MARKS = {"lost": ("x", QColor(255, 80, 80)), "left the movie": (">", QColor(120, 200, 255)),
             "deleted": ("s", QColor(170, 170, 170)), "movie end": ("|", QColor(150, 150, 150))}
OTHER_END = ("o", QColor(255, 170, 60))
MARGIN = (34, 8, 8, 20)  # left, top, right, bottom (pixels): frame ticks at the bottom
ID_SPACING_PX = 12.0  # track ids are written once rows are this far apart on screen
ROW_MIN_PX = 16.0  # the first view keeps rows at least this far apart (the rest: scroll)


class LineageCanvas(QWidget):
    """Paints a ``LineageLayout`` with one colour per row (``set_lineage``)."""

    node_clicked = Signal(int, int, object)  # track, frame, Qt keyboard modifiers
    view_changed = Signal()  # zoom, pan, scroll, resize or new data

    def __init__(self, parent=None):
        super().__init__(parent)
        self.layout_: LineageLayout | None = None
        self.colors = np.zeros((0, 4), dtype=np.float32)
        self.selected: list[int] = []
        self.current_frame: int | None = None
        self._view = None  # (x0, x1, y0, y1) in data units; None: everything
        self._pan = None
        self._pens: list[QPen] = []
        self.keys: dict = {}  # QKeySequence text ("Shift+P") -> action, while focused
        self.setMinimumHeight(120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(False)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(480, 260)

    # -- data ---------------------------------------------------------------------------------
    def set_lineage(self, layout: LineageLayout, colors: np.ndarray) -> None:
        """Show ``layout`` with ``colors`` ``(rows, 4)`` RGBA 0..1, one per row."""
        keep_view = (self.layout_ is not None and self._view is not None
                     and len(self.layout_.tracks) == len(layout.tracks))
        self.layout_, self.colors = layout, np.asarray(colors, dtype=np.float32)
        self._pens = []
        for r, g, b, a in (self.colors * 255).astype(int).tolist():
            pen = QPen(QColor(r, g, b, a))
            pen.setWidthF(2.0)
            pen.setCosmetic(True)
            self._pens.append(pen)
        if not keep_view:
            self._view = None
        self._changed()

    def _changed(self) -> None:
        self.update()
        self.view_changed.emit()

    def resizeEvent(self, event):  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.view_changed.emit()

    def set_selected(self, tracks) -> None:
        self.selected = [int(t) for t in tracks]
        self.update()

    def set_current_frame(self, frame: int | None) -> None:
        if frame != self.current_frame:
            self.current_frame = frame
            self.update()

    def reset_view(self) -> None:
        """The first view: every frame, the first rows ``ROW_MIN_PX`` apart."""
        self._view = None
        self._changed()

    def show_all(self) -> None:
        """Every frame and every track, however close the rows."""
        lay = self.layout_
        n_frames = max(lay.n_frames, 1) if lay is not None else 1
        n_rows = max(len(lay.tracks), 1) if lay is not None else 1
        self._view = (-0.5, n_frames - 0.5, -0.5, n_rows - 0.5)
        self._changed()

    def row_window(self) -> tuple[float, float, int]:
        """``(top row, rows shown, rows)`` of the view, for a scroll bar."""
        _, _, y0, y1 = self.view()
        n = len(self.layout_.tracks) if self.layout_ is not None else 0
        return y0 + 0.5, y1 - y0, n

    def scroll_to(self, top: float) -> None:
        """Show the rows from ``top`` on (the zoom kept)."""
        x0, x1, y0, y1 = self.view()
        self._view = (x0, x1, top - 0.5, top - 0.5 + (y1 - y0))
        self._changed()

    # -- coordinates --------------------------------------------------------------------------
    def view(self) -> tuple[float, float, float, float]:
        """``(x0, x1, y0, y1)`` shown, in data units."""
        if self._view is not None:
            return self._view
        lay = self.layout_
        n_frames = max(lay.n_frames, 1) if lay is not None else 1
        n_rows = max(len(lay.tracks), 1) if lay is not None else 1
        fit = max(self._plot_rect().height() / ROW_MIN_PX, 1.0)
        return (-0.5, n_frames - 0.5, -0.5, min(n_rows, fit) - 0.5)

    def _plot_rect(self) -> QRectF:
        left, top, right, bottom = MARGIN
        return QRectF(left, top, max(self.width() - left - right, 1),
                      max(self.height() - top - bottom, 1))

    def _scale(self):
        x0, x1, y0, y1 = self.view()
        rect = self._plot_rect()
        return x0, y0, rect.width() / (x1 - x0), rect.height() / (y1 - y0), rect

    def to_screen(self, x, y):
        """Data ``(frame, row)`` -> widget pixels (arrays or floats)."""
        x0, y0, sx, sy, rect = self._scale()
        return rect.left() + (np.asarray(x) - x0) * sx, rect.top() + (np.asarray(y) - y0) * sy

    def to_data(self, px: float, py: float) -> tuple[float, float]:
        x0, y0, sx, sy, rect = self._scale()
        return x0 + (px - rect.left()) / sx, y0 + (py - rect.top()) / sy

    def node_position(self, track: int, frame: int) -> QPointF | None:
        """Where the node ``(track, frame)`` is drawn (widget pixels), for tests and tools."""
        if self.layout_ is None or track not in self.layout_.rows:
            return None
        x, y = self.to_screen(float(frame), float(self.layout_.rows[track]))
        return QPointF(float(x), float(y))

    # -- painting -----------------------------------------------------------------------------
    def paintEvent(self, event):  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        lay = self.layout_
        if lay is None or not len(lay.tracks):
            painter.setPen(AXIS)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "no tracks yet: commit objects and propagate, or import tracks")
            painter.end()
            return
        rect = self._plot_rect()
        painter.setClipRect(rect)
        self._paint_segments(painter, lay)
        self._paint_selection(painter, lay)
        self._paint_ends(painter, lay)
        painter.setClipping(False)
        self._paint_ids(painter, lay)  # a track from frame 0 has its id in the margin
        self._paint_axis(painter, rect)
        painter.end()

    def _paint_segments(self, painter, lay) -> None:
        xa, ya = self.to_screen(lay.segments[:, 0], lay.segments[:, 1])
        xb, yb = self.to_screen(lay.segments[:, 2], lay.segments[:, 3])
        rect = self._plot_rect()
        visible = ~(((ya < rect.top() - 2) & (yb < rect.top() - 2))
                    | ((ya > rect.bottom() + 2) & (yb > rect.bottom() + 2)))
        rows = lay.segment_row[visible]
        coords = np.stack([xa, ya, xb, yb], axis=1)[visible].tolist()
        order = np.argsort(rows, kind="stable")
        by_row: dict[int, list] = {}
        for i in order.tolist():
            by_row.setdefault(int(rows[i]), []).append(QLineF(*coords[i]))
        for row, lines in by_row.items():
            painter.setPen(self._pens[row])
            painter.drawLines(lines)

    def _paint_selection(self, painter, lay) -> None:
        rows = lay.rows
        pen = QPen(SELECTED)
        pen.setWidthF(4.0)
        pen.setCosmetic(True)
        for t in self.selected:
            if t in rows:
                r = rows[t]
                (xa, xb), (y, _) = self.to_screen([lay.first[r] - 0.3, lay.last[r] + 0.3],
                                                  [r, r])
                painter.setPen(pen)
                painter.drawLine(QLineF(float(xa), float(y), float(xb), float(y)))
                painter.setPen(self._pens[r])
                painter.drawLine(QLineF(float(xa), float(y), float(xb), float(y)))
        if self.current_frame is not None:
            x, _ = self.to_screen(float(self.current_frame), 0.0)
            painter.setPen(QPen(CURRENT_FRAME, 1))
            rect = self._plot_rect()
            painter.drawLine(QLineF(float(x), rect.top(), float(x), rect.bottom()))

    def _paint_ends(self, painter, lay) -> None:
        if not lay.ends:
            return
        rows = np.array([r for _, r in lay.ends])
        xs, ys = self.to_screen(lay.last[rows].astype(float), rows.astype(float))
        size = 4.0
        for (reason, _), x, y in zip(lay.ends, xs.tolist(), ys.tolist(), strict=True):
            symbol, color = END_MARKS.get(reason, OTHER_END)
            painter.setPen(QPen(color, 1.5))
            if symbol == "x":
                painter.drawLine(QLineF(x - size, y - size, x + size, y + size))
                painter.drawLine(QLineF(x - size, y + size, x + size, y - size))
            elif symbol == ">":
                painter.drawPolygon(QPolygonF([QPointF(x, y - size), QPointF(x + size, y),
                                               QPointF(x, y + size)]))
            elif symbol == "s":
                painter.drawRect(QRectF(x - size / 2, y - size / 2, size, size))
            elif symbol == "|":
                painter.drawLine(QLineF(x + 2, y - size, x + 2, y + size))
            else:
                painter.drawEllipse(QPointF(x, y), size / 2, size / 2)

    def label_rows(self) -> list[int]:
        """The rows whose track id is written, left of the track's start: every visible row
        once rows are ``ID_SPACING_PX`` apart on screen (zoom in to read them; a lineage of
        80 imported tracks had rows 4 px apart), else none."""
        lay = self.layout_
        if lay is None or not len(lay.tracks):
            return []
        _, _, _, sy, rect = self._scale()
        if sy < ID_SPACING_PX:
            return []
        _, ys = self.to_screen(np.zeros(len(lay.tracks)), np.arange(len(lay.tracks), dtype=float))
        return np.flatnonzero((ys >= rect.top() - 2) & (ys <= rect.bottom() + 2)).tolist()

    def _paint_ids(self, painter, lay) -> None:
        rows = self.label_rows()
        if not rows:
            return
        xs, ys = self.to_screen(lay.first[rows].astype(float), np.asarray(rows, dtype=float))
        painter.setPen(AXIS)
        for r, x, y in zip(rows, xs.tolist(), ys.tolist(), strict=True):
            painter.drawText(QRectF(x - 44, y - 7, 40, 14),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             str(int(lay.tracks[r])))

    def _paint_axis(self, painter, rect) -> None:
        x0, x1, _, _ = self.view()
        span = max(x1 - x0, 1.0)
        step = max(1, int(10 ** np.floor(np.log10(span / 2))))
        if span / step > 10:
            step *= 5 if span / step > 25 else 2
        painter.setPen(AXIS)
        painter.drawLine(QLineF(rect.left(), rect.bottom(), rect.right(), rect.bottom()))
        for frame in range(int(np.ceil(x0 / step)) * step, int(x1) + 1, step):
            x, _ = self.to_screen(float(frame), 0.0)
            painter.drawLine(QLineF(float(x), rect.bottom(), float(x), rect.bottom() + 3))
            painter.drawText(QRectF(float(x) - 20, rect.bottom() + 3, 40, 14),
                             Qt.AlignmentFlag.AlignHCenter, str(frame))
        painter.drawText(QRectF(0, rect.bottom() + 3, MARGIN[0] - 2, 14),
                         Qt.AlignmentFlag.AlignRight, "t")

    # -- keys ---------------------------------------------------------------------------------
    @staticmethod
    def key_text(event) -> str:
        """A key event as ``QKeySequence`` text, e.g. "Shift+P", "Ctrl+Z", "Del"."""
        combo = event.keyCombination() if hasattr(event, "keyCombination") else (
            int(event.modifiers()) | event.key())
        return QKeySequence(combo).toString()

    def event(self, event):
        # our keys win over the window's shortcuts (napari's Ctrl+Z...) while focused
        if event.type() == QEvent.Type.ShortcutOverride and self.key_text(event) in self.keys:
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event):  # noqa: N802 - Qt's name
        action = self.keys.get(self.key_text(event))
        if action is None:
            super().keyPressEvent(event)
            return
        event.accept()
        action()

    # -- mouse --------------------------------------------------------------------------------
    def mousePressEvent(self, event):  # noqa: N802 - Qt's name
        pos = event.position() if hasattr(event, "position") else event.pos()
        if event.button() == Qt.MouseButton.LeftButton and self.layout_ is not None:
            x, y = self.to_data(pos.x(), pos.y())
            _, _, sx, sy, _ = self._scale()
            # a click within 6 pixels (or half a row/frame, whichever is larger) counts
            found = hit(self.layout_, x, y, tolerance=max(0.5, 6.0 / max(min(sx, sy), 1e-9)))
            if found is not None:
                self.node_clicked.emit(found[0], found[1], event.modifiers())
            return
        self._pan = (pos.x(), pos.y(), self.view())

    def mouseMoveEvent(self, event):  # noqa: N802 - Qt's name
        if self._pan is None:
            return
        pos = event.position() if hasattr(event, "position") else event.pos()
        px, py, (x0, x1, y0, y1) = self._pan
        _, _, sx, sy, _ = self._scale()
        dx, dy = (pos.x() - px) / sx, (pos.y() - py) / sy
        self._view = (x0 - dx, x1 - dx, y0 - dy, y1 - dy)
        self._changed()

    def mouseReleaseEvent(self, event):  # noqa: N802 - Qt's name
        self._pan = None

    def mouseDoubleClickEvent(self, event):  # noqa: N802 - Qt's name
        self.show_all()

    def wheelEvent(self, event):  # noqa: N802 - Qt's name
        pos = event.position() if hasattr(event, "position") else event.pos()
        factor = 0.8 if event.angleDelta().y() > 0 else 1.25
        cx, cy = self.to_data(pos.x(), pos.y())
        x0, x1, y0, y1 = self.view()
        mods = event.modifiers()
        zoom_x = not mods & Qt.KeyboardModifier.ControlModifier
        zoom_y = not mods & Qt.KeyboardModifier.ShiftModifier
        if zoom_x:
            x0, x1 = cx + (x0 - cx) * factor, cx + (x1 - cx) * factor
        if zoom_y:
            y0, y1 = cy + (y0 - cy) * factor, cy + (y1 - cy) * factor
        self._view = (x0, x1, y0, y1)
        self._changed()
