"""The Lineage dock: the annotator's lineage tree, jumps to its nodes, and the lineage edits.

Time runs left to right, one line per track in the track's colour (``objects`` and the
``tracks`` layer use the same colours), divisions are forks, and a track's end shows its
reason (legend under the tree). A click on a track jumps to that frame and selects its
object in ``objects``; Shift- or Ctrl-click selects a second track. The buttons (and keys,
while the dock has the focus) run the edits of ``lineage_edits`` on the store thread; a
refused edit shows the core's one-line reason. Ctrl+Z / Ctrl+Shift+Z undo and redo, as in
the viewer; Escape clears the selection. The keys act while the tree has the focus (click
it). The dock follows the store through the Propagate panel's ``LineageModel``.

``open_lineage_dock(w)`` adds it to the viewer's window (bottom area), once.
"""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QScrollBar,
    QVBoxLayout,
    QWidget,
)

from napari_devosam._qt.lineage_canvas import END_MARKS, OTHER_END, LineageCanvas
from napari_devosam._qt.propagate_view import go_to_plane
from napari_devosam.tracking.lineage_colors import rgba_array
from napari_devosam.tracking.lineage_edits import EDITS, core_call
from napari_devosam.tracking.lineage_layout import layout_lineage

DOCK_NAME = "Lineage"


def _legend() -> str:
    marks = {"x": "x", ">": "&#9655;", "s": "&#9633;", "|": "|", "o": "&#9675;"}
    shown = {**END_MARKS, "other end, or none recorded": OTHER_END}
    return "  ".join(f"<span style='color:{c.name()}'>{marks[s]}</span> {reason}"
                     for reason, (s, c) in shown.items()) + "  (fork: division)"


class LineageDock(QWidget):
    """The lineage of the annotator ``w``'s store (``w.propagate_panel.lineage``)."""

    def __init__(self, w, parent=None):
        super().__init__(parent)
        self.w = w
        self.model = w.propagate_panel.lineage
        self.data = self.model.data
        self.layout_ = None
        self.selected: list[int] = []
        self.canvas = LineageCanvas()
        self.info_label = QLabel("click a track; Shift-click a second one")
        self.info_label.setWordWrap(True)
        legend = QLabel(_legend())
        legend.setTextFormat(Qt.TextFormat.RichText)
        self.buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        for i, edit in enumerate(EDITS):
            button = QPushButton(edit.label)
            button.setToolTip(f"{edit.tip} [{QKeySequence(edit.key).toString()}]")
            button.clicked.connect(lambda *_, name=edit.name: self.edit(name))
            grid.addWidget(button, i // 4, i % 4)
            self.buttons[edit.name] = button
            self.canvas.keys[QKeySequence(edit.key).toString()] = (
                lambda name=edit.name: self.edit(name))
        for key, action in (("Ctrl+Z", w.undo), ("Ctrl+Shift+Z", w.redo),
                            ("Escape", lambda: self.select([]))):
            self.canvas.keys[QKeySequence(key).toString()] = action
        self.scroll = QScrollBar(Qt.Orientation.Vertical)
        self.scroll.setToolTip("more tracks (double-click the tree: all of them)")
        self.scroll.valueChanged.connect(lambda v: self.canvas.scroll_to(v / 10))
        self.canvas.view_changed.connect(self._sync_scroll)
        tree = QHBoxLayout()
        tree.addWidget(self.canvas, 1)
        tree.addWidget(self.scroll)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(tree, 1)
        layout.addWidget(legend)
        layout.addWidget(self.info_label)
        layout.addLayout(grid)
        self.canvas.node_clicked.connect(self._on_node)
        self.model.changed.connect(self.show_data)
        w.viewer.dims.events.current_step.connect(self._on_step)
        self._watched = None
        w.store_changed.connect(self._watch_objects)
        self._watch_objects()
        self.show_data(self.model.data)
        self.model.refresh()

    def _sync_scroll(self) -> None:
        """The scroll bar shows where the canvas's rows are (tenths of a row)."""
        top, shown, n = self.canvas.row_window()
        self.scroll.blockSignals(True)
        self.scroll.setRange(0, max(0, int(round((n - shown) * 10))))
        self.scroll.setPageStep(max(1, int(shown * 10)))
        self.scroll.setSingleStep(10)
        self.scroll.setValue(int(round(top * 10)))
        self.scroll.blockSignals(False)
        self.scroll.setVisible(n > shown + 1e-6 or top > 1e-6)

    def _watch_objects(self) -> None:
        """Follow the ``objects`` layer's selected label: an object picked in the image
        selects its track here (new-user trial 19: only tree to image worked)."""
        layers = self.w.layers
        layer = None if layers is None else layers.objects
        if layer is self._watched:
            return
        if self._watched is not None:
            self._watched.events.selected_label.disconnect(self._on_label)
        self._watched = layer
        if layer is not None:
            layer.events.selected_label.connect(self._on_label)

    def _on_label(self, event=None) -> None:
        track = self.data.object_tracks.get(int(self._watched.selected_label))
        if track is not None and track in self.data.info and self.selected[-1:] != [track]:
            self.select([track])
            self.show_row(track)

    def show_row(self, track: int) -> None:
        """Scroll the tree so that ``track``'s row is shown (the zoom kept)."""
        row = self.layout_.rows.get(int(track)) if self.layout_ is not None else None
        top, shown, _ = self.canvas.row_window()
        if row is not None and not top <= row <= top + shown - 1:
            self.canvas.scroll_to(max(0.0, row - shown / 2))

    # -- showing ------------------------------------------------------------------------------
    def show_data(self, data) -> None:
        """Draw ``data`` (a ``LineageData``); the selection keeps the tracks still there."""
        self.data = data
        frames: dict[int, list[int]] = {}
        for track, frame in data.nodes:
            frames.setdefault(track, []).append(frame)
        self.layout_ = layout_lineage(data.info, frames)
        self.canvas.set_lineage(self.layout_, rgba_array(data.colors, self.layout_.tracks))
        self.select([t for t in self.selected if t in data.info])
        self._on_step()

    def select(self, tracks) -> None:
        self.selected = [int(t) for t in tracks][-2:]
        self.canvas.set_selected(self.selected)
        for edit in EDITS:
            self.buttons[edit.name].setEnabled(len(self.selected) >= edit.needs)
        self.info_label.setText(self._describe())

    def _describe(self) -> str:
        if not self.selected:
            n = len(self.data.info)
            return f"{n} track(s): click one; Shift-click a second one"
        parts = []
        for name, t in zip("AB", self.selected, strict=False):
            ti = self.data.info.get(t)
            if ti is not None:
                mother = f", mother {ti.parent}" if ti.parent is not None else ""
                end = f", {ti.end_reason}" if ti.end_reason else ""
                parts.append(f"{name}: track {t} (frames {ti.first}..{ti.last}{mother}{end})")
        return "; ".join(parts) + f" | frame {self.frame()}"

    def frame(self) -> int | None:
        """The frame the viewer shows along the tracked axis."""
        plane = self.w.current_plane
        axis = self.data.axis
        return None if not plane or axis >= len(plane) else int(plane[axis])

    def _on_step(self, event=None) -> None:
        self.canvas.set_current_frame(self.frame())
        if self.selected:
            self.info_label.setText(self._describe())

    # -- clicking -----------------------------------------------------------------------------
    def _on_node(self, track: int, frame: int, modifiers) -> None:
        extend = bool(modifiers & (Qt.KeyboardModifier.ShiftModifier
                                   | Qt.KeyboardModifier.ControlModifier))
        if extend and self.selected and self.selected[-1] != track:
            self.select([self.selected[-1], track])
        else:
            self.select([track])
        self.jump(track, frame)

    def jump(self, track: int, frame: int) -> bool:
        """Show ``frame`` of ``track``: the viewer's sliders move there and its object is
        selected in ``objects``. False when the track has no object on that frame."""
        w = self.w
        found = self.data.object_at(track, frame, w.current_plane)
        if found is None or w.image_layer is None:
            return False
        plane, object_id = found
        go_to_plane(w.viewer, w.image_layer, plane)
        if w.layers is not None:
            w.layers.objects.selected_label = object_id
        self.info_label.setText(self._describe())
        return True

    # -- editing ------------------------------------------------------------------------------
    def edit(self, name: str) -> bool:
        """Run edit ``name`` (``lineage_edits.EDITS``) on the selection; False when it could
        not start (the reason shown)."""
        w = self.w
        frame = self.frame()
        if w.store is None or frame is None:
            show_warning("The lineage needs an image with a T or Z axis and its store.")
            return False
        try:
            what, fn = core_call(name, self.selected, frame, self.data.axis)
        except ValueError as exc:
            show_info(str(exc))
            return False
        w.store_ops._submit(what, fn, on_result=lambda res: self._edited(name, what, res),
                            on_error=self._refused)
        return True

    def _edited(self, name: str, what: str, result=None) -> None:
        self.w.lineage_edited.emit()
        notes = [r for r in result if isinstance(r, str)] if isinstance(result, list) else []
        self.info_label.setText(f"{what} (Ctrl+Z undoes it)" + "".join(f"; {n}" for n in notes))
        if notes:
            show_warning(f"{what}: {'; '.join(notes)}")

    @staticmethod
    def _refused(error) -> None:
        from napari_devosam.tracking.lineage import LineageError

        if isinstance(error, LineageError):
            show_warning(str(error))
        else:
            show_error(f"The lineage edit failed: {error}")


def open_lineage_dock(w):
    """Show the Lineage dock of annotator ``w`` (created once, at the bottom of the window);
    returns the ``LineageDock``."""
    dock = getattr(w, "lineage_dock", None)
    if dock is not None:
        parent = dock.parent()
        if parent is not None:
            parent.show()
            parent.raise_()
        return dock
    dock = LineageDock(w)
    w.lineage_dock = dock
    # the annotator's dock keeps the window's full height: the tree goes under the canvas only,
    # so it never pushes the Propagate panel's buttons below the fold
    # (the main window as Qt gives it: napari deprecates its private ``Window._qt_window``)
    main = w.window()
    if isinstance(main, QMainWindow):
        main.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
    w.viewer.window.add_dock_widget(dock, name=DOCK_NAME, area="bottom")
    return dock


def node_center(dock: LineageDock, track: int, frame: int):
    """The canvas pixel of node ``(track, frame)`` as integers (tests, benchmarks)."""
    p = dock.canvas.node_position(track, frame)
    return None if p is None else (int(np.round(p.x())), int(np.round(p.y())))
