"""The annotator's "Segment all" panel: automatic proposals for one plane or every plane.

A napari ``thread_worker`` runs ``automatic.segment_all`` (embeddings through the annotator's
cache) with a progress bar and Cancel; the results become *proposals*: the current objects of
their planes (``automatic.proposals``), shown in the ``current object`` layer. "Remove by
click" makes a click on a proposal delete it; the annotator's Commit (this plane) or "Commit
all proposals" (every plane) stores them. Nothing is committed without that click, planes
whose current objects come from the user's prompts are left alone, earlier proposals are
replaced (one step the annotator's Undo takes back until the next store change), prompts
drawn on a plane with proposals add their objects to them (``annotation.state``), committed
pixels are never proposed, the message says what changed (and why nothing did), and a
cancelled run changes nothing. While it runs, the message says the time left from the planes
done so far; a finished run records its per-plane time for the next estimate
(``estimates.RunTiming``).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from napari.utils.notifications import show_info, show_warning
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QLabel,
    QProgressBar,
    QPushButton,
)

from napari_devosam._qt.presentation import stain_text
from napari_devosam._qt.workers import create_job
from napari_devosam.automatic.limits import MAX_PIXELS
from napari_devosam.utils.text import count


def _job(image, planes, model, mode, stain, diameter=None, second_round=True):
    from napari_devosam.automatic.core import iter_segment_stack

    return (yield from iter_segment_stack(image, model, planes, mode=mode, stain=stain,
                                          diameter=diameter, second_round=second_round))


class SegmentAllPanel(QGroupBox):
    """"Segment all" controls of an ``AnnotatorWidget`` ``w``."""

    def __init__(self, w):
        from napari_devosam.automatic.core import MODES
        from napari_devosam.automatic.seeds import STAINS

        super().__init__("Segment all (automatic proposals)")
        self.w = w
        self.worker = self.timing = None
        self._replaced = None  # (state, {plane: (prompts, result)}) the last run replaced
        w.store_changed.connect(self._forget_replaced)
        self.mode_combo, self.stain_combo = QComboBox(), QComboBox()
        self.mode_combo.addItems(list(MODES))
        self.stain_combo.addItems(list(STAINS[::-1]))  # auto first
        self.diameter_spin = QDoubleSpinBox()  # 0: estimated from the image
        self.diameter_spin.setRange(0.0, float(int(MAX_PIXELS ** 0.5)))  # check_plane_size
        self.diameter_spin.setDecimals(0)
        self.diameter_spin.setSuffix(" px")
        self.diameter_spin.setSpecialValueText("auto")
        self.diameter_spin.setToolTip("cell (membrane) or nucleus (nuclear stain) diameter; "
                                      "auto: estimated from each plane")
        self.second_check = QCheckBox("look again for dim nuclei")
        self.second_check.setChecked(True)
        self.second_check.setToolTip("nuclear stain: a second round, where no object was "
                                     "found, for nuclei dimmer than the stain seeds' threshold")
        self.stain_combo.currentTextChanged.connect(  # no nuclei to look for (trial 17)
            lambda stain: self.second_check.setEnabled(stain != "membrane"))
        self.plane_button = QPushButton("Segment this plane")
        self.all_button = QPushButton("Segment all planes")
        self.cancel_button = QPushButton("Cancel")
        self.remove_button = QPushButton("Remove by click")
        self.remove_button.setCheckable(True)
        self.commit_button = QPushButton("Commit all proposals")
        self.progress = QProgressBar()
        self.message = QLabel()
        self.message.setWordWrap(True)
        w.history_stepped.connect(self.message.setText)
        self.estimate = QLabel()  # how long "Segment all planes" will take (issue 25)
        self.estimate.setWordWrap(True)
        grid = QGridLayout(self)
        for row, widgets in enumerate([
            (QLabel("mode"), self.mode_combo), (QLabel("stain"), self.stain_combo),
            (QLabel("diameter"), self.diameter_spin), (self.second_check,),
            (self.plane_button, self.all_button),
            (self.progress, self.cancel_button),
            (self.remove_button, self.commit_button)]):
            for col, widget in enumerate(widgets):
                grid.addWidget(widget, row, col)
        grid.addWidget(self.estimate, 7, 0, 1, 2)
        grid.addWidget(self.message, 8, 0, 1, 2)
        self.plane_button.clicked.connect(lambda: self.run(all_planes=False))
        self.all_button.clicked.connect(lambda: self.run(all_planes=True))
        self.cancel_button.clicked.connect(self.cancel)
        self.remove_button.toggled.connect(self._remove_mode)
        self.commit_button.clicked.connect(self.commit_all)
        self.mode_combo.currentTextChanged.connect(self._mode_changed)
        self._set_busy(False)

    # -- running ----------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.worker is not None

    def _set_busy(self, busy: bool) -> None:
        self.plane_button.setEnabled(not busy)
        self.all_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)

    def run(self, all_planes: bool = False):
        """Start segmenting the current plane (or every plane); returns the worker or None."""
        from napari_devosam.engine.stacks import plane_indices

        w = self.w
        if w.predictor is None or w.state is None or self.busy:
            if not self.busy:
                show_warning("Load a model and choose an image first.")
            return None
        from napari_devosam.automatic.core import grid_note
        from napari_devosam.automatic.limits import check_diameter, check_plane_size

        try:
            check_plane_size(w.state.plane_shape)
            check_diameter(self.diameter_spin.value() or None, w.state.plane_shape)
        except ValueError as exc:
            show_warning(f"Segment all: {exc}")
            self.message.setText(str(exc))
            return None
        note = grid_note(w.predictor.sam) if self.mode_combo.currentText() == "grid" else None
        if note:
            show_warning(f"Segment all: {note}")
        data = w.image_layer.data
        planes = plane_indices(np.empty(w.state.shape[:-2] + (1, 1)))
        if not all_planes:
            planes = [w.current_plane]
        model = SimpleNamespace(sam=w.predictor.sam, cache=w.cache,
                                normalization=w.predictor.normalization,
                                zoom=w.predictor.zoom)
        worker = create_job(
            _job, data, planes, model, self.mode_combo.currentText(),
            self.stain_combo.currentText(), self.diameter_spin.value() or None,
            self.second_check.isChecked(),
            progress={"total": len(planes), "desc": "Segment all"})
        from napari_devosam._qt.estimates import RunTiming
        from napari_devosam.utils.estimate import auto_step

        timing = self.timing = RunTiming(w, auto_step(self.mode_combo.currentText()))
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda res, st=w.state, t=timing: self._on_results(res, st, t))
        worker.errored.connect(lambda exc: show_warning(f"Segment all failed: {exc}"))
        worker.finished.connect(lambda wk=worker: self._finished(wk))
        self.worker = worker
        self.progress.setRange(0, len(planes))
        self.progress.setValue(0)
        self.message.setText(f"segmenting {count(len(planes), 'plane')}...")
        self._set_busy(True)
        worker.start()
        return worker

    def _forget_replaced(self) -> None:
        """A store change (a commit, an undo) since the run: Undo is the store's again."""
        self._replaced = None

    def cancel(self) -> None:
        """Stop the run between planes; nothing it computed is shown."""
        if self.worker is not None:
            self.worker.quit()
            self.message.setText("cancelled: nothing was changed")

    def _on_progress(self, value) -> None:
        done, total = value
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        if self.worker is None or self.worker.abort_requested:
            return  # cancelled: the message says so
        left = self.timing.left(done, total) if self.timing is not None else ""
        if left:
            self.message.setText(f"segmenting: {done} of {count(total, 'plane')} done; {left}")

    def _finished(self, worker) -> None:
        if self.worker is worker:
            self.worker = None
            self._set_busy(False)

    def _on_results(self, results, state=None, timing=None) -> None:
        from napari_devosam.automatic.proposals import apply_run

        w = self.w
        if timing is not None and results:
            timing.finished(len(results), list(results))  # the next estimate is measured
        if w.state is None or not results or (state is not None and state is not w.state):
            return  # another image (or none) since the run started
        store = w.store
        run = apply_run(w.state, results,
                        None if store is None else (lambda plane: store.labels[plane]))
        # earlier proposals replaced: one step that the annotator's Undo takes back
        self._replaced = (w.state, run.replaced) if run.replaced else None
        notes = [f"{plane or 'plane'}: {res.message}" for plane, res in results.items()
                 if res.message and plane not in run.empty]
        w._refresh_current()
        w._update_status()
        from napari_devosam.automatic.report import stain_against, summary_lines

        used = [line.replace("--stain", "the stain box").replace("--diameter", "the diameter box")
                for line in summary_lines(results)]
        stain_text(stain_against(results), "the stain box")  # a warning: say it
        self.message.setText("; ".join([run.text(), *used, *notes[:3]]))

    def undo_replace(self) -> bool:
        """Put back the proposals the last run replaced, if nothing was committed since;
        returns whether it did (the annotator's Undo calls it first)."""
        replaced, self._replaced = self._replaced, None
        w = self.w
        if replaced is None or replaced[0] is not w.state:
            return False
        from napari_devosam.automatic.proposals import undo_replaced

        n = undo_replaced(w.state, replaced[1])
        w._refresh_current()
        w._update_status()
        self.message.setText(f"Undo: the earlier proposals of {count(n, 'plane')} are back")
        return True

    # -- correcting and committing ----------------------------------------------------------
    def _mode_changed(self, _mode: str) -> None:
        """Each mode has its own recorded time: the estimate follows the mode shown."""
        from napari_devosam._qt.estimates import update_estimates

        update_estimates(self.w)

    def _remove_mode(self, on: bool) -> None:
        w = self.w
        if w.layers is None:
            return
        layer = w.layers.current
        if on:
            w.viewer.layers.selection.active = layer
            layer.mode = "pan_zoom"
            if self._on_click not in layer.mouse_drag_callbacks:
                layer.mouse_drag_callbacks.append(self._on_click)

    def _on_click(self, layer, event) -> None:
        from napari_devosam.automatic.proposals import remove_proposal_at

        w = self.w
        if not self.remove_button.isChecked() or event.button != 1 or w.state is None:
            return
        plane = w.current_plane
        pos = layer.world_to_data(event.position)[-2:]
        if plane is not None and remove_proposal_at(w.state, plane, *pos):
            w._refresh_current()
            w._update_status()

    def commit_all(self) -> int:
        """Commit the current objects of every plane that has proposals; returns how many
        planes were committed (in order, on the store's thread)."""
        w = self.w
        if w.state is None:
            return 0
        planes = [p for p, r in w.state.results.items()
                  if any(q.get("automatic") for q in r.prompts) and not w.state.is_pending(p)]
        info = {"model": w._model_text, "decoder": w._decoder_text}
        for plane in planes:
            payload = w.state.take_commit(plane)
            if payload is not None:
                w.prompt_loop._remove_prompts(plane)  # prompts drawn over them: committed too
                w.store_ops.commit(plane, payload[0], payload[1], info)
        if not planes:
            show_info("No proposals to commit: run Segment all first.")
        else:  # the run's "N proposals" line no longer holds: say what became of them
            self.message.setText(f"committed the proposals of {count(len(planes), 'plane')}: "
                                 "they are objects now (Undo takes a commit back)")
        w._refresh_current()
        w._update_status()
        return len(planes)
