"""Changes of objects' track fields (lineage edits) as one undo step of an ``AnnotationStore``.

A records action is ``{"kind": "records", "plane", "planes": [], "records": {id: (record
before, record after)}, "objects": [{"id"}...]}``: it changes records only, never a pixel, so
saving it rewrites ``store.json`` alone. With ``deletes`` the action is a batch (the
``store_batch`` format): the objects' delete actions, then the records change, one undo step
written atomically like any batch.

Only the track fields may change: ``"track"`` (the track id), ``"parent"`` (the mother's
track id) and ``"ended"`` (why the track ends on this object, e.g. "deleted"); a value of
None removes the field (``"track"``: the object's own id again; ``"parent"``: no mother).
"""

from __future__ import annotations

TRACK_FIELDS = ("track", "parent", "ended")


def records_action(content, changes: dict[int, dict], deletes=(),
                   next_id: int | None = None) -> dict | None:
    """Set the track fields ``changes`` (``{object id: {field: value or None}}``) and delete
    the objects ``deletes`` in ``content`` (a ``committed.CommittedObjects``), in memory.

    ``next_id``: the next free id becomes at least this (ids taken as new track ids; like
    every id, never given back, not even by an undo). Returns the action, or None when
    nothing changes. Raises ``ValueError`` for unknown ids, a field that is not a track
    field, or an object both changed and deleted; then nothing has changed.
    """
    deletes = [int(i) for i in deletes]
    unknown = sorted(i for i in {*map(int, changes), *deletes} if i not in content.records)
    if unknown:
        raise ValueError(f"there is no object with id {unknown[0]}")
    both = sorted(set(map(int, changes)) & set(deletes))
    if both:
        raise ValueError(f"object {both[0]} cannot be both changed and deleted")
    for fields in changes.values():
        bad = sorted(set(fields) - set(TRACK_FIELDS))
        if bad:
            raise ValueError(f"{bad[0]!r} is not a track field ({', '.join(TRACK_FIELDS)})")
    records = {}
    for oid, fields in sorted(changes.items()):
        before = content.records[int(oid)]
        after = dict(before)
        for name, value in fields.items():
            if value is None:
                after.pop(name, None)
            else:
                after[name] = value if name == "ended" else int(value)
        if after != before:
            records[int(oid)] = (before, after)
    if next_id is not None:
        content.next_id = max(content.next_id, int(next_id))
    steps = [content.delete_action(oid) for oid in deletes]
    if records:
        plane = tuple(content.records[next(iter(records))]["plane"])
        step = {"kind": "records", "plane": plane, "planes": [], "records": records,
                "objects": [{"id": i} for i in records]}
        apply_records(content, step, forward=True)
        steps.append(step)
    if not steps:
        return None
    if len(steps) == 1 and not deletes:
        return steps[0]
    return {"kind": "batch", "what": "records", "plane": steps[0]["plane"], "steps": steps,
            "planes": sorted({s["plane"] for s in steps if s["kind"] == "delete"}),
            "objects": [c for s in steps for c in s["objects"]]}


def apply_records(content, action: dict, forward: bool) -> None:
    """Do (``forward``) or revert a records action in ``content``."""
    for oid, (before, after) in action["records"].items():
        content.set_record(oid, after if forward else before)
