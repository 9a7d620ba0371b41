"""The settings part of the fine-tune widget: the options of ``devosam finetune``.

Data folders (one or several: bundles, or folders with ``images/`` and ``labels/``), model
("loaded model" = the one given to the widget or loaded in the annotator; vit_b/l/h; or a
checkpoint file), output file, device, and one editor per field of
``finetune.settings.RunSettings`` built from its declaration (``_qt.param_editors``): steps
(the step budget), an optional epoch cap, max minutes and the learning rate shown, the others
under "Advanced". ``FinetuneForm.read(...)`` checks them and returns the ``JobSettings``, or a
one-sentence problem for a notification.
"""

from __future__ import annotations

import os
from pathlib import Path

from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_devosam._qt.finetune_job import JobSettings
from napari_devosam._qt.param_editors import EditorSet, collapsible
from napari_devosam.finetune.settings import SECTIONS, RunSettings

LOADED = "loaded model"
CHECKPOINT = "checkpoint file"
MODEL_CHOICES = (LOADED, "vit_b", "vit_l", "vit_h", CHECKPOINT)


def _devices() -> list[str]:
    try:
        from napari_devosam.utils.devices import available_devices

        return available_devices()
    except Exception:  # noqa: BLE001 - the list is a convenience; "auto" always works
        return ["cpu"]


def _with_browse(edit: QLineEdit, slot) -> QWidget:
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(edit)
    btn = QPushButton("...")
    btn.setMaximumWidth(30)
    btn.clicked.connect(slot)
    row.addWidget(btn)
    return box


class FinetuneForm(QWidget):
    """Editable fine-tuning settings; ``read()`` validates them."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Data folders (bundles, or folders with images/ and labels/):"))
        self.data_list = QListWidget()
        self.data_list.setMaximumHeight(80)
        layout.addWidget(self.data_list)
        row = QHBoxLayout()
        add_btn, rm_btn = QPushButton("Add folder..."), QPushButton("Remove")
        add_btn.clicked.connect(self._browse_data)
        rm_btn.clicked.connect(self._remove_selected)
        row.addWidget(add_btn)
        row.addWidget(rm_btn)
        layout.addLayout(row)

        form = QFormLayout()
        self.model_combo = QComboBox()
        self.model_combo.addItems(MODEL_CHOICES)
        self.model_combo.setToolTip("'loaded model' reuses the annotator's model (no second "
                                    "load, same embedding cache)")
        self.model_combo.currentTextChanged.connect(self._model_choice_changed)
        form.addRow("Model", self.model_combo)
        self.checkpoint_edit = QLineEdit()
        self.checkpoint_edit.setPlaceholderText("SAM checkpoint (.pth)")
        form.addRow("Checkpoint", _with_browse(self.checkpoint_edit, self._browse_checkpoint))
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("decoder.safetensors")
        form.addRow("Output", _with_browse(self.out_edit, self._browse_out))
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", *_devices()])
        form.addRow("Device", self.device_combo)
        layout.addLayout(form)
        self.advanced_button, self.advanced = collapsible(layout)
        advanced = QFormLayout(self.advanced)
        advanced.setContentsMargins(0, 0, 0, 0)
        self.settings_editors = EditorSet(RunSettings, form, advanced, SECTIONS)
        editors = self.settings_editors.editors
        self.steps_spin, self.epochs_spin = editors["steps"], editors["epochs"]
        self.minutes_spin, self.lr_edit = editors["max_minutes"], editors["lr"]
        self._model_choice_changed(self.model_combo.currentText())

    # -- browsing --------------------------------------------------------------------------

    def _model_choice_changed(self, text: str) -> None:
        self.checkpoint_edit.setEnabled(text == CHECKPOINT)

    def _browse_data(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Training data folder")
        if folder:
            self.add_data_dir(folder)

    def _remove_selected(self) -> None:
        for item in self.data_list.selectedItems():
            self.data_list.takeItem(self.data_list.row(item))

    def _browse_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SAM checkpoint", "",
                                              "Checkpoints (*.pth *.pt *.safetensors)")
        if path:
            self.checkpoint_edit.setText(path)
            self.model_combo.setCurrentText(CHECKPOINT)

    def _browse_out(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Decoder file", self.out_edit.text(),
                                              "safetensors (*.safetensors)")
        if path:
            self.set_output(path)

    # -- values ----------------------------------------------------------------------------

    def add_data_dir(self, path: str | os.PathLike) -> None:
        """Append a data folder; the output defaults to ``<first folder>/decoder.safetensors``."""
        self.data_list.addItem(str(path))
        if not self.out_edit.text().strip():
            self.set_output(Path(path) / "decoder.safetensors")

    def set_data_dirs(self, paths) -> None:
        self.data_list.clear()
        for p in paths:
            self.add_data_dir(p)

    def data_dirs(self) -> list[Path]:
        return [Path(self.data_list.item(i).text()) for i in range(self.data_list.count())]

    def set_output(self, path: str | os.PathLike) -> None:
        self.out_edit.setText(str(path))

    def read(self, loaded_model=None, cache=None) -> JobSettings | str:
        """The settings, or a sentence saying what is wrong with them.

        ``loaded_model``: the ``Sam`` that "loaded model" means (None: load vit_b instead);
        ``cache``: an embedding cache to share (the annotator's).
        """
        dirs = self.data_dirs()
        if not dirs:
            return "Add at least one data folder (with images/ and labels/)."
        for d in dirs:
            if not d.is_dir():
                return f"Data folder {d} does not exist."
        out_text = self.out_edit.text().strip()
        if not out_text or Path(out_text).is_dir():
            return "Choose an output file for the decoder (e.g. decoder.safetensors)."
        try:
            settings = RunSettings.from_dict(self.settings_editors.values())
        except ValueError as exc:
            return f"Check the settings: {exc}."
        choice = self.model_combo.currentText()
        if choice == CHECKPOINT:
            model = self.checkpoint_edit.text().strip()
            if not model or not Path(model).expanduser().is_file():
                return f"No checkpoint file at {model!r}."
        elif choice == LOADED:
            model = loaded_model if loaded_model is not None else "vit_b"
        else:
            model = choice
        return JobSettings(data_dirs=dirs, model=model, out=Path(out_text).expanduser(),
                           settings=settings, device=self.device_combo.currentText(),
                           cache=cache)
