"""The SAM annotator dock widget: boxes and points become SAM masks live; commit, undo, delete.

The widget wires the viewer to the parts it owns, each with one job:

- ``prompt_loop`` (``annotator_prompts.PromptController``): prompt layers ->
  ``annotation.state.AnnotatorState`` (prompts -> current objects, decoded by
  ``engine.predictor.Predictor`` on the GUI thread: tens of ms) -> the current layer, commit;
- ``embeddings`` (``embedding_worker.EmbeddingJobs``): the encoder, in workers;
- ``store_ops`` (``store_ops.StoreOps``): the ``AnnotationStore`` of committed objects; every
  change runs on one background thread, in order, and is on disk when its callback arrives;
- ``delete_tool`` (``annotator_delete.DeleteMode``): a click deletes an object;
- ``images`` (``annotator_images.ImageChoice``): which image layer is annotated;
- the panels: model, series, segment all, propagate, each on its own tab (``TABS``), under
  the image choice and above the status line, so that the dock fits a 1600 x 1000 screen.

Its public methods (what the buttons and shortcuts call) delegate to those parts.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import QLabel, QWidget

from napari_devosam._qt.annotation_layers import add_layers, follow_transform, transform_problem
from napari_devosam._qt.annotator_controls import build_controls, status_text
from napari_devosam._qt.annotator_delete import DeleteMode
from napari_devosam._qt.annotator_images import ImageChoice
from napari_devosam._qt.annotator_prompts import PromptController
from napari_devosam._qt.embedding_worker import EmbeddingJobs
from napari_devosam._qt.estimates import record_encoder, update_estimates
from napari_devosam._qt.image_axes import annotated_layer
from napari_devosam._qt.jobs import LockedEmbeddingCache, SerialJobs
from napari_devosam._qt.model_panel import ModelPanel
from napari_devosam._qt.presentation import tab_pages
from napari_devosam._qt.propagate_view import go_to_plane
from napari_devosam._qt.shortcuts import bind_shortcuts, unbind_viewer
from napari_devosam._qt.store_ops import StoreOps
from napari_devosam.annotation.state import AnnotatorState

TABS = ("Annotate", "Segment all", "Propagate", "Model", "Series", "Keys")


def _first_imports() -> None:
    """torch, torchvision and segment_anything, here on the GUI thread before any worker."""
    from napari_devosam._qt import avoid_llvm_clash
    from napari_devosam.utils.heavy_imports import ensure_imported

    avoid_llvm_clash()
    try:
        ensure_imported()
    except Exception as exc:  # noqa: BLE001 - the widget opens; loading a model reports it
        show_error(f"Could not import Segment Anything: {exc}")


class AnnotatorWidget(QWidget):
    """SAM annotator for the selected image layer (2D, or T/Z stack of 2D planes).

    Arguments:
      napari_viewer: the viewer (injected by napari).
      sam: a loaded ``Sam`` to use at once (tests, scripts); otherwise the model panel loads
        one (automatically when it needs no download).
      project_dir: where annotation stores go (default: next to the image file, else the
        user data dir); cache_dir: embedding cache (default: the user cache dir).
    """

    embedding_ready = Signal(object)  # plane whose embedding became active
    store_changed = Signal()  # a store job finished (objects layer updated)
    history_stepped = Signal(str)  # an undo or redo changed the store: what it did
    lineage_edited = Signal()  # a track edit of the Lineage dock was saved
    model_changed = Signal()

    def __init__(self, napari_viewer, sam=None, *, project_dir=None, cache_dir=None,
                 autoload: bool = True):
        super().__init__()
        from napari_devosam.engine.embeddings import default_cache_dir

        _first_imports()

        self.viewer = napari_viewer
        self.project_dir = project_dir
        self.cache = LockedEmbeddingCache(cache_dir or default_cache_dir(), max_items=16)
        self.predictor = None
        self.state: AnnotatorState | None = None
        self.layers = None
        self.image_layer = None
        self._choosing = False  # set_image_layer is adding a gray view of a layer
        self._model_text = self._decoder_text = None
        self._viewer_keys: list = []
        self.prompt_loop = PromptController(self)
        self.delete_tool = DeleteMode(self)
        self.jobs = SerialJobs(self)
        self.store_ops = StoreOps(self)
        self.embeddings = EmbeddingJobs(self)
        self.embeddings.ready.connect(self._on_embedding)
        self.embeddings.busy_changed.connect(self._update_status)
        self.embeddings.precompute_done.connect(partial(record_encoder, self))

        self.images = ImageChoice(self)
        self.image_combo = self.images.combo
        self.model_panel = ModelPanel()
        self.model_panel.model_ready.connect(self.set_model)
        self.model_panel.decoder_requested.connect(self.use_decoder)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        # tabs, so that the main actions of every panel fit a 1600 x 1000 screen (issue 25)
        top, self.tabs, pages = tab_pages(self, list(TABS))
        top.addWidget(QLabel("image"))
        top.addWidget(self.image_combo)
        pages["Model"].addWidget(self.model_panel)
        from napari_devosam._qt.series_panel import SeriesPanel  # issue 14

        self.series_panel = SeriesPanel(self)
        pages["Series"].addWidget(self.series_panel)
        build_controls(self, pages["Annotate"], pages["Keys"])
        from napari_devosam._qt.segment_all_panel import SegmentAllPanel  # issue 12

        self.segment_all_panel = SegmentAllPanel(self)
        pages["Segment all"].addWidget(self.segment_all_panel)
        from napari_devosam._qt.propagate_panel import PropagatePanel  # issue 11

        self.propagate_panel = PropagatePanel(self)
        pages["Propagate"].addWidget(self.propagate_panel)
        for page in pages.values():
            page.addStretch(1)
        self.layout().addWidget(self.status_label)

        self.viewer.dims.events.current_step.connect(self._on_plane_change)
        self.destroyed.connect(partial(unbind_viewer, self.viewer, self._viewer_keys))
        self.images.follow(self.viewer)
        if sam is not None:
            self.set_model(sam, "injected model")
        elif autoload and self.model_panel.available_offline():
            self.model_panel.load()
        self._update_status()

    # -- properties ---------------------------------------------------------------------
    @property
    def sam(self):
        return None if self.predictor is None else self.predictor.sam

    @property
    def store(self):
        return self.store_ops.store

    @property
    def delete_mode(self) -> bool:
        """Whether a click on a committed object deletes it."""
        return self.delete_tool.on

    @property
    def current_plane(self) -> tuple[int, ...] | None:
        """Leading indices of the plane shown for the annotated image (``()`` for 2D)."""
        if self.state is None or self.image_layer not in self.viewer.layers:
            return None
        if self.viewer.dims.ndim < self.image_layer.ndim:
            return None
        n = self.state.n_lead
        if n == 0:
            return ()
        pos = self.image_layer.world_to_data(self.viewer.dims.point)[:n]
        hi = np.asarray(self.state.shape[:n]) - 1
        return tuple(int(i) for i in np.clip(np.round(pos), 0, hi))

    def show_tab(self, title: str) -> None:
        """Bring the tab ``title`` (one of ``TABS``) to the front."""
        self.tabs.setCurrentIndex(TABS.index(title))

    def showEvent(self, event):  # noqa: N802 - Qt's name
        """Docked: napari's canvas just shrank; fit the image in it again (once)."""
        super().showEvent(event)
        if not getattr(self, "_fitted", False):
            self._fitted = True
            QTimer.singleShot(0, self.viewer.reset_view)

    # -- image ----------------------------------------------------------------------------
    def set_image_layer(self, layer) -> None:
        """Annotate napari image layer ``layer``: add its four layers, open its store.

        A layer with a lone-channel or gray + alpha axis is annotated through a gray view of
        it (``image_axes.annotated_layer``), as the API and the CLI read such data.
        """
        if self._choosing:
            return
        self._choosing = True
        try:
            layer = annotated_layer(self.viewer, layer)
        finally:
            self._choosing = False
        self._detach()
        shape = tuple(layer.data.shape[:-1] if layer.rgb else layer.data.shape)
        problem = transform_problem(layer, len(shape) - 2)
        if problem:
            self.images.refused.add(id(layer))
            return show_error(f"Cannot annotate: {problem}.")
        self.image_layer = layer
        self.state = AnnotatorState(shape, self.predictor)
        self.store_ops.open(layer, shape)
        self.layers = add_layers(self.viewer, layer, self.state.current_labels,
                                 self.store_ops.placeholder)
        follow_transform(layer, self.layers)
        self._opening_plane = (0,) * (len(shape) - 2)  # work starts at the first plane
        go_to_plane(self.viewer, layer, self._opening_plane)
        self.viewer.reset_view()  # the whole image in view, whatever the dock took
        for prompt_layer in (self.layers.boxes, self.layers.points):
            prompt_layer.events.data.connect(self.prompt_loop.on_prompt_event)
        self.layers.objects.mouse_drag_callbacks.append(self.delete_tool.on_objects_click)
        self.store_ops.watch(self.layers.objects)  # brush/eraser/fill strokes are saved
        # whoever calls the layer's own undo/redo (napari's key binding, a script, another
        # plugin) steps the store's stack: napari's would change pixels the store never sees
        self.layers.objects.undo = self.undo
        self.layers.objects.redo = self.redo
        self._viewer_keys[:] = bind_shortcuts(self, self.viewer, self.layers.as_dict())
        self.viewer.layers.selection.active = self.layers.boxes
        self.images.refresh()
        self._reset_embeddings()

    def store_opened(self, store) -> None:
        """The image's store is open: go to the plane last worked on (remembered in the
        store) unless the user has moved since the image opened."""
        from napari_devosam.annotation.last_plane import last_plane

        plane = last_plane(store.folder, store.shape) if store.shape else None
        if plane and self.image_layer is not None and \
                self.current_plane == getattr(self, "_opening_plane", None):
            go_to_plane(self.viewer, self.image_layer, plane)

    def _detach(self) -> None:
        if self.layers is not None:
            self.layers.unfollow()
            for ly in self.layers.all():
                if ly in self.viewer.layers:
                    self.viewer.layers.remove(ly)
        self.layers = self.state = self.image_layer = None
        self.embeddings.reset(None, None, None)

    # -- model ----------------------------------------------------------------------------
    def set_model(self, sam, description: str | None = None) -> None:
        """Use ``sam`` (a ``segment_anything`` ``Sam``) from now on; embeddings follow."""
        from napari_devosam._qt import avoid_llvm_clash

        avoid_llvm_clash()
        from napari_devosam.engine.predictor import Predictor

        self.predictor = Predictor(sam, cache=self.cache)
        self.model_panel.set_loaded(sam)  # its name when the panel loaded it: estimates' key
        self._model_text = description or type(sam).__name__
        self._decoder_text = None
        self.model_panel.set_active(self._model_text)
        if self.state is not None:
            self.state.predictor = self.predictor
            self.state.embedding_lost()
            self.state.recompute_all()
        self._reset_embeddings()
        self.model_changed.emit()

    def use_decoder(self, path) -> dict | None:
        """Load a fine-tuned decoder file into the model in place (no embedding recomputed).

        Returns the file's metadata, or None (with a napari notification) when it cannot be
        used with the loaded model.
        """
        from pathlib import Path

        from napari_devosam.models.decoder_files import apply_decoder

        if self.predictor is None:
            show_warning("Load a model before choosing a decoder.")
            return None
        try:
            meta = apply_decoder(self.predictor.sam, path)
        except (ValueError, OSError, RuntimeError) as exc:
            show_error(f"Could not use the decoder: {exc}")
            return None
        self.predictor.decoder_changed()
        self._decoder_text = Path(path).name
        self.model_panel.set_active(self._model_text, self._decoder_text)
        if self.state is not None:
            try:
                self.state.recompute_all()
            except ValueError as exc:
                show_warning(str(exc))
            self._refresh_current()
        self.model_changed.emit()
        return meta

    def _reset_embeddings(self) -> None:
        if self.state is not None:
            self.state.embedding_lost()
        data = self.image_layer.data if self.image_layer is not None else None
        self.embeddings.reset(self.sam, self.cache, data)
        self._request_embedding()

    def _request_embedding(self) -> None:
        plane = self.current_plane
        if plane is None or self.predictor is None or self.state.ready_plane == plane:
            return
        self.embeddings.request(plane)
        self._update_status()

    def _on_embedding(self, plane, emb) -> None:
        if self.state is None or plane != self.current_plane:
            return
        image = self.embeddings.image
        # the pixels too, so small objects are prompted in zoomed views (engine/zoom.py)
        pixels = None if image is None or not self.predictor.zoom else np.asarray(image[plane])
        self.predictor.set_embedding(emb, pixels)
        try:
            changed = self.state.embedding_ready(plane)
        except ValueError as exc:
            show_warning(str(exc))
            changed = True
        if changed:
            self._refresh_current()
        self._update_status()
        self.embedding_ready.emit(plane)

    def precompute_all(self):
        """Embed every plane of the stack in the background; returns the worker."""
        if self.predictor is None or self.state is None:
            show_warning("Load a model and choose an image first.")
            return None
        n = int(np.prod(self.state.shape[:-2])) if self.state.n_lead else 1
        return self.embeddings.precompute(n)

    def cancel(self) -> None:
        """Stop background embedding work (prefetch of a series included) and a download."""
        self.embeddings.cancel()
        self.series_panel.cancel()
        self.model_panel.cancel()

    def next_image(self) -> None:
        self.series_panel.next_image()

    def previous_image(self) -> None:
        self.series_panel.previous_image()

    # -- what the buttons and shortcuts call -----------------------------------------------
    def commit(self) -> None:
        """Commit this plane's current object(s) to the store; the plane's prompts clear."""
        self.prompt_loop.commit()

    def clear_prompts(self) -> None:
        """Remove the current plane's boxes and points and its current object(s)."""
        self.prompt_loop.clear()

    def next_candidate(self) -> None:
        """Show SAM's next candidate mask for the single ambiguous prompt of this plane."""
        self.prompt_loop.next_candidate()

    def toggle_point_kind(self) -> None:
        """Switch new points between positive and negative."""
        self.prompt_loop.toggle_point_kind()

    def undo(self) -> None:
        """Undo the objects of prompts drawn over this plane's proposals (the proposals stay),
        else the last Segment all run's replacement of earlier proposals, else the last
        commit, delete or correction (object level)."""
        if not self.prompt_loop.undo_added() and not self.segment_all_panel.undo_replace():
            self.store_ops.undo()

    def redo(self) -> None:
        self.store_ops.redo()

    def delete_object(self, object_id: int) -> None:
        self.store_ops.delete(object_id)

    def toggle_delete_mode(self) -> None:
        """In delete mode a click on a committed object deletes it."""
        self.delete_tool.toggle()

    def export(self, out_dir):
        """Export the committed objects as a training bundle in ``out_dir`` (a worker)."""
        return self.store_ops.export(out_dir)

    def wait_for_store(self) -> None:
        """Block until every store change submitted so far is on disk."""
        self.jobs.wait()

    # -- prompts, status ------------------------------------------------------------------
    def _on_plane_change(self, event=None) -> None:
        if self.current_plane is None:
            return
        if self.delete_mode:
            self.toggle_delete_mode()
        self._request_embedding()
        self.prompt_loop.update()

    def _refresh_current(self) -> None:
        """Show the state's current objects (the panels call it after changing the state)."""
        self.prompt_loop.refresh_current()

    def _update_status(self) -> None:
        self.status_label.setText(status_text(self))
        update_estimates(self)
