"""_qt.propagate_form: the parameters' editors, their ranges and what the form returns."""

from napari_devosam._qt.propagate_form import ParamsForm
from napari_devosam.tracking.params import PropagationParams


def test_window_editors_follow_the_decode_window_switch(qtbot):
    form = ParamsForm()
    qtbot.addWidget(form)
    switch = form.editors["decode_window"]
    context, cells = form.editors["window_context"], form.editors["window_context_cells"]
    assert switch.isChecked() and context.isEnabled() and cells.isEnabled()
    switch.setChecked(False)
    assert not context.isEnabled() and not cells.isEnabled()
    assert form.params(detect_divisions=True).decode_window is False
    switch.setChecked(True)
    assert context.isEnabled() and cells.isEnabled()
    cells.setValue(1000)
    assert cells.value() == 64  # a whole released SAM grid; more changes nothing
    form.set_values({"window_context": 0.35, "window_context_cells": 5})
    p = form.params(detect_divisions=False)
    assert (p.decode_window, p.window_context, p.window_context_cells) == (True, 0.35, 5)
    assert "window of the image embedding" in switch.toolTip()


def test_defaults_round_trip_through_the_form(qtbot):
    form = ParamsForm()
    qtbot.addWidget(form)
    assert form.params(detect_divisions=True) == PropagationParams()


def test_every_field_gets_an_editor_from_its_declaration(qtbot):
    from qtpy.QtWidgets import QCheckBox, QComboBox

    from napari_devosam.utils.params import specs

    form = ParamsForm()
    qtbot.addWidget(form)
    declared = specs(PropagationParams)
    assert set(form.editors) == set(declared) - {"detect_divisions"}
    for name, editor in form.editors.items():
        spec = declared[name]
        assert editor.toolTip() == spec.help
        assert form.advanced.isAncestorOf(editor) == spec.advanced, name
        if isinstance(editor, QCheckBox):
            assert spec.kind is bool
            continue
        if isinstance(editor, QComboBox):  # the stain
            assert tuple(editor.itemText(i) for i in range(editor.count())) == spec.choices
            continue
        assert editor.minimum() == spec.low, name
        assert editor.maximum() == (spec.high if spec.high is not None else spec.edit_max), name
    # a value out of the declared range cannot be typed in
    assert form.params(detect_divisions=True).stain == "auto"
    form.editors["stain"].setCurrentText("nuclei")
    assert form.params(detect_divisions=True).stain == "nuclei"
    form.editors["min_iou_prev"].setValue(3)
    assert form.params(detect_divisions=True).min_iou_prev == 1.0
