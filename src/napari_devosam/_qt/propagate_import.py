"""The Propagate panel's "Import tracks..." action: another tool's tracks into the store.

A CTC result folder (``maskNNN.tif`` + ``res_track.txt``), or a GEFF graph (a ``.geff``
folder) and then its mask folder. Three steps, so that only the store thread touches the
store:

1. a napari worker reads and checks the tracks (``tracking.track_reading.read_ctc`` or
   ``read_geff``), with a bar in the activity dock and the panel's; nothing is written, a
   refusal names the first disagreement;
2. store thread: how many objects the store holds; the user is asked before replacing them,
   once the tracks are known to be importable (new-user trial 19 was asked first, then told
   the folder was wrong);
3. store thread: ``import_tracks.store_tracks_from_labels`` commits it as one undo step, then
   the review events of the store (``review_events``) fill the review list.
"""

from __future__ import annotations

from pathlib import Path

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QFileDialog, QMessageBox

from napari_devosam._qt.workers import create_job


def add_track_tools(panel, grid, row: int) -> None:
    """The panel's "Lineage..." (next to Export, at ``row``) and "Import tracks..." buttons
    (the row below), as ``panel.lineage_button`` and ``panel.import_button``."""
    from qtpy.QtWidgets import QPushButton

    from napari_devosam._qt.lineage_dock import open_lineage_dock

    panel.lineage_button = QPushButton("Lineage...")
    panel.lineage_button.setToolTip("Show the lineage tree: jump to a track, fix divisions "
                                    "and identities")
    panel.import_button = QPushButton("Import tracks...")
    panel.import_button.setToolTip("Read another tool's tracks (a CTC result: maskNNN.tif + "
                                   "res_track.txt; or a GEFF graph and its masks) into the "
                                   "store; one Undo removes them")
    grid.addWidget(panel.lineage_button, row, 1)
    grid.addWidget(panel.import_button, row + 1, 0, 1, 2)
    panel.lineage_button.clicked.connect(lambda *_: open_lineage_dock(panel.w))
    panel.import_button.clicked.connect(lambda *_: choose_and_import(panel))


def choose_and_import(panel) -> None:
    """Ask for a CTC result folder or a GEFF graph (then its masks), then import it (asking
    before replacing objects)."""
    from napari_devosam.tracking.track_reading import is_geff

    folder = QFileDialog.getExistingDirectory(
        panel, "Tracks to import: a CTC result folder (maskNNN.tif + res_track.txt) or a "
               "GEFF graph (.geff)")
    if not folder:
        return
    masks = None
    if is_geff(folder):
        masks = QFileDialog.getExistingDirectory(
            panel, f"The mask folder of {Path(folder).name} (maskNNN.tif)")
        if not masks:
            return
    import_tracks(panel, folder, replace=None, masks=masks)


def import_tracks(panel, folder, replace: bool | None = False, masks=None) -> bool:
    """Import the CTC result in ``folder`` (with ``masks``: the GEFF graph ``folder`` and its
    mask folder) into the annotator's store (steps above). ``replace``: replace the store's
    objects; None: ask when there are some. False when it could not start."""
    from napari_devosam.tracking.track_reading import read_ctc, read_geff

    w = panel.w
    if w.store is None or panel.busy or not panel.lead:
        show_warning("Importing tracks needs a time-lapse with its annotation store open "
                     "(and no run going).")
        return False
    store, folder = w.store, Path(folder)
    frames = (tuple(store.shape[1:]), store.shape[0])
    reading = (read_ctc, folder, *frames) if masks is None else (read_geff, folder,
                                                                 Path(masks), *frames)
    panel._set_busy(True)
    worker = create_job(*reading, progress={"total": store.shape[0],
                                            "desc": "Reading tracks"})
    worker.yielded.connect(lambda p: (panel.progress.setRange(0, p[1]),
                                      panel.progress.setValue(p[0])))
    worker.returned.connect(lambda res: _read(panel, store, folder, replace, res))
    worker.errored.connect(lambda exc: _failed(panel, exc))
    worker.finished.connect(lambda wk=worker: _finished(panel, wk))
    panel.worker = worker
    panel.message.setText(f"reading {folder.name} ...")
    worker.start()
    return True


def _failed(panel, exc) -> None:
    from napari_devosam._qt.presentation import error_text

    original = getattr(exc, "original", exc)
    if isinstance(original, (ValueError, OSError)):  # TrackImportError: one line
        show_warning(f"Tracks not imported: {original}")
    else:
        show_error(error_text(original, "track import"))
    panel.message.setText("not imported: nothing was changed")
    panel._idle()


def _finished(panel, worker) -> None:
    if worker is panel.worker and getattr(worker, "abort_requested", False):
        panel.message.setText("cancelled: nothing was changed")
        panel._idle()


def _read(panel, store, folder: Path, replace, result) -> None:
    """The tracks are read and checked: count the store's objects, then ask and commit."""
    if store is not panel.w.store:
        panel.message.setText("not imported: another image was chosen")
        return panel._idle()
    panel.w.jobs.submit(lambda: len(store.objects),
                        on_done=lambda n, err: _counted(panel, store, folder, replace,
                                                        result, n, err))
    return None


def _counted(panel, store, folder: Path, replace, result, n_objects, error) -> None:
    if error is not None or store is not panel.w.store:
        panel.message.setText("not imported")
        return panel._idle()
    if n_objects and replace is None:
        answer = QMessageBox.question(
            panel, "Replace the objects?",
            f"The annotation store holds {n_objects} object(s). Replace them with the "
            f"tracks of {folder.name}? (one Undo brings them back)")
        replace = answer == QMessageBox.StandardButton.Yes
        if not replace:
            panel.message.setText("not imported")
            return panel._idle()
    _commit(panel, folder, bool(replace), result)
    return None


def _commit(panel, folder: Path, replace: bool, result) -> None:
    from napari_devosam.tracking.import_tracks import store_tracks_from_labels
    from napari_devosam.tracking.review_events import review_events

    labels, parents = result
    review_below = panel.form.values().get("review_below", 0.7)

    def commit(s):
        summary = store_tracks_from_labels(s, labels, parents, replace=replace,
                                           info={"imported_from": str(folder)})
        return summary, review_events(s, 0, review_below=review_below)

    def done(res) -> None:
        summary, events = res
        panel._line = None
        panel.review_list.set_events(events)
        panel.message.setText(f"{summary.text()} (one Undo removes the import)")
        (show_warning if summary.many_daughters else show_info)(
            f"From {folder.name}: {summary.text()}")
        panel._idle()

    def refused(error) -> None:
        how = "; import again and answer Yes to replace them" \
            if getattr(error, "needs_replace", False) else ""
        show_warning(f"Tracks not imported: {error}{how}")
        panel.message.setText("not imported: nothing was changed")
        panel._idle()

    panel.message.setText("saving ...")
    panel.w.store_ops._submit("Import", commit, on_result=done, on_error=refused)
