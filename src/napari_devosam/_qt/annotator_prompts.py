"""The annotator's prompt loop: boxes and points on the prompt layers -> SAM's current objects
(``annotation.state.AnnotatorState``) -> the ``current object`` layer, and their commit.

``PromptController`` is owned by ``AnnotatorWidget`` (which provides ``viewer``, ``state``,
``layers``, ``predictor``, ``embeddings``, ``store_ops`` and ``current_plane``). It reads the
prompt layers, tells the state, shows what changed, and hands committed masks to the store
jobs; what cannot be committed comes back to the layers. Prompts drawn over automatic
proposals add their objects to them; ``undo_added`` (the annotator's Undo) and ``clear`` remove
those prompts and keep the proposals.
"""

from __future__ import annotations

from napari.utils.notifications import show_info, show_warning

from napari_devosam._qt.annotation_layers import (
    add_prompts,
    planes_with_prompts,
    point_kind,
    prompts_on_plane,
    remove_prompts,
    set_point_kind,
    update_labels_region,
)
from napari_devosam.utils.text import count

ANSWER_ACTIONS = {"added", "changed", "removed"}


class PromptController:
    """Keeps the state's prompts equal to the prompt layers and the current layer equal to
    the state's objects; ``muted`` while it edits the prompt layers itself."""

    def __init__(self, widget) -> None:
        self.w = widget
        self.muted = False
        self._told_dropped: set[str] = set()

    # -- layers -> state ------------------------------------------------------------------
    def on_prompt_event(self, event) -> None:
        """A prompt layer's ``data`` event: answer the prompts once the change is done."""
        if self.muted:
            return
        if str(getattr(event, "action", "changed")) in ANSWER_ACTIONS:
            self.update()

    def update(self) -> None:
        """Read every plane's prompts (the shown plane first) and answer the changed ones."""
        w = self.w
        plane = w.current_plane
        if plane is None:
            return
        changed, dropped = False, []
        before = w.state.result(plane)
        planes = {plane} | set(w.state.prompts) | planes_with_prompts(w.layers, w.state.n_lead)
        for p in sorted(planes, key=lambda q: q != plane):
            try:
                w.state.check_plane(p)
                changed |= w.state.update_prompts(p, prompts_on_plane(w.layers, p))
                dropped += w.state.dropped
            except ValueError as exc:  # a plane outside the image; the others go on
                dropped.append(f"prompt dropped: {exc}")
                changed = True
        self._tell_dropped(dropped)
        if changed:
            self.refresh_current()
            self._tell_added(before, w.state.result(plane))
        w._update_status()

    @staticmethod
    def _tell_added(before, after) -> None:
        """Say so when prompts' objects were just added to a plane's automatic proposals."""
        if after is not None and after.kept is not None and (
                before is None or before.kept is None):
            show_info(f"Your prompt's object is added to the {count(after.n_kept, 'proposal')}"
                      " of this plane (Ctrl+Z removes it, Commit stores them all)")

    def _tell_dropped(self, messages: list[str]) -> None:
        """One notification for prompts newly dropped (not again for the same ones)."""
        new = [m for m in dict.fromkeys(messages) if m not in self._told_dropped]
        self._told_dropped = set(messages)
        clipped = [m for m in new if "clipped to" in m]  # used, clipped to the plane
        new = [m for m in new if m not in clipped]
        if clipped:
            show_warning("; ".join(clipped))
        if new:
            show_warning("SAM cannot use " + ("this prompt" if len(new) == 1 else
                                              f"{len(new)} prompts") + ": " + "; ".join(new))

    # -- state -> current layer -----------------------------------------------------------
    def refresh_current(self) -> None:
        """Show the state's new current objects: only the changed part of the displayed
        plane when the state knows it (a click repaints one object), else a full refresh."""
        w = self.w
        if w.layers is None:
            return
        layer = w.layers.current
        regions = w.state.take_changed_regions() if w.state is not None else None
        plane = w.current_plane
        if regions is not None and plane is not None and (
                plane not in regions  # other planes are re-sliced when shown
                or update_labels_region(layer, w.state.current_labels, plane, regions[plane])):
            return
        layer.refresh(thumbnail=False, extent=False)

    def _remove_prompts(self, plane) -> None:
        self.muted = True
        try:
            remove_prompts(self.w.layers, plane)
        finally:
            self.muted = False

    # -- user actions ---------------------------------------------------------------------
    def clear(self) -> None:
        """Remove the current plane's boxes and points and its current object(s); prompts
        drawn over automatic proposals go first, the proposals on the next clear."""
        if self.undo_added():
            return
        plane = self.w.current_plane
        if plane is None:
            return
        self._remove_prompts(plane)
        if self.w.state.clear(plane):
            self.refresh_current()
        self.w._update_status()

    def undo_added(self) -> bool:
        """Remove the prompts drawn over this plane's automatic proposals and their objects;
        the proposals stay. Returns False (changing nothing) when there are none."""
        w = self.w
        plane = w.current_plane
        if plane is None or w.state is None:
            return False
        current = w.state.result(plane)
        n_added = 0 if current is None else sum(not p.get("automatic") for p in current.prompts)
        if not w.state.drop_added_prompts(plane):
            return False
        self._remove_prompts(plane)
        self.refresh_current()
        n_kept = len(w.state.result(plane).masks)
        show_info(f"Undo: {count(n_added, 'object')} of your prompts removed; "
                  f"{count(n_kept, 'proposal')} kept")
        w._update_status()
        return True

    def next_candidate(self) -> None:
        """Show SAM's next candidate mask for the single ambiguous prompt of this plane."""
        plane = self.w.current_plane
        if plane is not None and self.w.state.next_candidate(plane):
            self.refresh_current()
            self.w._update_status()

    def toggle_point_kind(self) -> None:
        """Switch new points between positive and negative."""
        if self.w.layers is not None:
            points = self.w.layers.points
            set_point_kind(points, not point_kind(points))
            self.w._update_status()

    def commit(self) -> None:
        """Commit this plane's current object(s) to the store; the plane's prompts clear."""
        w = self.w
        plane = w.current_plane
        if plane is None:
            return
        if w.state.is_pending(plane):
            show_info(self._pending_reason(plane))
            return
        taken = w.state.prompts.get(plane), w.state.result(plane)
        payload = w.state.take_commit(plane)
        if payload is None:
            show_info("Nothing to commit on this plane: draw a box or click a point first.")
            return
        masks, prompts = payload
        self._remove_prompts(plane)
        self.refresh_current()
        info = {"model": w._model_text, "decoder": w._decoder_text}
        w.store_ops.commit(plane, masks, prompts, info,
                           on_error=lambda error: self._commit_failed(plane, taken, error))
        w._update_status()

    def _commit_failed(self, plane, taken, error) -> None:
        """A commit that could not be saved: its prompts and mask come back (unless the
        plane has new prompts by now), and a project folder is offered."""
        from napari_devosam._qt.store_ops import notify

        state, (prompts, result) = self.w.state, taken
        kept = state is not None and not state.prompts.get(plane) and result is not None
        if kept:
            self.muted = True
            try:
                add_prompts(self.w.layers, plane, prompts)
            finally:
                self.muted = False
            state.restore(plane, prompts, result)
            self.refresh_current()
        notify(f"Commit failed: {error}. " + ("The mask and its prompts are kept: choose a "
               "project folder, then commit again." if kept else ""), self.w)
        self.w._update_status()

    def _pending_reason(self, plane) -> str:
        """Why ``plane``'s prompts have no mask yet, truthfully."""
        w = self.w
        if w.predictor is None:
            return "No model is loaded: load one in the Model panel; the masks follow."
        if w.embeddings.computing_plane == plane:
            return "The SAM embedding of this plane is still computing; commit when the mask shows."
        if w.state.ready_plane == plane:
            return "SAM could not answer this plane's prompts (see the warning): change them."
        w._request_embedding()  # it failed or was cancelled: ask again
        return ("The SAM embedding of this plane is not available (it failed or was "
                "cancelled); computing it again, commit when the mask shows.")
