"""The annotator's model panel: which SAM, on which device, with which decoder.

Loading runs in a napari ``thread_worker`` (a download shows its progress in napari's
activity dock and can be cancelled there); failures become napari notifications.
The model preset is the one default rule (``models.defaults.default_model``:
``DEVOSAM_CHECKPOINT``, else the best cached official checkpoint, else the bundled model),
shown under the choice with its reason; ``DEVOSAM_DEVICE`` presets the device.

``loaded`` (a ``LoadedModel``) names the model in use, its device and precision: its ``key``
is the one under which the CLI and the annotator record per-plane times
(``models.registry.timing_key``), read by the estimates before long work.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from pathlib import Path

from napari.utils.notifications import show_error
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from napari_devosam._qt.workers import create_job
from napari_devosam.models.registry import (
    BUNDLED,
    MODEL_NAMES,
    canonical_name,
    is_bundled,
    recommended_bundled,
    timing_key,
)

CHECKPOINT_CHOICE = "checkpoint file"
BUNDLED_CHOICE = recommended_bundled()  # shipped in the package: offline, from the first start
DEMO_CHOICE = canonical_name("demo")  # "demo" is an alias of a bundled model
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class LoadedModel:
    """The model in use: ``name`` (as the CLI's ``--model`` names it: a registry or bundled
    name, or the checkpoint path; ``"injected <architecture>"`` for a model handed to the
    annotator), ``device`` (``"cpu"``, ``"cuda:0"``) and encoder ``precision``."""

    name: str
    device: str
    precision: str

    @property
    def key(self) -> str:
        """The key of its recorded per-plane times (``models.registry.timing_key``)."""
        return timing_key(self.name, self.device, self.precision)


def loaded_model(sam, name: str | None = None) -> LoadedModel:
    """``LoadedModel`` of ``sam`` loaded by ``name`` (None: a model injected by a caller)."""
    from napari_devosam.models.identity import architecture_name
    from napari_devosam.models.precision import precision_of

    if not name:
        try:
            name = f"injected {architecture_name(sam)}"
        except AttributeError:  # not a segment_anything Sam (a test's stand-in)
            name = f"injected {type(sam).__name__}"
    device = getattr(getattr(sam, "pixel_mean", None), "device", "cpu")
    return LoadedModel(name, str(device), precision_of(sam))


def bundled_choices() -> list[str]:
    """The bundled models offered: the recommended one first, then the others by name."""
    first = recommended_bundled()
    return [first, *(n for n in BUNDLED if n != canonical_name(first))]


def _load_job(choice: str, path: str, device: str, precision: str = "fp32"):
    """Generator for a worker: yields download progress, returns ``(sam, description)``."""
    from napari_devosam.utils.heavy_imports import ensure_imported

    ensure_imported()  # done on the GUI thread already (create_job); never raced here
    from napari_devosam.models.identity import architecture_name
    from napari_devosam.models.loading import iter_load_model

    if is_bundled(choice):
        sam = yield from iter_load_model(choice, device, precision=precision)
        desc = f"{choice}, bundled"
    elif choice == CHECKPOINT_CHOICE:
        if not path:
            raise ValueError("choose a checkpoint file first")
        sam = yield from iter_load_model(path, device, precision=precision)
        desc = f"{architecture_name(sam)} from {Path(path).name}"
    else:
        sam = yield from iter_load_model(choice, device, precision=precision)
        arch = architecture_name(sam)
        desc = choice if arch == choice else f"{choice} ({arch})"
    where = sam.device.type + (", bf16 encoder" if precision == "bf16" else "")
    return sam, f"{desc} ({where})"


class ModelPanel(QGroupBox):
    """Model choice, device, decoder file and what is active. Emits ``model_ready(sam, text)``
    after a successful load and ``decoder_requested(path)`` when the user picks a decoder."""

    model_ready = Signal(object, str)
    decoder_requested = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Model", parent)
        self._worker = None
        self._bar = None
        self.loaded: LoadedModel | None = None  # the model in use (``set_loaded``)
        self._loaded_sam = None  # a weak reference to it
        self.model_combo = QComboBox()
        self.model_combo.addItems([*MODEL_NAMES, *bundled_choices(), CHECKPOINT_CHOICE])
        self.default_label = QLabel()  # which model the default rule chose, and why
        self.default_label.setWordWrap(True)
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("checkpoint .pth / .safetensors")
        browse = QPushButton("...")
        browse.clicked.connect(self._browse_checkpoint)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.precision_combo = QComboBox()
        self.precision_combo.addItems(PRECISIONS)
        self.precision_combo.setToolTip("image encoder precision: bf16 is about 3x faster on "
                                        "CPUs with AMX/AVX512-BF16 and recent GPUs")
        self.load_button = QPushButton("Load model")
        self.load_button.clicked.connect(self.load)
        self.decoder_edit = QLineEdit()
        self.decoder_edit.setPlaceholderText("fine-tuned decoder .safetensors")
        dec_browse = QPushButton("...")
        dec_browse.clicked.connect(self._browse_decoder)
        self.decoder_button = QPushButton("Use decoder")
        self.decoder_button.clicked.connect(self._use_decoder)
        self.active_label = QLabel()
        self.active_label.setWordWrap(True)
        self.set_active(None)

        grid = QGridLayout()
        grid.addWidget(QLabel("model"), 0, 0)
        grid.addWidget(self.model_combo, 0, 1)
        grid.addWidget(QLabel("device"), 0, 2)
        grid.addWidget(self.device_combo, 0, 3)
        row = QHBoxLayout()
        row.addWidget(self.path_edit)
        row.addWidget(browse)
        grid.addLayout(row, 1, 0, 1, 4)
        grid.addWidget(QLabel("precision"), 2, 2)
        grid.addWidget(self.precision_combo, 2, 3)
        grid.addWidget(self.load_button, 3, 0, 1, 4)
        drow = QHBoxLayout()
        drow.addWidget(self.decoder_edit)
        drow.addWidget(dec_browse)
        drow.addWidget(self.decoder_button)
        grid.addLayout(drow, 4, 0, 1, 4)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.default_label)
        layout.addWidget(self.active_label)
        self._apply_environment()

    def _apply_environment(self) -> None:
        from napari_devosam.models.defaults import default_model

        rule = default_model()  # never a download: real masks offline from the first start
        self.select(rule.model)
        self.default_label.setText(f"default {rule.describe()}")
        device = os.environ.get("DEVOSAM_DEVICE", "").strip().lower()
        if device:
            base = device.split(":")[0]
            if self.device_combo.findText(device) < 0 and base not in DEVICES:
                self.device_combo.addItem(device)
            self.device_combo.setCurrentText(device if self.device_combo.findText(device) >= 0
                                             else base)
        self._select_precision("auto")

    def _select_precision(self, precision: str) -> None:
        from napari_devosam.models.precision import resolve_precision

        try:
            self.precision_combo.setCurrentText(resolve_precision(precision))
        except ValueError as exc:  # a bad DEVOSAM_PRECISION: say so, keep fp32
            show_error(str(exc))

    def available_offline(self) -> bool:
        """True when the chosen model needs no download (a local file or a cached one)."""
        choice = self.model_combo.currentText()
        if is_bundled(choice):
            return True
        if choice == CHECKPOINT_CHOICE:
            return Path(self.path_edit.text()).expanduser().is_file()
        from napari_devosam.models.download import is_cached

        return is_cached(choice)

    def select(self, model: str | None = None, device: str | None = None,
               precision: str | None = None) -> None:
        """Preset the choices: ``model`` a name ("embryo_tiny", alias "demo", "vit_b", ...) or
        a checkpoint path; ``precision`` "auto", "fp32" or "bf16"."""
        if precision:
            self._select_precision(precision)
        if model:
            if model in MODEL_NAMES:
                self.model_combo.setCurrentText(model)
            elif is_bundled(model):
                same = [c for c in bundled_choices() if canonical_name(c) == canonical_name(model)]
                self.model_combo.setCurrentText(model if model in same else same[0])
            else:
                self.model_combo.setCurrentText(CHECKPOINT_CHOICE)
                self.path_edit.setText(str(model))
        if device:
            if self.device_combo.findText(device) < 0:
                self.device_combo.addItem(device)
            self.device_combo.setCurrentText(device)

    @property
    def loading(self) -> bool:
        return self._worker is not None

    def load(self):
        """Load the chosen model in a worker; returns the worker (None if one is running)."""
        from napari.utils import progress

        if self._worker is not None:
            return None
        choice = self.model_combo.currentText()
        try:
            worker = create_job(_load_job, choice, self.path_edit.text().strip(),
                                self.device_combo.currentText(),
                                self.precision_combo.currentText())
        except Exception as exc:  # noqa: BLE001 - e.g. segment_anything cannot be imported
            show_error(f"Could not load the model: {exc}")
            return None
        name = self.path_edit.text().strip() if choice == CHECKPOINT_CHOICE else choice
        self._bar = progress(total=0, desc=f"loading {choice}")
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda res: self._loaded(name, *res))
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.load_button.setEnabled(False)
        self.active_label.setText(f"loading {choice} ...")
        worker.start()
        return worker

    def _loaded(self, name: str, sam, text: str) -> None:
        self.set_loaded(sam, name)
        self.model_ready.emit(sam, text)

    def set_loaded(self, sam, name: str | None = None) -> None:
        """``sam`` is the model in use, loaded by ``name`` (``loaded_model``); a model
        already set keeps its name when set again without one."""
        if name is None and self._loaded_sam is not None and self._loaded_sam() is sam:
            return
        self.loaded = loaded_model(sam, name)
        self._loaded_sam = weakref.ref(sam)

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.quit()

    def _on_progress(self, value):
        done, total = value
        if self._bar is not None:
            if total and self._bar.total != total:
                self._bar.total = total
                self._bar.set_description("downloading SAM checkpoint")
            self._bar.update(done - self._bar.n)

    def _on_error(self, exc):
        from napari_devosam._qt.presentation import error_text

        show_error(error_text(exc, "loading the model"))

    def _on_finished(self):
        self._worker = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.load_button.setEnabled(True)
        if self.active_label.text().startswith("loading"):
            self.set_active(None)

    def set_active(self, model: str | None, decoder: str | None = None) -> None:
        if model is None:
            self.active_label.setText("<b>no model loaded</b>: choose one and press Load model")
            return
        self.active_label.setText(f"<b>active:</b> {model}<br><b>decoder:</b> "
                                  f"{decoder or 'base (from the checkpoint)'}")

    def _browse_checkpoint(self):
        path, _ = QFileDialog.getOpenFileName(self, "SAM checkpoint", "",
                                              "Checkpoints (*.pth *.pt *.safetensors);;All (*)")
        if path:
            self.path_edit.setText(path)
            self.model_combo.setCurrentText(CHECKPOINT_CHOICE)

    def _browse_decoder(self):
        path, _ = QFileDialog.getOpenFileName(self, "Fine-tuned decoder", "",
                                              "Decoders (*.safetensors);;All (*)")
        if path:
            self.decoder_edit.setText(path)
            self._use_decoder()

    def _use_decoder(self):
        path = self.decoder_edit.text().strip()
        if path:
            self.decoder_requested.emit(path)
