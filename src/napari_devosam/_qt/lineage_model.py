"""The annotator's lineage, followed live: what the Lineage dock draws and the layers' colours.

``lineage_data`` (run on the store thread) reads the store once: the lineage along the tracked
axis (``tracking.lineage.lineage``), every node's object (so a click needs a dict lookup,
not a scan of the store) and one colour per track (``lineage_colors.track_colors``).
``LineageModel`` (owned by the Propagate panel) recomputes it after every store change the
annotator announces (``AnnotatorWidget.store_changed``: commits, undo/redo, propagation,
brush strokes, lineage edits), colours ``objects`` by track, and emits ``changed``; the
dock and the ``tracks`` layer follow that signal.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

from qtpy.QtCore import QObject, Signal

from napari_devosam.tracking.lineage_colors import object_colors, track_colors

UNKNOWN_COLOR = (0.7, 0.7, 0.7, 1.0)  # an object committed since the last recolouring


@dataclass
class LineageData:
    """``info``: ``{track: TrackInfo}``; ``nodes``: ``{(track, frame): [(plane, object id)]}``
    (planes sorted); ``object_tracks``: ``{object id: track}``; ``colors``: ``{track: (r, g,
    b)}``; ``axis``: the tracked leading axis."""

    info: dict = field(default_factory=dict)
    nodes: dict = field(default_factory=dict)
    object_tracks: dict = field(default_factory=dict)
    colors: dict = field(default_factory=dict)
    axis: int = 0

    def object_at(self, track: int, frame: int, near: tuple | None = None):
        """``(plane, object id)`` of ``track`` on ``frame``: the one on the line through
        ``near`` (a plane) when there is one, else the first; None when there is none."""
        found = self.nodes.get((int(track), int(frame)))
        if not found:
            return None
        if near is not None and len(near) > 1:
            a = self.axis
            for plane, oid in found:
                if plane[:a] + plane[a + 1:] == tuple(near[:a]) + tuple(near[a + 1:]):
                    return plane, oid
        return found[0]


def lineage_data(store, axis: int) -> LineageData:
    """On the store thread: the ``LineageData`` of ``store`` along leading ``axis`` (empty
    for a 2D store)."""
    from napari_devosam.tracking.lineage import lineage
    from napari_devosam.tracking.store_tracks import track_of

    if len(store.shape) - 2 <= axis:
        return LineageData(axis=axis)
    info = lineage(store, axis)
    nodes: dict = {}
    object_tracks = {}
    for oid, rec in store.objects.items():
        plane = tuple(int(i) for i in rec["plane"])
        track = track_of(oid, rec)
        object_tracks[oid] = track
        nodes.setdefault((track, plane[axis]), []).append((plane, oid))
    for found in nodes.values():
        found.sort()
    return LineageData(info, nodes, object_tracks, track_colors(info), axis)


def color_objects(layer, data: LineageData) -> None:
    """Colour the ``objects`` Labels ``layer`` by track (a ``DirectLabelColormap``)."""
    from napari.utils.colormaps import DirectLabelColormap

    colors = {None: UNKNOWN_COLOR, 0: (0.0, 0.0, 0.0, 0.0),
              **object_colors(data.object_tracks, data.colors)}
    if _APPLIED.get(layer) == colors:
        return
    # napari re-announces ``selected_label`` with a new colormap; nobody chose a label here
    with layer.events.selected_label.blocker():
        layer.colormap = DirectLabelColormap(color_dict=colors)
    _APPLIED[layer] = colors


# the colours last applied to each layer: kept here, not as an attribute on the layer (napari
# warns about attributes it does not know, at every refresh of the tree)
_APPLIED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class LineageModel(QObject):
    """Follows the annotator ``w``'s store; ``axis()`` gives the tracked axis to read."""

    changed = Signal(object)  # LineageData

    def __init__(self, w, axis, parent=None):
        super().__init__(parent)
        self.w, self.axis = w, axis
        self.data = LineageData()
        self._pending = self._dirty = False
        w.store_changed.connect(self.refresh)

    @property
    def pending(self) -> bool:
        return self._pending

    def refresh(self) -> None:
        """Recompute on the store thread (coalesced: one at a time, one more if asked)."""
        w = self.w
        if w.store is None:
            return
        if self._pending:
            self._dirty = True
            return
        self._pending, layers, axis = True, w.layers, self.axis()
        w.jobs.submit(lineage_data, w.store, axis,
                      on_done=lambda res, err: self._done(layers, res, err))

    def _done(self, layers, data, error) -> None:
        self._pending = False
        if self._dirty:
            self._dirty = False
            self.refresh()
            return
        if error is not None or layers is not self.w.layers:
            if error is not None:
                from napari.utils.notifications import show_warning

                show_warning(f"Could not read the lineage: {error}")
            return
        self.data = data
        if layers is not None:
            color_objects(layers.objects, data)
        self.changed.emit(data)
