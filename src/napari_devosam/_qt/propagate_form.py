"""The thresholds of ``tracking.params.PropagationParams`` as a form, built from their
declaration (``_qt.param_editors.EditorSet``): the main ones shown, the advanced ones by
section under a collapsible "Advanced" part. Ranges, steps and tooltips come from each
field's ``utils.params.Spec``; nothing here names a field but ``OWN_CONTROL``.

``tracking_request(panel)``: the Propagate panel's controls (axis, direction, range, this
form) as the ``tracking.request.TrackingRequest`` of one run, or None after a notification
saying why no run is possible.
"""

from __future__ import annotations

from napari.utils.notifications import show_error, show_warning
from qtpy.QtWidgets import QFormLayout, QVBoxLayout, QWidget

from napari_devosam._qt.param_editors import EditorSet, collapsible
from napari_devosam.tracking.params import SECTIONS, PropagationParams
from napari_devosam.tracking.request import TrackingRequest

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


def tracking_request(panel, selected: int | None = None) -> TrackingRequest | None:
    """The run ``panel`` (a ``PropagatePanel``) describes, from the plane shown (``selected``:
    that object's track only), or None after a napari notification when it is impossible."""
    w, lead = panel.w, panel.lead
    if w.predictor is None or w.state is None or w.store is None:
        show_warning("Load a model and choose an image first (and wait for its store).")
        return None
    if not lead:
        show_warning("A 2D image has no T or Z axis to propagate along.")
        return None
    axis = panel.axis_combo.currentData()
    if selected is None and w.current_plane is None:
        show_warning("The image's plane is not shown: show the image to propagate from.")
        return None
    if lead[axis] < 2:
        show_warning(f"The {panel.axis_combo.currentText()} axis has length 1: there is no "
                     "other plane to propagate to.")
        return None
    try:
        params = panel.form.params(panel.divisions_check.isChecked())
    except ValueError as exc:
        show_error(f"Bad propagation parameters: {exc}")
        return None
    bounds = (panel.first_spin.value(), panel.last_spin.value())
    if bounds[0] > bounds[1]:
        show_warning(f"The range {bounds[0]}..{bounds[1]} is empty: 'from' must not be "
                     "after 'to'.")
        return None
    shape = tuple(w.state.shape[:len(lead) + 2])  # leading axes, (H, W)
    return TrackingRequest(shape, w.current_plane, axis, panel.direction_combo.currentText(),
                           bounds, params, selected=selected,
                           along_z=panel.axis_combo.currentText() == "Z")
