"""The annotator's "Propagate" panel: carry committed objects through T or Z with SAM.

A run goes through three threads, and the GUI thread only updates layers:

1. the store thread (``SerialJobs``) checks the seeds of the panel's ``TrackingRequest`` and
   copies the line of planes the run reads (``tracking.store_run.prepare_store_run``);
2. a napari worker runs it on that copy (``store_run.run_in_store``), with a bar in the
   activity dock and Cancel; the next plane's embedding is computed in a second thread while
   the current plane decodes (``tracking.prefetch``, through the annotator's cache);
3. the store thread applies the finished plan as one undo step (``apply_and_review``); the
   ``objects`` layer, the ``tracks`` layer and the review list follow.

The controls become the run's ``TrackingRequest`` in ``propagate_form.tracking_request``.
While it runs, the message says the time left from the planes done so far; a finished run
records its per-plane and per-object-plane times for the next estimate
(``estimates.RunTiming``).

Cancel (before step 3) leaves the store exactly as it was. "Propagate from here" recomputes
the selected object's track (and its daughters) beyond its plane, e.g. after a correction;
the selected object is the last one clicked in ``objects``, a review entry's, or the
``objects`` layer's selected label. "Export tracks (CTC)..." writes the store's tracks as they
are, corrections included (``tracking.store_tracks.export_store_tracks``, store thread).
Also: "Import tracks..." (``propagate_import``), "Lineage..." (``lineage_dock``), the grouped
review list (``propagate_review``), colours by track (``lineage_model.LineageModel``).
"""

from __future__ import annotations

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
)

from napari_devosam._qt.estimates import PropagateRange, RunTiming
from napari_devosam._qt.lineage_model import LineageModel
from napari_devosam._qt.presentation import error_text, stain_text
from napari_devosam._qt.propagate_export import export_tracks, nothing_added, replace_confirmed
from napari_devosam._qt.propagate_form import ParamsForm, tracking_request
from napari_devosam._qt.propagate_import import add_track_tools
from napari_devosam._qt.propagate_review import (
    ReviewList,
    events_from_store,
    follow_track_edits,
    jump_to_event,
    run_events,
    still_there,
)
from napari_devosam._qt.propagate_view import color_tracks, show_tracks
from napari_devosam._qt.workers import create_job
from napari_devosam.tracking.prefetch import PrefetchingEmbeddings
from napari_devosam.tracking.records import RunTally
from napari_devosam.tracking.request import TrackingRequest
from napari_devosam.tracking.route import DIRECTIONS
from napari_devosam.tracking.store_run import (
    apply_and_review,
    prepare_store_run,
    run_in_store,
    tracks_data,
)


class PropagatePanel(QGroupBox):
    """Propagate controls of an ``AnnotatorWidget`` ``w``."""

    run_finished = Signal()  # a run ended: applied, cancelled, refused or failed

    def __init__(self, w):
        super().__init__("Propagate (through T or Z)")
        self.w = w
        self.worker = self.embeddings = self.timing = None
        self.selected: int | None = None
        self._busy = self._applying = False
        self._token = None  # the run in progress; None once cancelled
        self._layers = self._line = None  # layers our callbacks are on; (plane, axis) shown
        self._tracks_pending = self._tracks_dirty = False
        self._build()
        self.range = PropagateRange(self)  # issue 25: a window from the plane shown + estimate
        w.store_changed.connect(self._on_store_changed)
        follow_track_edits(self)  # the review list, and the message of an undo or redo
        self.lineage = LineageModel(w, lambda: self.axis_combo.currentData() or 0, self)
        self.lineage.changed.connect(self._lineage_changed)
        self._set_busy(False)

    def _build(self) -> None:
        self.axis_combo, self.direction_combo = QComboBox(), QComboBox()
        self.direction_combo.addItems(list(DIRECTIONS))
        self.first_spin, self.last_spin = QSpinBox(), QSpinBox()
        self.divisions_check = QCheckBox("detect divisions")
        self.divisions_check.setChecked(True)
        self.form = ParamsForm()
        self.run_button = QPushButton("Propagate")
        self.redo_button = QPushButton("Propagate from here")
        self.redo_button.setToolTip("Recompute the selected object's track beyond its plane "
                                    "(click it in 'objects' or pick a review entry first)")
        self.cancel_button = QPushButton("Cancel")
        self.export_button = QPushButton("Export tracks (CTC)...")
        self.export_button.setToolTip("Write the committed tracks of this line of planes as "
                                      "they are: maskNNN.tif + res_track.txt, tracks.csv and "
                                      "(with the geff package) tracks.geff")
        self.progress = QProgressBar()
        self.message, self.selected_label = QLabel(), QLabel("selected: none")
        self.message.setWordWrap(True)
        self.review_list = ReviewList()
        self.review_list.setMaximumHeight(200)

        grid = QGridLayout(self)
        rows = [(QLabel("axis"), self.axis_combo), (QLabel("direction"), self.direction_combo),
                (QLabel("from plane"), self.first_spin), (QLabel("to plane"), self.last_spin),
                (self.divisions_check, self.selected_label)]
        for row, (a, b) in enumerate(rows):
            grid.addWidget(a, row, 0)
            grid.addWidget(b, row, 1)
        grid.addWidget(self.form, 5, 0, 1, 2)
        # row 6: the estimate (``PropagateRange``), right above the button it is about
        for row, (a, b) in enumerate([(self.run_button, self.redo_button),
                                      (self.progress, self.cancel_button)], start=7):
            grid.addWidget(a, row, 0)
            grid.addWidget(b, row, 1)
        grid.addWidget(self.message, 9, 0, 1, 2)
        grid.addWidget(QLabel("to review (click: go there)"), 10, 0, 1, 2)
        grid.addWidget(self.review_list, 11, 0, 1, 2)
        grid.addWidget(self.export_button, 12, 0)
        add_track_tools(self, grid, 12)  # Lineage..., Import tracks...
        self.axis_combo.currentIndexChanged.connect(self._axis_changed)
        self.run_button.clicked.connect(lambda *_: self.run())
        self.redo_button.clicked.connect(lambda *_: self.propagate_from_here())
        self.cancel_button.clicked.connect(lambda *_: self.cancel())
        self.export_button.clicked.connect(lambda *_: self._choose_export_folder())
        self.review_list.picked.connect(lambda event: jump_to_event(self, event))


    # -- image, axes, selection ---------------------------------------------------------
    @property
    def lead(self) -> tuple[int, ...]:
        state = self.w.state
        return () if state is None else tuple(state.shape[:state.n_lead])

    def _image_changed(self) -> None:
        w, self._layers = self.w, self.w.layers
        self.selected, self._line = None, None
        self.review_list.set_events([])
        self._set_selected(None)
        show_tracks(w.viewer, None, None, None, (), 0)  # an earlier image's tracks go
        if w.layers is not None:
            w.layers.objects.mouse_drag_callbacks.append(self._on_objects_click)
            w.layers.objects.events.selected_label.connect(self._on_selected_label)
        self.axis_combo.blockSignals(True)
        self.axis_combo.clear()
        if len(self.lead) == 2:
            self.axis_combo.addItem("T", 0)
            self.axis_combo.addItem("Z", 1)
        elif len(self.lead) == 1:
            offset = w.viewer.dims.ndim - w.image_layer.ndim
            label = str(w.viewer.dims.axis_labels[offset]).lower()
            self.axis_combo.addItem("Z" if label.startswith("z") else "T", 0)
        self.axis_combo.blockSignals(False)
        self.message.setText("" if self.lead or w.layers is None else
                             "A 2D image has no T or Z axis to propagate along.")
        self._axis_changed()

    def _axis_changed(self, *_) -> None:
        axis, lead = self.axis_combo.currentData(), self.lead
        n = lead[axis] if axis is not None and axis < len(lead) else 1
        for spin, value in ((self.first_spin, 0), (self.last_spin, n - 1)):
            spin.setRange(0, max(n - 1, 0))
            spin.setValue(value)
        self.range.reset()
        self.divisions_check.setChecked(self.axis_combo.currentText() == "T")
        events_from_store(self)

    def _set_selected(self, object_id) -> None:
        self.selected = int(object_id) if object_id else None
        self.selected_label.setText(f"selected: object {self.selected}" if self.selected
                                    else "selected: none")

    def _on_objects_click(self, layer, event) -> None:
        w = self.w
        if event.button != 1 or w.store is None or w.current_plane is None:
            return
        object_id = w.store.object_at(w.current_plane, layer.world_to_data(event.position)[-2:])
        if object_id:
            self._set_selected(object_id)

    def _on_selected_label(self, event=None) -> None:
        if self.w.layers is not None:
            self._set_selected(self.w.layers.objects.selected_label)

    # -- running ------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._busy

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.run_button.setEnabled(not busy)
        self.redo_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)

    def _idle(self) -> None:
        self.worker = self.embeddings = None
        self._applying = False
        self._set_busy(False)
        self.run_finished.emit()

    def _request(self, selected=None) -> TrackingRequest | None:
        """The run the controls describe, or None (after a notification) when impossible."""
        return tracking_request(self, selected)

    def run(self) -> bool:
        """Propagate the committed objects of the plane shown; True when a run started."""
        return self._start(self._request())

    def propagate_from_here(self) -> bool:
        """Recompute the selected object's track beyond its plane (one undo step)."""
        if self.selected is None:
            show_info("Select an object first: click it in 'objects' (or pick a review "
                      "entry), then Propagate from here.")
            return False
        return self._start(self._request(self.selected))

    def _start(self, request: TrackingRequest | None) -> bool:
        if request is None or self.busy:
            return False
        token = self._token = object()
        self._set_busy(True)
        self.progress.setRange(0, 0)
        self.message.setText("reading the committed objects ...")
        self.w.jobs.submit(prepare_store_run, self.w.store, request,
                           on_done=lambda res, err: self._prepared(token, res, err))
        return True

    def _prepared(self, token, run, error) -> None:
        w = self.w
        if token is not self._token or w.sam is None or w.image_layer is None:
            self.message.setText("cancelled: nothing was changed")
            return self._idle()
        if error is not None:
            show_warning(f"Cannot propagate: {error}")
            self.message.setText("")
            return self._idle()
        order = run.order
        if not order:
            show_info("Nothing to propagate: no plane lies in that direction within the range.")
            return self._idle()
        image = w.image_layer.data
        self.embeddings = PrefetchingEmbeddings(w.sam, image, order, w.cache,
                                                w.predictor.normalization)
        worker = create_job(run_in_store, w.sam, image, run, self.embeddings,
                            progress={"total": len(order), "desc": "Propagating objects"})
        self.timing, self._done = RunTiming(w, "track"), 0  # time left; recorded at the end
        self._tally = RunTally()  # object-planes and detection time, for the next estimate
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda plan: self._on_plan(token, run, plan))
        worker.errored.connect(lambda exc: self._failed(token, exc))
        worker.finished.connect(lambda wk=worker: self._worker_finished(wk))
        self.worker = worker
        self.progress.setRange(0, len(order))
        self.progress.setValue(0)
        self.message.setText(f"propagating through {len(order)} plane(s) ...")
        worker.start()
        return None

    def cancel(self) -> None:
        """Stop the run; nothing it computed is applied (the store stays as it was)."""
        if not self.busy or self._applying:
            return
        self._token = None
        if self.worker is not None:
            self.worker.quit()
        self.message.setText("cancelled: nothing was changed")

    def _on_progress(self, p) -> None:
        self.progress.setRange(0, p.total)
        self.progress.setValue(p.done)
        self._done = p.done
        self._tally.add(p)
        left = self.timing.left(p.done, p.total) if self.timing is not None else ""
        self.message.setText(f"plane {p.plane}: {p.active} track(s) going"
                             + (f"; {left}" if left else ""))

    def _failed(self, token, exc) -> None:
        if token is self._token:
            show_error(error_text(exc, "propagation"))
            self.message.setText("failed: nothing was changed")

    def _worker_finished(self, worker) -> None:
        if worker is self.worker and self.embeddings is not None:
            self.embeddings.close()
        if worker is self.worker and not self._applying:
            if self._token is None or getattr(worker, "abort_requested", False):
                self.message.setText("cancelled: nothing was changed")  # here or in the dock
            self._idle()

    def _on_plan(self, token, run, plan) -> None:
        w = self.w
        if token is not self._token or plan is None:
            return
        if self.timing is not None:  # a finished run: the next estimate is measured
            self.timing.finished(self._done or len(run.order), [run.request.plane, *run.order],
                                 self._tally.object_planes, self._tally.detect_seconds)
        self._applying = True
        self.message.setText("saving ...")
        info = {"model": w._model_text, "decoder": w._decoder_text}
        w.store_ops._submit(
            "Propagation", apply_and_review, run, plan, info,
            on_result=lambda res: self._applied(plan, run.request.plane, run.request.axis, res),
            on_error=self._apply_failed)

    def _apply_failed(self, error) -> None:  # another image chosen mid-run: no fault
        notify = show_warning if "image changed" in str(error) else show_error
        notify(f"The propagation was not applied: {error}")
        self.message.setText("not applied")
        self._idle()

    def _applied(self, plan, plane, axis, result) -> None:
        ids, _, stepped = result
        res = plan.result
        events = run_events(plan, ids, axis)
        made = sum(1 for i in ids if i)
        undo = "one Undo removes the run" if stepped else "nothing changed: no Undo step"
        stain = "; " + stain_text(res.stain, "the stain box") if res.stain is not None else ""
        self.message.setText(
            f"{made} object(s) on {len({o.plane for o in res.objects})} plane(s), "
            f"{len(res.divisions)} division(s), {len(events)} to review ({undo}){stain}")
        self._line = (plane, axis)
        self.review_list.set_events(events)
        self._idle()
        if not made:
            show_info(nothing_added(res))

    # -- review list and tracks ---------------------------------------------------------
    @property
    def entries(self) -> list:
        """The review events shown, in display order (grouped by kind, worst first)."""
        return self.review_list.events

    def jump(self, row: int) -> None:
        """Show ``entries[row]``: its plane, its track's object there selected."""
        if 0 <= row < len(self.entries):
            jump_to_event(self, self.entries[row])

    # -- export ------------------------------------------------------------------------------
    def _choose_export_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the CTC tracking result")
        if folder and replace_confirmed(self, folder):
            self.export_tracks(folder)

    def export_tracks(self, folder) -> bool:
        """Write the store's tracks of the current line of planes into ``folder`` (store
        thread; ``propagate_export.export_tracks``). False when it could not start."""
        axis = self.axis_combo.currentData() or 0
        along_z = self.axis_combo.currentText() == "Z"
        return export_tracks(self.w, folder, bool(self.lead), axis, along_z,
                             self.export_button)

    def _on_store_changed(self) -> None:
        if self.w.layers is not self._layers:
            self._image_changed()
        self.refresh_tracks()

    def refresh_tracks(self) -> None:
        """Recompute the ``tracks`` layer (store thread), after runs, undo and edits."""
        w = self.w
        if w.store is None or not self.lead or w.current_plane is None:
            return
        if self._tracks_pending:
            self._tracks_dirty = True
            return
        plane, axis = self._line or (w.current_plane, self.axis_combo.currentData() or 0)
        self._tracks_pending, layers = True, w.layers
        w.jobs.submit(tracks_data, w.store, plane, axis, self._line is None,
                      on_done=lambda res, err: self._tracks_done(layers, plane, axis, res, err))

    def _tracks_done(self, layers, plane, axis, result, error) -> None:
        self._tracks_pending = False
        if self._tracks_dirty:
            self._tracks_dirty = False
            return self.refresh_tracks()
        w = self.w
        if error is not None or layers is not w.layers or result is None:
            return None
        data, graph, _ = result
        show_tracks(w.viewer, w.image_layer, data, graph, plane, axis, self.lineage.data.colors)
        return None

    def _lineage_changed(self, data) -> None:
        color_tracks(self.w.viewer, data.colors)
        kept = [e for e in self.entries if still_there(e, data)]
        if len(kept) != len(self.entries):  # an undo took their tracks away
            self.review_list.set_events(kept)
