"""The thresholds of ``tracking.params.PropagationParams`` as a form: the main ones shown, the
rest under a collapsible "Advanced" section. Tooltips are the dataclass's own documentation.
"""

from __future__ import annotations

import re
from dataclasses import fields

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from napari_devosam.tracking.params import PropagationParams

MAIN = ("min_iou_prev", "min_pred_iou", "review_below", "min_area", "box_margin")
OWN_CONTROL = ("detect_divisions",)  # shown by the panel itself
FRACTIONS = ("min_area_fraction", "min_inside_fraction", "min_iou_prev", "min_pred_iou",
             "review_below", "division_min_fraction", "division_min_iou_prev",
             "division_max_overlap")
HALF_FRACTIONS = ("division_min_fraction", "free_sister_between")  # at most 0.5 make sense
# fractions of the box, but may exceed 1
RANGES = {"box_margin": (0.0, 10.0, 0.05), "window_context": (0.0, 10.0, 0.05)}
INT_RANGES = {"window_context_cells": (0, 64)}  # 64: every released SAM's whole grid
# editors that only matter while a check box is on
NEEDS = {"window_context": "decode_window", "window_context_cells": "decode_window"}


def _docs() -> dict[str, str]:
    """``name: text`` from the ``PropagationParams`` docstring (continuation lines joined)."""
    docs, name = {}, None
    for line in (PropagationParams.__doc__ or "").splitlines():
        match = re.match(r"\s{4,6}(\w+): (.*)", line)
        if match:
            name = match.group(1)
            docs[name] = match.group(2)
        elif name and line.startswith(" " * 8) and line.strip():
            docs[name] += " " + line.strip()
        else:
            name = None
    return docs


def _editor(name: str, default):
    if isinstance(default, bool):
        editor = QCheckBox()
        editor.setChecked(default)
        return editor
    if isinstance(default, int):
        editor = QSpinBox()
        editor.setRange(*INT_RANGES.get(name, (0, 1_000_000)))
    else:
        editor = QDoubleSpinBox()
        editor.setDecimals(2)
        if name in RANGES:
            low, high, step = RANGES[name]
            editor.setRange(low, high)
            editor.setSingleStep(step)
        elif name in FRACTIONS or name in HALF_FRACTIONS:
            editor.setRange(0.0, 0.5 if name in HALF_FRACTIONS else 1.0)
            editor.setSingleStep(0.05)
        else:
            editor.setRange(0.0, 1000.0)
            editor.setSingleStep(0.5)
    editor.setValue(default)
    return editor


class ParamsForm(QWidget):
    """Editors for every ``PropagationParams`` field but ``OWN_CONTROL``."""

    def __init__(self, parent=None):
        super().__init__(parent)
        defaults, docs = PropagationParams(), _docs()
        self.editors: dict[str, QWidget] = {}
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        main = QFormLayout()
        self.advanced_button = QToolButton()
        self.advanced_button.setText("Advanced")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced = QWidget()
        advanced = QFormLayout(self.advanced)
        advanced.setContentsMargins(0, 0, 0, 0)
        for f in fields(PropagationParams):
            if f.name in OWN_CONTROL:
                continue
            editor = _editor(f.name, getattr(defaults, f.name))
            editor.setToolTip(docs.get(f.name, ""))
            self.editors[f.name] = editor
            (main if f.name in MAIN else advanced).addRow(f.name.replace("_", " "), editor)
        for name, switch in NEEDS.items():
            box, editor = self.editors[switch], self.editors[name]
            editor.setEnabled(box.isChecked())
            box.toggled.connect(editor.setEnabled)
        outer.addLayout(main)
        outer.addWidget(self.advanced_button)
        outer.addWidget(self.advanced)
        self.advanced.setVisible(False)
        self.advanced_button.toggled.connect(self._toggle)

    def _toggle(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_button.setArrowType(
            Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def values(self) -> dict:
        out = {}
        for name, editor in self.editors.items():
            out[name] = editor.isChecked() if isinstance(editor, QCheckBox) else editor.value()
        return out

    def set_values(self, values: dict) -> None:
        """Set some fields (unknown names raise ``KeyError``)."""
        for name, value in values.items():
            editor = self.editors[name]
            if isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            else:
                editor.setValue(value)

    def params(self, detect_divisions: bool) -> PropagationParams:
        """The parameters (``ValueError`` for an impossible combination)."""
        return PropagationParams.from_dict({**self.values(),
                                            "detect_divisions": bool(detect_divisions)})
