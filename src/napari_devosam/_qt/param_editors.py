"""Qt editors built from a parameter's declaration (``utils.params.Spec``): a check box for
``bool`` (a combo box auto/on/off when None is allowed), a combo box for choices, spin boxes
for numbers (range and step from the declaration; an optional limit's lowest value shows its
``none_text`` and means None), a line edit for a float typed as text (``decimals=0``, e.g. a
learning rate). The tooltip is the help text. ``EditorSet`` lays out every field of a
declared dataclass: the main ones in one form, the advanced ones by section in a collapsible
"Advanced" part (``collapsible``).
"""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from napari_devosam.utils.params import Spec, defaults, specs

TRI_STATE = {"auto": None, "on": True, "off": False}  # an optional bool's choices

INT_MAX = 1_000_000
FLOAT_MAX = 1000.0


def _bounds(spec: Spec, top: float) -> tuple[float, float]:
    low = spec.low if spec.low is not None else spec.above if spec.above is not None else 0
    high = spec.high if spec.high is not None else spec.below if spec.below is not None else (
        spec.edit_max or top)
    if spec.optional and spec.low is not None:  # one below the lowest valid value: None
        low -= 1 if spec.kind is int else 10 ** -spec.decimals
    return low, high  # (an open lower end ``above``: that value itself means None)


def make_editor(spec: Spec, default) -> QWidget:
    """An editor holding ``default``, its tooltip the parameter's help text."""
    if spec.kind is bool and spec.optional:
        editor = QComboBox()
        editor.addItems(list(TRI_STATE))
    elif spec.kind is bool:
        editor = QCheckBox()
    elif spec.choices:
        editor = QComboBox()
        editor.addItems(list(spec.choices))
    elif spec.kind is float and spec.decimals == 0:
        editor = QLineEdit()
    elif spec.kind is int:
        editor = QSpinBox()
        editor.setRange(*(int(b) for b in _bounds(spec, INT_MAX)))
    else:
        editor = QDoubleSpinBox()
        editor.setDecimals(spec.decimals)
        editor.setRange(*_bounds(spec, FLOAT_MAX))
        editor.setSingleStep(spec.step or 0.5)
    if spec.optional and isinstance(editor, QSpinBox | QDoubleSpinBox):
        editor.setSpecialValueText(spec.none_text)
    editor.setToolTip(spec.help)
    set_value(editor, spec, default)
    return editor


def value(editor: QWidget, spec: Spec):
    """The editor's value as the parameter's kind (None for an optional limit's "none";
    text that is no number comes back as text, for validation to refuse)."""
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, QComboBox):
        text = editor.currentText()
        return TRI_STATE[text] if spec.kind is bool else text
    if isinstance(editor, QLineEdit):
        text = editor.text().strip()
        if not text and spec.optional:
            return None
        try:
            return float(text)
        except ValueError:
            return text
    if spec.optional and editor.value() == editor.minimum():
        return None
    return editor.value()


def set_value(editor: QWidget, spec: Spec, v) -> None:
    """Show ``v`` (None: an optional limit's "none")."""
    if isinstance(editor, QCheckBox):
        editor.setChecked(bool(v))
    elif isinstance(editor, QComboBox):
        tri = {value: text for text, value in TRI_STATE.items()}
        editor.setCurrentText(tri[v] if spec.kind is bool else str(v))
    elif isinstance(editor, QLineEdit):
        editor.setText("" if v is None else f"{v:g}")
    else:
        editor.setValue(editor.minimum() if v is None else v)


def collapsible(outer: QVBoxLayout, title: str = "Advanced") -> tuple[QToolButton, QWidget]:
    """A toggle button and the (hidden) widget it shows, added to ``outer``."""
    button, body = QToolButton(), QWidget()
    button.setText(title)
    button.setCheckable(True)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    button.setArrowType(Qt.ArrowType.RightArrow)

    def toggle(shown: bool) -> None:
        body.setVisible(shown)
        button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    button.toggled.connect(toggle)
    outer.addWidget(button)
    outer.addWidget(body)
    body.setVisible(False)
    return button, body


class EditorSet:
    """One editor per field of the declared dataclass ``cls`` (but ``skip``): the main ones
    added to ``main``, the advanced ones to ``advanced`` under their section's title from
    ``titles``; an editor whose field ``needs`` a switch is enabled only while it is on."""

    def __init__(self, cls, main: QFormLayout, advanced: QFormLayout, titles: dict[str, str],
                 skip=()):
        self.specs = {n: s for n, s in specs(cls).items() if n not in skip}
        self.editors: dict[str, QWidget] = {}
        default_of, section = defaults(cls), None
        for name, spec in self.specs.items():
            editor = make_editor(spec, default_of[name])
            self.editors[name] = editor
            if spec.advanced and spec.section != section:
                section = spec.section
                advanced.addRow(QLabel(f"<b>{titles.get(section, section)}</b>"))
            label = spec.label or name.replace("_", " ")
            (advanced if spec.advanced else main).addRow(label[0].upper() + label[1:], editor)
        for name, spec in self.specs.items():
            if spec.needs in self.editors:
                box, editor = self.editors[spec.needs], self.editors[name]
                editor.setEnabled(box.isChecked())
                box.toggled.connect(editor.setEnabled)

    def values(self) -> dict:
        return {name: value(editor, self.specs[name]) for name, editor in self.editors.items()}

    def set_values(self, values: dict) -> None:
        """Show some fields (unknown names raise ``KeyError``)."""
        for name, v in values.items():
            set_value(self.editors[name], self.specs[name], v)
