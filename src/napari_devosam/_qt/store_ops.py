"""The annotator's store operations, run in order on one background thread.

Opening the store (hashing the image, reading its files), commits, deletes, undo and redo all
run on ``SerialJobs``; the GUI thread only refreshes the ``objects`` layer when a job is done.
The layer displays the store's own labels array, so it always shows what is on disk.
"""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning

from napari_devosam._qt.workers import reported


def _open_store(holder, path, data, project_dir, rgb):
    from napari_devosam.annotation.store import AnnotationStore, StoreCorruptError

    warning = None
    try:
        store = AnnotationStore.for_image(path, data, project_dir, rgb=rgb)
    except StoreCorruptError as exc:
        warning = str(exc)
        store = AnnotationStore.for_image(path, data, project_dir, rgb=rgb)
    holder["store"] = store
    return store, warning


class StoreOps:
    """Owns the ``AnnotationStore`` of the annotated image (``store`` once it is open)."""

    def __init__(self, widget):
        self.widget = widget
        self.store = None
        self.placeholder = None
        self._holder: dict = {}

    def open(self, layer, shape) -> None:
        """Open (or create) the store of image layer ``layer`` in the background."""
        self.store = None
        self.placeholder = np.zeros(shape, dtype=np.uint32)  # shown until the store is read
        self._holder = holder = {}
        path = getattr(layer.source, "path", None)
        self.widget.jobs.submit(
            _open_store, holder, path, layer.data, self.widget.project_dir, layer.rgb,
            on_done=lambda res, err: self._opened(holder, res, err))

    def _opened(self, holder, result, error) -> None:
        if holder is not self._holder:
            return
        if error is not None:
            show_error(f"Could not open the annotation store: {error}")
            return
        store, warning = result
        if warning:
            show_warning(warning)
        self.store = store
        layers = self.widget.layers
        if layers is not None:
            layers.objects.data = store.labels
        if store.objects:
            show_info(f"Restored {len(store.objects)} committed objects from {store.folder}")
        self._changed()

    def _submit(self, what: str, fn, *args, on_result=None) -> None:
        holder = self._holder

        def run():
            store = holder.get("store")
            if store is None:
                raise RuntimeError("the annotation store is not open")
            return fn(store, *args)

        def done(result, error):
            if error is not None:
                show_error(f"{what} failed: {error}")
            elif on_result is not None:
                on_result(result)
            if holder is self._holder:
                self._changed()

        self.widget.jobs.submit(run, on_done=done)

    def commit(self, plane, masks, prompts, info) -> None:
        self._submit("Commit", lambda s: s.commit(plane, list(masks), prompts, info=info),
                     on_result=self._committed)

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

    @staticmethod
    def _stepped(word):
        def report(result):
            if result is None:
                show_info(f"Nothing to {word}.")
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
            from napari.qt.threading import create_worker

            from napari_devosam.export.bundle import export_bundle

            labels, prompts = result
            worker = create_worker(
                reported(export_bundle), out_dir, np.asarray(image), labels, source=str(source),
                prompts=prompts, model_info=model, _start_thread=False, _ignore_errors=True,
                _progress={"total": 0, "desc": "exporting the training bundle"})
            worker.returned.connect(
                lambda summary: show_info(f"Exported to {summary.get('bundle', out_dir)}"))
            worker.errored.connect(lambda exc: show_error(f"Export failed: {exc}"))
            worker.start()
            self.widget._export_worker = worker

        self._submit("Export", snapshot, on_result=start)
