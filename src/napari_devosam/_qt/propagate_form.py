"""The thresholds of ``tracking.params.PropagationParams`` as a form, built from their
declaration (``_qt.param_editors.EditorSet``): the main ones shown, the advanced ones by
section under a collapsible "Advanced" part. Ranges, steps and tooltips come from each
field's ``utils.params.Spec``; nothing here names a field but ``OWN_CONTROL``.
"""

from __future__ import annotations

from qtpy.QtWidgets import QFormLayout, QVBoxLayout, QWidget

from napari_devosam._qt.param_editors import EditorSet, collapsible
from napari_devosam.tracking.params import SECTIONS, PropagationParams

OWN_CONTROL = ("detect_divisions",)  # shown by the panel itself


class ParamsForm(QWidget):
    """Editors for every ``PropagationParams`` field but ``OWN_CONTROL``."""

    def __init__(self, parent=None):
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        main = QFormLayout()
        outer.addLayout(main)
        self.advanced_button, self.advanced = collapsible(outer)
        advanced = QFormLayout(self.advanced)
        advanced.setContentsMargins(0, 0, 0, 0)
        self._set = EditorSet(PropagationParams, main, advanced, SECTIONS, skip=OWN_CONTROL)
        self.editors: dict[str, QWidget] = self._set.editors

    def values(self) -> dict:
        return self._set.values()

    def set_values(self, values: dict) -> None:
        """Set some fields (unknown names raise ``KeyError``)."""
        self._set.set_values(values)

    def params(self, detect_divisions: bool) -> PropagationParams:
        """The parameters (``ValueError`` for an impossible combination)."""
        return PropagationParams.from_dict({**self.values(),
                                            "detect_divisions": bool(detect_divisions)})
