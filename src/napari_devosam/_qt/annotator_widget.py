"""The SAM annotator dock widget: boxes and points become SAM masks live; commit, undo, delete.

A thin layer over ``annotation.state.AnnotatorState`` (prompts -> current objects),
``predictor.Predictor`` (the decoder, on the GUI thread: tens of ms), ``EmbeddingJobs``
(encoder, in workers) and ``store.AnnotationStore`` (committed objects; every change runs on
one background thread, in order, and is on disk when its callback arrives).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import QComboBox, QLabel, QWidget

from napari_devosam._qt.annotation_layers import (
    add_layers,
    follow_transform,
    planes_with_prompts,
    prompts_on_plane,
    transform_problem,
)
from napari_devosam._qt.annotator_actions import AnnotatorActions
from napari_devosam._qt.annotator_controls import build_controls
from napari_devosam._qt.embedding_worker import EmbeddingJobs
from napari_devosam._qt.image_axes import GRAY_SUFFIX, annotated_layer
from napari_devosam._qt.jobs import LockedEmbeddingCache, SerialJobs
from napari_devosam._qt.model_panel import ModelPanel
from napari_devosam._qt.presentation import scroll_layout
from napari_devosam._qt.shortcuts import bind_shortcuts, unbind_viewer
from napari_devosam._qt.store_ops import StoreOps
from napari_devosam.annotation.state import AnnotatorState

ANSWER_ACTIONS = {"added", "changed", "removed"}


def _first_imports() -> None:
    """torch, torchvision and segment_anything, here on the GUI thread before any worker."""
    from napari_devosam._qt import avoid_llvm_clash
    from napari_devosam.utils.heavy_imports import ensure_imported

    avoid_llvm_clash()
    try:
        ensure_imported()
    except Exception as exc:  # noqa: BLE001 - the widget opens; loading a model reports it
        show_error(f"Could not import Segment Anything: {exc}")


class AnnotatorWidget(AnnotatorActions, QWidget):
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
        self.delete_mode = False
        self._model_text = self._decoder_text = None
        self._viewer_keys: list = []
        self._previous_active = None
        self._muted = False  # while we remove prompts ourselves
        self.jobs = SerialJobs(self)
        self.store_ops = StoreOps(self)
        self.embeddings = EmbeddingJobs(self)
        self.embeddings.ready.connect(self._on_embedding)
        self.embeddings.busy_changed.connect(self._update_status)

        self.image_combo = QComboBox()
        self.image_combo.currentIndexChanged.connect(self._on_image_choice)
        self.model_panel = ModelPanel()
        self.model_panel.model_ready.connect(self.set_model)
        self.model_panel.decoder_requested.connect(self.use_decoder)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        layout = scroll_layout(self)  # a tall dock scrolls instead of growing the window
        layout.addWidget(QLabel("image"))
        layout.addWidget(self.image_combo)
        layout.addWidget(self.model_panel)
        from napari_devosam._qt.series_panel import SeriesPanel  # issue 14

        self.series_panel = SeriesPanel(self)
        layout.addWidget(self.series_panel)
        build_controls(self, layout)
        # --- issue 12: "Segment all" automatic proposals ---
        from napari_devosam._qt.segment_all_panel import SegmentAllPanel

        self.segment_all_panel = SegmentAllPanel(self)
        layout.addWidget(self.segment_all_panel)
        # --- end issue 12 ---
        from napari_devosam._qt.propagate_panel import PropagatePanel  # issue 11

        self.propagate_panel = PropagatePanel(self)
        layout.addWidget(self.propagate_panel)
        layout.addWidget(self.status_label)
        layout.addStretch(1)

        self.viewer.layers.events.inserted.connect(self._refresh_image_choices)
        self.viewer.layers.events.removed.connect(self._on_layer_removed)
        self.viewer.layers.events.renamed.connect(self._refresh_image_choices)
        self.viewer.dims.events.current_step.connect(self._on_plane_change)
        self.destroyed.connect(partial(unbind_viewer, self.viewer, self._viewer_keys))
        self._refresh_image_choices()
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

    def showEvent(self, event):  # noqa: N802 - Qt's name
        """Docked: napari's canvas just shrank; fit the image in it again (once)."""
        super().showEvent(event)
        if not getattr(self, "_fitted", False):
            self._fitted = True
            QTimer.singleShot(0, self.viewer.reset_view)

    # -- image ----------------------------------------------------------------------------
    def _image_layers(self):
        from napari.layers import Image

        return [ly for ly in self.viewer.layers if isinstance(ly, Image) and not ly.multiscale]

    def _refresh_image_choices(self, event=None, auto: bool = True):
        layers = self._image_layers()
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        self.image_combo.addItems([ly.name for ly in layers])
        if self.image_layer in layers:
            self.image_combo.setCurrentIndex(layers.index(self.image_layer))
        self.image_combo.blockSignals(False)
        if auto and self.image_layer is None and layers:
            active = self.viewer.layers.selection.active
            self.set_image_layer(active if active in layers else layers[-1])

    def _on_image_choice(self, index: int):
        layers = self._image_layers()
        if 0 <= index < len(layers) and layers[index] is not self.image_layer:
            self.set_image_layer(layers[index])

    def _on_layer_removed(self, event):
        if event.value is self.image_layer:
            self._detach()
        # a removed gray view is not re-created behind the user's back (nor while napari
        # clears all layers on close); the combo still offers its source
        gray_view = event.value.name.endswith(GRAY_SUFFIX)
        self._refresh_image_choices(auto=not gray_view)

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
            show_error(f"Cannot annotate: {problem}.")
            return
        self.image_layer = layer
        self.state = AnnotatorState(shape, self.predictor)
        self.store_ops.open(layer, shape)
        self.layers = add_layers(self.viewer, layer, self.state.current_labels,
                                 self.store_ops.placeholder)
        follow_transform(layer, self.layers)
        self.viewer.reset_view()  # the whole image in view, whatever the dock took
        for prompt_layer in (self.layers.boxes, self.layers.points):
            prompt_layer.events.data.connect(self._on_prompt_event)
        self.layers.objects.mouse_drag_callbacks.append(self._on_objects_click)
        self.store_ops.watch(self.layers.objects)  # brush/eraser/fill strokes are saved
        # whoever calls the layer's own undo/redo (napari's key binding, a script, another
        # plugin) steps the store's stack: napari's would change pixels the store never sees
        self.layers.objects.undo = self.undo
        self.layers.objects.redo = self.redo
        self._viewer_keys[:] = bind_shortcuts(self, self.viewer, self.layers.as_dict())
        self.viewer.layers.selection.active = self.layers.boxes
        self._refresh_image_choices()
        self._reset_embeddings()

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
        self.predictor.set_embedding(emb)
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

    # -- prompts --------------------------------------------------------------------------
    def _on_plane_change(self, event=None) -> None:
        if self.current_plane is None:
            return
        if self.delete_mode:
            self.toggle_delete_mode()
        self._request_embedding()
        self._update_prompts()

    def _on_prompt_event(self, event) -> None:
        if self._muted:
            return
        if str(getattr(event, "action", "changed")) in ANSWER_ACTIONS:
            self._update_prompts()

    def _update_prompts(self) -> None:
        plane = self.current_plane
        if plane is None:
            return
        changed, dropped = False, []
        planes = {plane} | set(self.state.prompts) | planes_with_prompts(self.layers,
                                                                         self.state.n_lead)
        for p in sorted(planes, key=lambda q: q != plane):
            try:
                self.state.check_plane(p)
                changed |= self.state.update_prompts(p, prompts_on_plane(self.layers, p))
                dropped += self.state.dropped
            except ValueError as exc:  # a plane outside the image; the others go on
                dropped.append(f"prompt dropped: {exc}")
                changed = True
        self._tell_dropped(dropped)
        if changed:
            self._refresh_current()
        self._update_status()

    # -- status ---------------------------------------------------------------------------
    def _update_status(self) -> None:
        from napari_devosam._qt.annotator_controls import status_text

        self.status_label.setText(status_text(self))
