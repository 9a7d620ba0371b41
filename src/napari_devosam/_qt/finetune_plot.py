"""A small live plot of the training loss and the validation IoU, drawn with QPainter.

No plotting library: the widget keeps two lists of ``(x, y)`` points (x in optimisation
steps) and repaints itself. The loss uses the left axis (0 .. its maximum), the
validation IoU the right axis (0 .. 1).
"""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, QRectF, QSize, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

LOSS_COLOR = QColor(255, 150, 40)
IOU_COLOR = QColor(60, 200, 230)


def _finite(x: float, y: float) -> bool:
    return math.isfinite(x) and math.isfinite(y)


def _downsample(points: list[tuple[float, float]], n_max: int) -> list[tuple[float, float]]:
    """Average consecutive points into at most ``n_max`` buckets (keeps the curve's shape)."""
    if len(points) <= n_max or n_max < 2:
        return points
    out = []
    size = len(points) / n_max
    for i in range(n_max):
        chunk = points[int(i * size): max(int((i + 1) * size), int(i * size) + 1)]
        out.append((sum(p[0] for p in chunk) / len(chunk), sum(p[1] for p in chunk) / len(chunk)))
    return out


class FinetunePlot(QWidget):
    """Live curve of training loss (left axis) and validation IoU (right axis, 0..1) vs step."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._loss: list[tuple[float, float]] = []
        self._iou: list[tuple[float, float]] = []
        self.setMinimumHeight(120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setToolTip("Training loss (orange, left axis) and validation IoU (blue, right axis)")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(300, 170)

    @property
    def loss_points(self) -> list[tuple[float, float]]:
        """The loss points ``(step, loss)`` added so far (a copy)."""
        return list(self._loss)

    @property
    def iou_points(self) -> list[tuple[float, float]]:
        """The validation IoU points ``(step, iou)`` added so far (a copy)."""
        return list(self._iou)

    def add_loss(self, x: float, loss: float) -> None:
        """Append a training-loss point; non-finite values are ignored."""
        if _finite(float(x), float(loss)):
            self._loss.append((float(x), float(loss)))
            self.update()

    def add_val_iou(self, x: float, iou: float) -> None:
        """Append a validation-IoU point (x = steps done, 0 = before training)."""
        if _finite(float(x), float(iou)):
            self._iou.append((float(x), float(iou)))
            self.update()

    def clear(self) -> None:
        self._loss.clear()
        self._iou.clear()
        self.update()

    # -- drawing ---------------------------------------------------------------------------

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self._draw(painter)
        finally:
            painter.end()

    def _draw(self, painter: QPainter) -> None:
        text_color = self.palette().color(self.foregroundRole())
        fm = painter.fontMetrics()
        left = fm.horizontalAdvance("0.000") + 8
        right = fm.horizontalAdvance("1.0") + 8
        top, bottom = fm.height() + 4, fm.height() + 6
        plot = QRectF(left, top, max(self.width() - left - right, 10),
                      max(self.height() - top - bottom, 10))

        axis_pen = QPen(text_color)
        axis_pen.setWidthF(1.0)
        painter.setPen(axis_pen)
        painter.drawRect(plot)

        xs = [p[0] for p in self._loss + self._iou]
        x0 = 0.0
        x1 = max(xs + [1.0])
        loss_max = max([p[1] for p in self._loss] + [1e-6])

        def to_px(x: float, y: float, y_max: float) -> QPointF:
            px = plot.left() + (x - x0) / (x1 - x0) * plot.width()
            py = plot.bottom() - min(max(y / y_max, 0.0), 1.0) * plot.height()
            return QPointF(px, py)

        # axis labels: loss range (left), IoU range (right), steps (bottom)
        painter.setPen(LOSS_COLOR)
        painter.drawText(QRectF(0, plot.top() - fm.height() / 2, left - 4, fm.height()),
                         Qt.AlignmentFlag.AlignRight, f"{loss_max:.3g}")
        painter.drawText(QRectF(0, plot.bottom() - fm.height() / 2, left - 4, fm.height()),
                         Qt.AlignmentFlag.AlignRight, "0")
        painter.setPen(IOU_COLOR)
        painter.drawText(QRectF(plot.right() + 4, plot.top() - fm.height() / 2, right, fm.height()),
                         Qt.AlignmentFlag.AlignLeft, "1.0")
        painter.drawText(QRectF(plot.right() + 4, plot.bottom() - fm.height() / 2, right,
                                fm.height()), Qt.AlignmentFlag.AlignLeft, "0")
        painter.setPen(text_color)
        painter.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), fm.height()),
                         Qt.AlignmentFlag.AlignCenter, f"step (0 .. {x1:g})")
        painter.setPen(LOSS_COLOR)
        painter.drawText(QRectF(plot.left(), 0, plot.width(), fm.height()),
                         Qt.AlignmentFlag.AlignLeft, "loss")
        painter.setPen(IOU_COLOR)
        painter.drawText(QRectF(plot.left(), 0, plot.width(), fm.height()),
                         Qt.AlignmentFlag.AlignRight, "validation IoU")

        loss = _downsample(self._loss, max(int(plot.width()), 2))
        if loss:
            pen = QPen(LOSS_COLOR)
            pen.setWidthF(1.5)
            painter.setPen(pen)
            painter.drawPolyline(QPolygonF([to_px(x, y, loss_max) for x, y in loss]))
        if self._iou:
            pen = QPen(IOU_COLOR)
            pen.setWidthF(2.0)
            painter.setPen(pen)
            pts = [to_px(x, y, 1.0) for x, y in self._iou]
            painter.drawPolyline(QPolygonF(pts))
            painter.setBrush(IOU_COLOR)
            for p in pts:
                painter.drawEllipse(p, 3.0, 3.0)
