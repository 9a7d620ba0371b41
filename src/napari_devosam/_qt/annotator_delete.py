"""Delete mode of the annotator: while it is on, a click on a committed object deletes it."""

from __future__ import annotations


class DeleteMode:
    """Owned by ``AnnotatorWidget``; ``on`` tells whether clicks on ``objects`` delete."""

    def __init__(self, widget) -> None:
        self.w = widget
        self.on = False
        self._previous_active = None

    def toggle(self) -> None:
        """Turn delete mode on (the ``objects`` layer becomes active, in pan/zoom mode) or off
        (the layer active before comes back)."""
        w = self.w
        if w.layers is None:
            return
        self.on = not self.on
        selection = w.viewer.layers.selection
        if self.on:
            self._previous_active = selection.active
            selection.active = w.layers.objects
            w.layers.objects.mode = "pan_zoom"
        elif self._previous_active in w.viewer.layers:
            selection.active = self._previous_active
        w.delete_button.setChecked(self.on)
        w._update_status()

    def on_objects_click(self, layer, event) -> None:
        """A mouse press on the ``objects`` layer: delete the object under it in delete mode."""
        w = self.w
        if not self.on or event.button != 1 or w.store is None:
            return
        pos = layer.world_to_data(event.position)
        object_id = w.store.object_at(w.current_plane, pos[-2:])
        if object_id:
            w.delete_object(object_id)
