"""Tracks made by other tools into an annotation store: CTC results and GEFF graphs.

A Cell Tracking Challenge (CTC) result folder holds ``maskNNN.tif`` (one label image per
frame, label = track id, 0 background) and ``res_track.txt`` (one ``L B E P`` line per track:
label, first frame, last frame, mother label, 0 none); see ``track_files`` for the format. A
GEFF graph (https://liveimagingtrackingtools.org/geff) comes with such a mask folder: each
node is an object of a frame, found in the masks by its ``seg_id`` property, else by the mask
label under its ``(y, x)`` position; chains of nodes are tracks, a node with two successors
divides.

Frames are the planes along the store's first leading axis (T of a ``(T, Y, X)`` or ``(T, Z,
Y, X)`` movie; a mask of a 4D movie is ``(Z, Y, X)``, one object per z-slice). Every object
becomes a store object with ``"track"`` = its track label and ``"parent"`` = its mother's
label (``store_tracks``), ``"source": "import"``; new object ids start above every label, so
track ids stay unique. The whole import is one undo step, saved atomically.

Everything is read and checked before anything is written: a mask folder whose shape
differs from the movie, masks that disagree with ``res_track.txt`` (a label missing on a
frame it claims, a label not listed, a mother that does not exist or does not end before
her daughter starts) are refused with one line (``TrackImportError``) naming the first
disagreement. A store that holds objects is refused unless ``replace``.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_devosam.tracking.track_reading import (  # noqa: F401 - TrackImportError: the API's
    TrackImportError,
    _read_frame,
    mask_files,
    read_ctc,
    read_geff,
)


@dataclass(frozen=True)
class ImportSummary:
    """What an import did: ``tracks``, ``divisions`` (``records.division_count``: one
    daughter alone is no division), ``objects`` committed, ``frames`` read, ``replaced``
    (objects deleted first), ``many_daughters``: ``{mother: daughters}`` of the mothers with
    more than two (another tool's error, kept so that it can be curated)."""

    tracks: int
    divisions: int
    objects: int
    frames: int
    replaced: int
    many_daughters: dict = field(default_factory=dict)

    def text(self) -> str:
        from napari_devosam.utils.text import count

        done = (f"imported {count(self.tracks, 'track')}, {count(self.divisions, 'division')}, "
                f"{count(self.objects, 'object')} on {count(self.frames, 'frame')}")
        done += f" (replacing {count(self.replaced, 'object')})" if self.replaced else ""
        odd = [f"track {m} has {len(d)} daughters ({', '.join(map(str, d))})"
               for m, d in sorted(self.many_daughters.items())]
        return done + (f"; check in the lineage: {'; '.join(odd)}" if odd else "")


def _frame_count(store, files) -> tuple[int, ...]:
    frame_shape = tuple(store.shape[1:])
    if len(store.shape) < 3:
        raise TrackImportError(f"the movie of shape {tuple(store.shape)} has no time axis")
    if len(files) != store.shape[0]:
        raise TrackImportError(f"the masks cover {len(files)} frames, the movie has "
                               f"{store.shape[0]}")
    return frame_shape


def _out_of(gen, total: int):
    """``gen``'s ``(done, n)`` as ``(done, total)`` (a last step follows); returns its value."""
    while True:
        try:
            done, _ = next(gen)
        except StopIteration as stop:
            return stop.value
        yield done, total


def _commits(labels: np.ndarray, parents: dict[int, int], info: dict,
             track_of: dict[int, int] | None = None):
    """``(plane, mask, record)`` per object of the track labels ``(F, *frame)``, frame by
    frame (a generator: one full-plane mask in memory at a time)."""
    from scipy import ndimage

    plane_shape = labels.shape[-2:]
    for f in range(labels.shape[0]):
        frame = labels[f]
        boxes = ndimage.find_objects(frame)
        for index, box in enumerate(boxes):
            if box is None:
                continue
            label = index + 1
            sub = frame[box] == label
            for lead in np.ndindex(*sub.shape[:-2]):
                part = sub[lead]
                if not part.any():
                    continue
                mask = np.zeros(plane_shape, dtype=bool)
                mask[box[-2:]] = part
                plane = (f, *(b.start + i for b, i in zip(box[:-2], lead, strict=True)))
                track = (track_of or {}).get(label, label)
                record = {"track": track, "parent": parents.get(track), "prompts": {},
                          "source": "import", **info}
                yield plane, mask, record


def _existing(store, replace: bool) -> list[int]:
    """The store's object ids (to replace); ``TrackImportError`` when there are some and
    ``replace`` is False."""
    existing = sorted(store.objects)
    if existing and not replace:
        error = TrackImportError(f"the movie's annotation store already holds "
                                 f"{len(existing)} objects: the imported tracks would "
                                 "replace them")
        error.needs_replace = True
        raise error
    return existing


def store_tracks_from_labels(store, labels: np.ndarray, parents: dict[int, int], *,
                             replace: bool = False, info: dict | None = None) -> ImportSummary:
    """Commit track labels ``(F, *frame)`` (``store.shape``) and ``{daughter: mother}`` into
    ``store`` as one undo step (refused when it holds objects, unless ``replace``)."""
    if tuple(labels.shape) != tuple(store.shape):
        raise TrackImportError(f"the masks have shape {tuple(labels.shape)}, the movie "
                               f"{tuple(store.shape)}")
    existing = _existing(store, replace)
    top = int(labels.max()) if labels.size else 0
    if top == 0:  # --replace would leave an empty store
        raise TrackImportError("the masks hold no object: nothing to import")
    track_of, parents = gap_continuations(labels, parents)
    ids = store.apply_batch(existing, _commits(labels, parents, info or {}, track_of),
                            next_id=top + 1)
    tracks = {track_of.get(t, t) for t in set(np.unique(labels).tolist()) - {0}}
    from napari_devosam.tracking.records import division_count

    kept = {t: parents[t] for t in tracks if t in parents}
    daughters: dict[int, list[int]] = {}
    for t, m in sorted(kept.items()):
        daughters.setdefault(m, []).append(t)
    return ImportSummary(len(tracks), division_count(kept), sum(1 for i in ids if i),
                         labels.shape[0], len(existing),
                         {m: d for m, d in daughters.items() if len(d) > 2})


def gap_continuations(labels: np.ndarray, parents: dict[int, int]
                      ) -> tuple[dict[int, int], dict[int, int]]:
    """CTC writes a track with a gap as a mother with ONE daughter that starts after the gap;
    that is one cell, not a division (our own export does the same, ``track_files``).

    Returns ``({label: track}, {track: mother track})``: each such daughter (only child,
    first frame > mother's last + 1) continues her mother's track; other links stay
    divisions. ``labels`` is ``(F, ...)``.
    """
    first, last = {}, {}
    for f in range(labels.shape[0]):
        for t in np.unique(labels[f]).tolist():
            if t:
                first.setdefault(t, f)
                last[t] = f
    children: dict[int, list[int]] = {}
    for d, m in parents.items():
        children.setdefault(m, []).append(d)
    track_of: dict[int, int] = {}
    for m, kids in children.items():
        if len(kids) == 1 and kids[0] in first and m in last and first[kids[0]] > last[m] + 1:
            track_of[kids[0]] = m

    def root(t):
        while t in track_of:
            t = track_of[t]
        return t

    track_of = {t: root(t) for t in track_of}
    merged = {}
    for d, m in parents.items():
        if d not in track_of:
            merged[root(d)] = root(m)
    return track_of, merged


def import_ctc(store, result_dir, *, replace: bool = False
               ) -> Generator[tuple[int, int], None, ImportSummary]:
    """Import a CTC result folder into ``store`` (the movie's ``AnnotationStore``); yields
    ``(done, total)`` (frames read, then the commit), returns an ``ImportSummary``. Raises
    ``TrackImportError`` (nothing written) for masks of another shape, disagreements with
    ``res_track.txt``, or a store with objects without ``replace``."""
    _existing(store, replace)  # refused before anything is read
    files = mask_files(result_dir)
    frame_shape = _frame_count(store, files)
    reading = read_ctc(result_dir, frame_shape, len(files))
    labels, parents = yield from _out_of(reading, len(files) + 1)
    summary = store_tracks_from_labels(store, labels, parents, replace=replace,
                                       info={"imported_from": str(Path(result_dir))})
    yield len(files) + 1, len(files) + 1
    return summary


def import_geff(store, geff_path, mask_dir, *, replace: bool = False
                ) -> Generator[tuple[int, int], None, ImportSummary]:
    """Import a GEFF graph with its mask folder (``maskNNN.tif``, any labels) into ``store``;
    yields ``(done, total)``, returns an ``ImportSummary``. Tracks come from the graph
    (``geff_graph.tracks_from_graph``); the masks give the pixels. Raises
    ``TrackImportError`` (nothing written) as ``import_ctc``, and for nodes that match no
    mask object; ``RuntimeError`` without the optional ``geff`` package."""
    _existing(store, replace)  # refused before anything is read
    files = mask_files(mask_dir)
    frame_shape = _frame_count(store, files)
    labels, parents = yield from _out_of(read_geff(geff_path, mask_dir, frame_shape,
                                                   len(files)), len(files) + 1)
    summary = store_tracks_from_labels(store, labels, parents, replace=replace,
                                       info={"imported_from": str(Path(geff_path))})
    yield len(files) + 1, len(files) + 1
    return summary
