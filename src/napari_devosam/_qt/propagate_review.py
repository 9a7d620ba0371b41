"""The Propagate panel's review list: events grouped by kind, worst first, a click jumps there.

The events come from ``tracking.review_events`` (one per division, track end, stretch of low
confidence or "found again", blank plane), already sorted by confidence; each group's heading
gives its count ("division (3)"). A click on an event emits ``picked(event)``; the panel moves
the viewer to the event's plane and selects the track's object there.
"""

from __future__ import annotations

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QTreeWidget, QTreeWidgetItem

EVENT_ROLE = Qt.ItemDataRole.UserRole


def _worst_first(event):
    """Lowest confidence first, unknown (NaN) last, then frame and track."""
    c = event.confidence
    return (c != c, 0.0 if c != c else c, event.frame, event.track)


class ReviewList(QTreeWidget):
    """A tree of ``ReviewEvent`` groups; ``events`` is the flat list in display order."""

    picked = Signal(object)  # ReviewEvent

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setColumnCount(1)
        self.events: list = []
        self.itemClicked.connect(self._clicked)

    def set_events(self, events) -> None:
        """Show ``events`` grouped by kind (groups expanded), each group worst first."""
        from napari_devosam.tracking.review_events import group_events, group_titles

        self.clear()
        groups = group_events(sorted(events, key=_worst_first))
        titles = group_titles(groups)
        self.events = []
        for kind, members in groups.items():
            head = QTreeWidgetItem([titles[kind]])
            head.setFlags(head.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            for event in members:
                item = QTreeWidgetItem([event.text()])
                item.setData(0, EVENT_ROLE, len(self.events))
                item.setToolTip(0, event.reason)
                head.addChild(item)
                self.events.append(event)
            self.addTopLevelItem(head)
            head.setExpanded(True)

    def counts(self) -> dict[str, int]:
        """``{kind: number of events}`` as shown."""
        out: dict[str, int] = {}
        for e in self.events:
            out[e.kind] = out.get(e.kind, 0) + 1
        return out

    def item_of(self, index: int):
        """The tree item of ``events[index]`` (None when out of range)."""
        for g in range(self.topLevelItemCount()):
            head = self.topLevelItem(g)
            for c in range(head.childCount()):
                if head.child(c).data(0, EVENT_ROLE) == index:
                    return head.child(c)
        return None

    def _clicked(self, item, column=0) -> None:
        index = item.data(0, EVENT_ROLE)
        if index is not None and 0 <= index < len(self.events):
            self.picked.emit(self.events[index])


def run_events(plan, ids, axis: int) -> list:
    """The review events of a propagation ``plan`` (``store_tracks.StorePlan``) applied as
    object ids ``ids`` (one per ``plan.result.objects``): new tracks' placeholder ids become
    the ids the store gave them (the id of each new track's first object). Tracks none of
    whose objects was committed (no pixel left) have no event."""
    from napari_devosam.tracking.review_events import review_events

    tracks: dict[int, int] = {}
    for obj, oid in zip(plan.result.objects, ids, strict=True):
        if obj.track < 0 and oid:
            tracks.setdefault(obj.track, oid)
    visible = {tracks.get(obj.track, obj.track)
               for obj, oid in zip(plan.result.objects, ids, strict=True) if oid}
    return review_events(plan.result, axis, tracks=tracks, visible=visible)


def jump_to_event(panel, event) -> None:
    """Show ``event``'s plane in the Propagate ``panel``'s viewer, its track's object there
    selected in ``objects`` (and in the panel)."""
    from napari_devosam._qt.propagate_view import go_to_plane

    w = panel.w
    if w.image_layer is None:
        return
    go_to_plane(w.viewer, w.image_layer, event.plane)
    found = panel.lineage.data.object_at(event.track, event.frame, event.plane)
    object_id = found[1] if found and found[0] == tuple(event.plane) else 0
    if object_id and w.layers is not None:
        w.layers.objects.selected_label = object_id
    panel._set_selected(object_id or panel.selected)


def still_there(event, data) -> bool:
    """Whether ``event`` still applies to the lineage ``data`` (``LineageData``): its track has
    an object on its frame (a division: the mother still divides); plane events always do."""
    if not event.track:
        return True
    if event.kind == "division":
        info = data.info.get(event.track)
        return info is not None and bool(info.daughters)
    return (event.track, event.frame) in data.nodes


def events_from_store(panel, keep=()) -> None:
    """Fill ``panel``'s review list from its store's records (a reopened store, tracks
    imported from the CLI, or edited: ``review_events`` of the store, along the panel's axis)
    on the store thread, unless a run or an import fills it meanwhile. ``keep``: events to
    list as well (a run's blank planes, which the records do not hold)."""
    from napari_devosam.tracking.review_events import review_events

    w, axis = panel.w, panel.axis_combo.currentData()
    panel.review_list.set_events([])
    store = w.store
    if store is None or axis is None:
        return
    below = panel.form.values().get("review_below", 0.7)

    def done(events, error) -> None:
        if error is None and store is w.store and not panel.review_list.events:
            panel.review_list.set_events(list(keep) + list(events))

    w.jobs.submit(lambda: review_events(store, axis, review_below=below), on_done=done)


def follow_track_edits(panel) -> None:
    """Read ``panel``'s review list again from the store after a track edit in the Lineage
    dock and after an undo or redo (a run's blank planes kept): the list had only dropped the
    events of deleted tracks, and still showed a division after *No mother* and a track end
    after *A is B's mother* (new-user trial 19)."""
    def again(*_):
        events_from_store(panel, keep=[e for e in panel.entries if not e.track])

    def edited():
        panel.message.setText("")  # an earlier undo's message no longer holds
        again()

    panel.w.lineage_edited.connect(edited)
    panel.w.history_stepped.connect(panel.message.setText)
    panel.w.history_stepped.connect(again)
