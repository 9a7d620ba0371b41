"""The annotator's store operations, run in order on one background thread.

Opening the store (hashing the image, reading its files), commits, deletes, undo and redo all
run on ``SerialJobs``; the GUI thread only refreshes the ``objects`` layer when a job is done.
The layer displays the store's own labels array, so it always shows what is on disk:
brush, eraser and fill strokes on it (napari's ``paint`` event, one per stroke) are saved as
store edits, undone with commits. A change that cannot be saved keeps the user's work (the
commit's mask and prompts come back, a stroke waits in ``unsaved``) and offers to choose a
project folder (``relocate``), where the store continues with everything kept.
"""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import (
    Notification,
    NotificationSeverity,
    notification_manager,
    show_error,
    show_info,
    show_warning,
)

from napari_devosam._qt.workers import create_job
from napari_devosam.utils.text import count


def _open_store(holder, path, data, project_dir, rgb, previous=None):
    """Open the image's store; with ``previous`` (a store being left), copy it over when the
    new location holds no store yet."""
    import shutil

    from napari_devosam.annotation.store import AnnotationStore, StoreCorruptError

    warning = None
    try:
        store = AnnotationStore.for_image(path, data, project_dir, rgb=rgb)
    except StoreCorruptError as exc:
        warning = str(exc)
        store = AnnotationStore.for_image(path, data, project_dir, rgb=rgb)
    if (previous is not None and previous.objects and not store.objects
            and (previous.folder / "store.json").is_file()):
        shutil.copytree(previous.folder, store.folder, dirs_exist_ok=True)
        store.load()
    holder["store"] = store
    return store, warning


def _changed_elsewhere(error) -> bool:
    from napari_devosam.annotation.store_files import StoreChangedError

    return isinstance(error, StoreChangedError)


def _worked_on(store, plane, result):
    """Remember ``plane`` as the last one worked on (``annotation.last_plane``); returns
    ``result``. A store folder that cannot take the small file changes nothing else."""
    import contextlib

    from napari_devosam.annotation.last_plane import remember_plane

    with contextlib.suppress(OSError):
        remember_plane(store.folder, plane)
    return result


def choose_folder_action(widget):
    """A notification action: ask for a project folder and move the store there."""
    def act(*_):
        from napari_devosam._qt.annotator_controls import ask_project

        ask_project(widget)
    return ("Choose project folder...", act)


def notify(message: str, widget, severity=NotificationSeverity.ERROR) -> None:
    """A napari notification offering to choose a project folder."""
    notification_manager.dispatch(Notification(
        message, severity=severity, actions=[choose_folder_action(widget)]))


class StoreOps:
    """Owns the ``AnnotationStore`` of the annotated image (``store`` once it is open)."""

    def __init__(self, widget):
        self.widget = widget
        self.store = None
        self.placeholder = None
        self.unsaved: list = []  # (plane, pixels, values) of strokes not saved yet
        self._holder: dict = {}

    def open(self, layer, shape, keep_objects: bool = False, keep_unsaved: bool = False
             ) -> None:
        """Open (or create) the store of image layer ``layer`` in the background.

        ``keep_objects``: the image stays, its store moves (``relocate``): the objects of the
        store left are copied to the new place when it has none. ``keep_unsaved``: strokes not
        saved yet are saved into the store opened (a reload)."""
        previous = self._holder.get("store") if keep_objects else None
        self.store = None
        self.placeholder = np.zeros(shape, dtype=np.uint32)  # shown until the store is read
        if not (keep_objects or keep_unsaved):
            self.unsaved.clear()
        self._holder = holder = {}
        path = getattr(layer.source, "path", None)
        self.widget.jobs.submit(
            _open_store, holder, path, layer.data, self.widget.project_dir, layer.rgb,
            previous, on_done=lambda res, err: self._opened(holder, res, err))

    def relocate(self, project_dir) -> None:
        """Keep this image's annotations in ``project_dir`` from now on (the layers, prompts
        and current objects stay; committed objects and unsaved strokes move along)."""
        self.widget.project_dir = project_dir
        layer = self.widget.image_layer
        if layer is not None:
            self.open(layer, self.placeholder.shape, keep_objects=True)

    def watch(self, objects_layer) -> None:
        """Save brush/eraser/fill strokes on the ``objects`` layer (one store edit each)."""
        objects_layer.events.paint.connect(self._on_paint)

    def _on_paint(self, event) -> None:
        from napari_devosam._qt.paint_edits import changed_pixels

        layers, store = self.widget.layers, self.store
        if layers is None or store is None or layers.objects.data is not store.labels:
            show_warning("The annotation store is still opening: this stroke is not saved.")
            return
        for plane, (pixels, old, new) in changed_pixels(event.value, store.shape).items():
            self._save_edit(plane, pixels, new, old)

    def _save_edit(self, plane, pixels, values, previous=None) -> None:
        edit = (plane, pixels, values)

        def failed(error):
            self.unsaved.append(edit)
            if _changed_elsewhere(error):  # saved into the store read again (_reload)
                return
            notify(f"The correction could not be saved ({error}); it is kept until the "
                   "annotations can be saved: choose a project folder.", self.widget)

        self._submit(None, lambda s: _worked_on(s, plane, s.apply_edit(plane, pixels, values,
                                                                        previous)),
                     on_error=failed)

    def _opened(self, holder, result, error) -> None:
        if holder is not self._holder:
            return
        if error is not None:
            notify(f"Could not open the annotation store: {error}", self.widget)
            return
        store, warning = result
        if warning:
            show_warning(warning)
        self.store = store
        layers = self.widget.layers
        if layers is not None:
            layers.objects.data = store.labels
        if store.objects:
            show_info(f"Restored {count(len(store.objects), 'committed object')} from "
                      f"{store.folder}")
        self._announce(store.location)
        self.widget.store_opened(store)
        pending, self.unsaved = self.unsaved, []
        for plane, pixels, values in pending:
            self._save_edit(plane, pixels, values)
        self._changed()

    def _announce(self, location) -> None:
        """Say where the store is when it is not next to the image, and whether it is
        writable, as soon as the image is opened."""
        if location is None:
            return
        if location.note:
            show_warning(location.note)
        if not location.writable:
            notify(f"The annotation store {location.folder} cannot be written: nothing "
                   "committed can be saved. Choose a project folder.", self.widget,
                   NotificationSeverity.WARNING)
        elif not location.next_to_image and self.widget.project_dir is None and getattr(
                getattr(self.widget.image_layer, "source", None), "path", None):
            show_info(f"The image's folder cannot be written: its annotations are kept in "
                      f"{location.folder}")

    def _submit(self, what: str | None, fn, *args, on_result=None, on_error=None) -> None:
        holder = self._holder

        def run():
            store = holder.get("store")
            if store is None:
                raise RuntimeError("the annotation store is not open")
            return fn(store, *args)

        def done(result, error):
            if holder is self._holder and _changed_elsewhere(error):
                self._reload()
            if error is not None and on_error is not None:
                on_error(error)
            elif error is not None:
                notify(f"{what} failed: {error}", self.widget)
            elif on_result is not None:
                on_result(result)
            if holder is self._holder:
                self._changed()

        self.widget.jobs.submit(run, on_done=done)

    def _reload(self) -> None:
        """Read the store again after another program changed it (``StoreChangedError``):
        the layer shows what is on disk; strokes not saved are saved into it."""
        layer = self.widget.image_layer
        if layer is None or self.placeholder is None:
            return
        show_info("Another program changed this image's annotations: they were read again "
                  "from disk (this session's undo steps are gone).")
        self.open(layer, self.placeholder.shape, keep_unsaved=True)

    def commit(self, plane, masks, prompts, info, on_error=None) -> None:
        """Commit in order with the other jobs; ``on_error(error)`` after a failure (the
        notification then comes from the caller)."""
        self._submit("Commit", lambda s: _worked_on(s, plane, s.commit(plane, list(masks),
                                                                        prompts, info=info)),
                     on_result=self._committed, on_error=on_error)

    def _committed(self, ids) -> None:
        kept = [i for i in ids if i]
        if not kept:
            show_info("Nothing committed: the mask only covers objects committed before.")

    def undo(self) -> None:
        self._submit("Undo", lambda s: s.undo(), on_result=self._stepped("undo"))

    def redo(self) -> None:
        self._submit("Redo", lambda s: s.redo(), on_result=self._stepped("redo"))

    def delete(self, object_id: int) -> None:
        self._submit("Delete", lambda s: s.delete(object_id))

    def _stepped(self, word):
        def report(result):
            from napari_devosam.annotation.history import step_text

            if result is None:
                show_info(f"Nothing to {word}.")
            else:  # panels' messages about the change it took back no longer hold
                self.widget.history_stepped.emit(step_text(word, result))
        return report

    def _changed(self) -> None:
        layers = self.widget.layers
        if layers is not None:
            layers.objects.refresh()
        self.widget._update_status()
        self.widget.store_changed.emit()

    def export(self, out_dir):
        """Snapshot the store in order with the other jobs, then export in a napari worker."""
        layer = self.widget.image_layer
        if layer is None:
            show_warning("Choose an image first.")
            return
        image = layer.data
        source = getattr(layer.source, "path", None) or layer.name
        model = {"name": self.widget._model_text, "decoder": self.widget._decoder_text}

        def snapshot(store):
            return store.labels.copy(), {k: o.get("prompts") for k, o in store.objects.items()}

        def start(result):
            from napari_devosam.export.bundle import export_bundle

            labels, prompts = result
            worker = create_job(
                export_bundle, out_dir, np.asarray(image), labels, source=str(source),
                prompts=prompts, model_info=model,
                progress={"total": 0, "desc": "exporting the training bundle"})
            worker.returned.connect(
                lambda summary: show_info(f"Exported to {summary.get('bundle', out_dir)}"))
            worker.errored.connect(lambda exc: show_error(f"Export failed: {exc}"))
            worker.start()
            self.widget._export_worker = worker

        self._submit("Export", snapshot, on_result=start)
