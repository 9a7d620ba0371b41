"""The annotator's user actions: clear, candidates, point kind, commit, undo/redo, delete.

A mixin of ``AnnotatorWidget`` (which provides ``viewer``, ``state``, ``layers``,
``store_ops`` and ``current_plane``); kept apart so that each file stays small.
"""

from __future__ import annotations

from napari.utils.notifications import show_info, show_warning

from napari_devosam._qt.annotation_layers import (
    add_prompts,
    point_kind,
    remove_prompts,
    set_point_kind,
    update_labels_region,
)


class AnnotatorActions:
    """What the buttons and shortcuts of the annotator do."""

    def _remove_prompts(self, plane) -> None:
        self._muted = True
        try:
            remove_prompts(self.layers, plane)
        finally:
            self._muted = False

    def _refresh_current(self) -> None:
        """Show the state's new current objects: only the changed part of the displayed
        plane when the state knows it (a click repaints one object), else a full refresh."""
        if self.layers is None:
            return
        layer = self.layers.current
        regions = self.state.take_changed_regions() if self.state is not None else None
        plane = self.current_plane
        if regions is not None and plane is not None and (
                plane not in regions  # other planes are re-sliced when shown
                or update_labels_region(layer, self.state.current_labels, plane, regions[plane])):
            return
        layer.refresh(thumbnail=False, extent=False)

    def _tell_dropped(self, messages: list[str]) -> None:
        """One notification for prompts newly dropped (not again for the same ones)."""
        told = getattr(self, "_told_dropped", set())
        new = [m for m in dict.fromkeys(messages) if m not in told]
        self._told_dropped = set(messages)
        if new:
            show_warning("SAM cannot use " + ("this prompt" if len(new) == 1 else
                                              f"{len(new)} prompts") + ": " + "; ".join(new))

    def clear_prompts(self) -> None:
        """Remove the current plane's boxes and points and its current object(s)."""
        plane = self.current_plane
        if plane is None:
            return
        self._remove_prompts(plane)
        if self.state.clear(plane):
            self._refresh_current()
        self._update_status()

    def next_candidate(self) -> None:
        """Show SAM's next candidate mask for the single ambiguous prompt of this plane."""
        plane = self.current_plane
        if plane is not None and self.state.next_candidate(plane):
            self._refresh_current()
            self._update_status()

    def toggle_point_kind(self) -> None:
        """Switch new points between positive and negative."""
        if self.layers is not None:
            set_point_kind(self.layers.points, not point_kind(self.layers.points))
            self._update_status()

    # -- commit, undo, delete -------------------------------------------------------------
    def commit(self) -> None:
        """Commit this plane's current object(s) to the store; the plane's prompts clear."""
        plane = self.current_plane
        if plane is None:
            return
        if self.state.is_pending(plane):
            show_info(self._pending_reason(plane))
            return
        taken = self.state.prompts.get(plane), self.state.result(plane)
        payload = self.state.take_commit(plane)
        if payload is None:
            show_info("Nothing to commit on this plane: draw a box or click a point first.")
            return
        masks, prompts = payload
        self._remove_prompts(plane)
        self._refresh_current()
        info = {"model": self._model_text, "decoder": self._decoder_text}
        self.store_ops.commit(plane, masks, prompts, info,
                              on_error=lambda error: self._commit_failed(plane, taken, error))
        self._update_status()

    def _commit_failed(self, plane, taken, error) -> None:
        """A commit that could not be saved: its prompts and mask come back (unless the
        plane has new prompts by now), and a project folder is offered."""
        from napari_devosam._qt.store_ops import notify

        state, (prompts, result) = self.state, taken
        kept = state is not None and not state.prompts.get(plane) and result is not None
        if kept:
            self._muted = True
            try:
                add_prompts(self.layers, plane, prompts)
            finally:
                self._muted = False
            state.restore(plane, prompts, result)
            self._refresh_current()
        notify(f"Commit failed: {error}. " + ("The mask and its prompts are kept: choose a "
               "project folder, then commit again." if kept else ""), self)
        self._update_status()

    def _pending_reason(self, plane) -> str:
        """Why ``plane``'s prompts have no mask yet, truthfully."""
        if self.predictor is None:
            return "No model is loaded: load one in the Model panel; the masks follow."
        if self.embeddings.computing_plane == plane:
            return "The SAM embedding of this plane is still computing; commit when the mask shows."
        if self.state.ready_plane == plane:
            return "SAM could not answer this plane's prompts (see the warning): change them."
        self._request_embedding()  # it failed or was cancelled: ask again
        return ("The SAM embedding of this plane is not available (it failed or was "
                "cancelled); computing it again, commit when the mask shows.")

    def undo(self) -> None:
        """Undo the last commit or delete (object level)."""
        self.store_ops.undo()

    def redo(self) -> None:
        self.store_ops.redo()

    def delete_object(self, object_id: int) -> None:
        self.store_ops.delete(object_id)

    def toggle_delete_mode(self) -> None:
        """In delete mode a click on a committed object deletes it."""
        if self.layers is None:
            return
        self.delete_mode = not self.delete_mode
        selection = self.viewer.layers.selection
        if self.delete_mode:
            self._previous_active = selection.active
            selection.active = self.layers.objects
            self.layers.objects.mode = "pan_zoom"
        elif self._previous_active in self.viewer.layers:
            selection.active = self._previous_active
        self.delete_button.setChecked(self.delete_mode)
        self._update_status()

    def _on_objects_click(self, layer, event) -> None:
        if not self.delete_mode or event.button != 1 or self.store is None:
            return
        pos = layer.world_to_data(event.position)
        object_id = self.store.object_at(self.current_plane, pos[-2:])
        if object_id:
            self.delete_object(object_id)

    def export(self, out_dir):
        """Export the committed objects as a training bundle in ``out_dir`` (a worker)."""
        return self.store_ops.export(out_dir)

    def wait_for_store(self) -> None:
        """Block until every store change submitted so far is on disk."""
        self.jobs.wait()
