"""The "Fine-tune decoder" widget: ``devosam finetune`` with a live curve and a Cancel button.

Settings mirror the CLI (data folders, model, output file, epochs, max minutes, device, learning
rate). Start runs ``finetune_job.run_job`` in a napari generator worker; its progress events
arrive on the GUI thread through ``yielded``, which only updates widgets. When training ends the
widget shows the validation IoU before -> after and offers "Use in annotator", which swaps the
new decoder into the docked SAM annotator (no embedding is recomputed: the encoder is frozen).
A run that did not beat the starting decoder wrote nothing: the widget says so (a warning)
and offers nothing to use.
Problems are napari notifications, never dialogs or exceptions.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from napari_devosam._qt.finetune_annotator import (
    cache_of,
    find_annotator,
    model_of,
    normalization_of,
)
from napari_devosam._qt.finetune_form import LOADED, FinetuneForm
from napari_devosam._qt.finetune_job import JobOutcome, JobSettings, LoadProgress, run_job
from napari_devosam._qt.finetune_plot import FinetunePlot
from napari_devosam._qt.workers import create_job, show_progress
from napari_devosam.finetune.progress_text import describe, improved, read_event, result_summary


def _notify(kind: str, message: str) -> None:
    from napari.utils import notifications

    {"error": notifications.show_error, "warning": notifications.show_warning,
     "info": notifications.show_info}[kind](message)


class FinetuneWidget(QWidget):
    """Fine-tune SAM's mask decoder on annotated data folders, from napari.

    ``model``: a loaded ``Sam`` to train (default: the docked annotator's model, else one
    loaded by name/checkpoint in the worker). ``finished`` is emitted with the job's
    ``JobOutcome`` (result, cancelled, or error) once the worker is done.
    """

    finished = Signal(object)

    def __init__(self, napari_viewer=None, model=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self._model = model
        self._annotator = None
        self._worker = None
        self._stop: threading.Event | None = None
        self._pbar = None
        self._outcome: JobOutcome | None = None
        self._iou_before: float | None = None
        self._build()

    # -- UI --------------------------------------------------------------------------------

    def _build(self) -> None:
        from napari_devosam._qt.presentation import scroll_layout

        layout = scroll_layout(self)  # a tall dock scrolls instead of growing the window
        self.form = FinetuneForm()
        layout.addWidget(self.form)
        row = QHBoxLayout()
        self.start_btn, self.cancel_btn = QPushButton("Start"), QPushButton("Cancel")
        self.estimate_btn = QPushButton("Estimate time")
        self.estimate_btn.setToolTip("Time a few steps on a copy of the decoder and say how "
                                     "long the run will take (nothing is trained or written)")
        self.estimate_btn.clicked.connect(self.estimate)
        row.addWidget(self.estimate_btn)
        self.start_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.cancel)
        self.cancel_btn.setEnabled(False)
        row.addWidget(self.start_btn)
        row.addWidget(self.cancel_btn)
        layout.addLayout(row)
        self.progress_bar = QProgressBar()
        layout.addWidget(self.progress_bar)
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        layout.addWidget(self.estimate_label)
        self.status_label = QLabel("Idle.")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        self.iou_label = QLabel("")
        self.iou_label.setWordWrap(True)
        layout.addWidget(self.iou_label)
        self.plot = FinetunePlot()
        layout.addWidget(self.plot)
        self.use_btn = QPushButton("Use in annotator")
        self.use_btn.setToolTip("Swap the new decoder into the SAM annotator (no embedding is "
                                "recomputed: the image encoder did not change)")
        self.use_btn.setEnabled(False)
        self.use_btn.clicked.connect(self.use_in_annotator)
        layout.addWidget(self.use_btn)
        layout.addStretch(1)

    # -- public settings -------------------------------------------------------------------

    def set_model(self, sam) -> None:
        """Train ``sam`` (on its own copy of the decoder) instead of the annotator's model."""
        self._model = sam
        self.form.model_combo.setCurrentText(LOADED)

    def set_annotator(self, annotator) -> None:
        """Use this annotator (anything with ``use_decoder(path)``) instead of looking one up."""
        self._annotator = annotator

    def add_data_dir(self, path: str | os.PathLike) -> None:
        """Append a data folder; the output defaults to ``<first folder>/decoder.safetensors``."""
        self.form.add_data_dir(path)

    def set_data_dirs(self, paths) -> None:
        self.form.set_data_dirs(paths)

    def data_dirs(self) -> list[Path]:
        return self.form.data_dirs()

    def set_output(self, path: str | os.PathLike) -> None:
        self.form.set_output(path)

    @property
    def worker(self):
        """The running napari worker, or None."""
        return self._worker

    @property
    def is_running(self) -> bool:
        return self._worker is not None

    @property
    def outcome(self) -> JobOutcome | None:
        """The last finished job's outcome (``.result`` is the core's result on success)."""
        return self._outcome

    # -- running ---------------------------------------------------------------------------

    def annotator(self):
        """The annotator to hand decoders to: the one set, else the one docked in the viewer."""
        return self._annotator if self._annotator is not None else find_annotator(self.viewer)

    def _settings(self) -> JobSettings | None:
        annotator = self.annotator()
        loaded = self._model if self._model is not None else model_of(annotator)
        settings = self.form.read(loaded, cache_of(annotator))
        if isinstance(settings, str):
            _notify("error", settings)
            return None
        if settings.model == "vit_b" and self.form.model_combo.currentText() == LOADED:
            _notify("info", "No SAM model is loaded in the annotator; loading vit_b.")
        normalization = normalization_of(annotator)
        if normalization is not None:
            settings.extra["normalization"] = normalization
        return settings

    def estimate(self) -> None:
        """Measure the run's time in a worker (the estimate shows above the status line);
        nothing is trained or written."""
        self.start(estimate_only=True)

    def start(self, estimate_only: bool = False) -> None:
        """Start fine-tuning in a worker thread (does nothing while a run is going)."""
        if self._worker is not None:
            return
        settings = self._settings()
        if settings is None:
            return
        settings.estimate_only = bool(estimate_only)
        from napari.utils import progress

        self.plot.clear()
        self._outcome, self._iou_before = None, None
        self.use_btn.setEnabled(False)
        self.iou_label.setText("")
        self.status_label.setText("Starting...")
        self._stop = stop = threading.Event()
        # closing napari while training: stop the worker at its next step
        self.destroyed.connect(lambda *_: stop.set())
        self._pbar = progress(total=0, desc="Fine-tuning decoder")
        worker = create_job(run_job, settings, self._stop)
        worker.yielded.connect(self._on_event)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.start_btn.setEnabled(False)
        self.estimate_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        worker.start()

    def cancel(self) -> None:
        """Stop at the next progress event; the previous decoder file stays as it was."""
        if self._stop is not None:
            self._stop.set()
            self.status_label.setText("Cancelling...")
            self.cancel_btn.setEnabled(False)

    def _on_event(self, event) -> None:
        if isinstance(event, LoadProgress):
            mb = f"{event.done / 1e6:.0f} / {event.total / 1e6:.0f} MB" if event.total else ""
            self.status_label.setText(f"Loading the model... {mb}")
            self._set_progress(event.done, event.total)
            return
        ev = read_event(event)
        if ev.phase == "train" and ev.loss is not None:
            self.plot.add_loss(ev.x, ev.loss)
        if ev.phase == "validate" and ev.val_iou is not None:
            self.plot.add_val_iou(ev.x, ev.val_iou)
            if self._iou_before is None:
                self._iou_before = ev.val_iou
            best = ev.best_val_iou if ev.best_val_iou is not None else ev.val_iou
            self.iou_label.setText(f"Validation IoU: before {self._iou_before:.3f}, "
                                   f"now {ev.val_iou:.3f}, best {best:.3f}")
        eta = getattr(event, "eta", None)
        if ev.phase == "embed" and eta is not None and ev.message:  # the run's estimate
            self.estimate_label.setText(ev.message[0].upper() + ev.message[1:])
        elif eta is not None and ev.phase == "train":
            from napari_devosam.utils.estimate import duration

            self.estimate_label.setText(f"About {duration(eta)} left.")
        self.status_label.setText(describe(ev))
        if ev.phase in ("embed", "train"):
            self._set_progress(ev.step, ev.total_steps,
                               "Embedding planes" if ev.phase == "embed" else "Fine-tuning decoder")

    def _set_progress(self, done: int, total: int, desc: str | None = None) -> None:
        total, done = max(int(total), 0), max(int(done), 0)
        self.progress_bar.setRange(0, total)  # (0, 0) = busy indicator
        self.progress_bar.setValue(min(done, total))
        show_progress(self._pbar, done, total, desc)

    def _on_returned(self, outcome: JobOutcome) -> None:
        self._outcome = outcome
        if outcome.estimate:
            self.estimate_label.setText(outcome.estimate[0].upper() + outcome.estimate[1:])
            self.status_label.setText("Idle.")
        elif outcome.cancelled:
            self.status_label.setText("Cancelled; the previous decoder file is unchanged.")
            _notify("info", "Fine-tuning cancelled; the previous decoder file is unchanged.")
        elif outcome.error is not None:
            self._report_error(outcome.error)
        elif not improved(outcome.result):
            text, _ = result_summary(outcome.result)
            self.status_label.setText(f"Done: {text}")
            self.iou_label.setText(text)
            _notify("warning", f"Fine-tuning finished. {text}")
        else:
            text, path = result_summary(outcome.result)
            self.status_label.setText(f"Done: saved {path}")
            self.iou_label.setText(text)
            self.use_btn.setEnabled(True)
            _notify("info", f"Fine-tuned decoder saved to {path}. {text}")

    def _on_errored(self, exc: BaseException) -> None:
        self._outcome = JobOutcome(error=exc)
        self._report_error(exc)

    def _report_error(self, exc: BaseException) -> None:
        from napari_devosam._qt.presentation import error_text

        self.status_label.setText(f"Failed: {exc}")
        _notify("error", error_text(exc, "fine-tuning"))

    def _on_finished(self) -> None:
        if self._pbar is not None:
            self._pbar.close()
        self._pbar, self._worker, self._stop = None, None, None
        self.start_btn.setEnabled(True)
        self.estimate_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)
        self.finished.emit(self._outcome)

    # -- the loop back into the annotator --------------------------------------------------

    def decoder_path(self) -> Path | None:
        """The decoder file written by the last successful run, or None."""
        if self._outcome is None or self._outcome.result is None:
            return None
        return result_summary(self._outcome.result)[1]

    def use_in_annotator(self) -> bool:
        """Swap the last trained decoder into the annotator; True when it was applied.

        Calls ``annotator.use_decoder(path)``, which loads the weights in place and keeps
        every embedding (the image encoder is unchanged); it returns None when it refused."""
        path = self.decoder_path()
        if path is None:
            _notify("warning", "Train a decoder first.")
            return False
        annotator = self.annotator()
        if annotator is None:
            _notify("warning", "Open the SAM annotator first, then press 'Use in annotator'.")
            return False
        try:
            applied = annotator.use_decoder(path)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            _notify("error", f"The annotator could not use {path}: {exc}")
            return False
        if applied is None:  # the annotator refused it and said why
            return False
        _notify("info", f"The annotator now uses the decoder {path.name}.")
        return True

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.cancel()
        super().closeEvent(event)
