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

import re
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MASK_NAME = re.compile(r"mask(\d+)\.tif{1,2}$")
TRUTH_NAME = re.compile(r"man_track(\d+)\.tif{1,2}$")  # CTC tracking truth (TRA folder)


def track_file(folder) -> Path:
    """The folder's track list: ``res_track.txt`` (a result), else ``man_track.txt`` (the
    CTC tracking truth, same ``L B E P`` lines); ``res_track.txt`` when neither exists."""
    folder = Path(folder)
    truth = folder / "man_track.txt"
    if not (folder / "res_track.txt").is_file() and truth.is_file():
        return truth
    return folder / "res_track.txt"


class TrackImportError(ValueError):
    """A result that cannot be imported; one line naming the first problem. Nothing was
    written. ``needs_replace``: refused only because the store holds objects (the caller
    says how to replace them: ``--replace``, or the panel's question)."""

    needs_replace = False


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


def mask_files(folder) -> list[Path]:
    """The ``maskNNN.tif`` files of ``folder`` in frame order (a CTC result), or its
    ``man_trackNNN.tif`` files when the folder is the CTC tracking truth (``TRA``: it has
    ``man_track.txt``); ``TrackImportError`` when there are none or a frame number is
    missing (frames count from 0)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TrackImportError(f"{folder} is not a folder")
    truth = track_file(folder).name == "man_track.txt"
    name, prefix = (TRUTH_NAME, "man_track") if truth else (MASK_NAME, "mask")
    found = {}
    for path in folder.iterdir():
        m = name.fullmatch(path.name)
        if m:
            found[int(m.group(1))] = path
    if not found:
        raise TrackImportError(f"{folder} holds no {prefix}NNN.tif files")
    for f in range(max(found) + 1):
        if f not in found:
            raise TrackImportError(f"{folder} has no mask for frame {f} ({prefix}{f:03d}.tif)")
    return [found[f] for f in sorted(found)]


def read_res_track(path) -> dict[int, tuple[int, int, int]]:
    """``res_track.txt`` -> ``{label: (first, last, mother label or 0)}``; one line per
    track (a first line of column names, ``L B E P``, is skipped). ``TrackImportError`` for
    an empty file, a line that is not four integers, a label listed twice, or a track that
    ends before it starts."""
    path = Path(path)
    if not path.is_file():
        raise TrackImportError(f"{path.parent} has no res_track.txt")
    rows: dict[int, tuple[int, int, int]] = {}
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts or (not rows and n == _first_line(lines) and _is_header(parts)):
            continue
        try:
            label, first, last, parent = (int(p) for p in parts)
        except ValueError:
            raise TrackImportError(f"{path.name} line {n}: expected 'L B E P' (four integers), "
                                   f"got {line.strip()!r}") from None
        if label in rows:
            raise TrackImportError(f"{path.name} line {n}: track {label} is listed twice")
        if label <= 0 or first < 0 or parent < 0:
            raise TrackImportError(f"{path.name} line {n}: bad track {line.strip()!r} (labels "
                                   "and frames are not negative; label 0 is background)")
        if first > last:
            raise TrackImportError(f"{path.name} line {n}: track {label} starts on frame "
                                   f"{first}, after it ends on frame {last}")
        rows[label] = (first, last, parent)
    if not rows:
        raise TrackImportError(f"{path} lists no track (it is empty)")
    return rows


def _first_line(lines: list[str]) -> int:
    return next((n for n, line in enumerate(lines, 1) if line.strip()), 0)


def _is_header(parts: list[str]) -> bool:
    return [p.upper() for p in parts] == ["L", "B", "E", "P"]


def _check_rows(rows: dict[int, tuple[int, int, int]], n_frames: int,
                name: str = "res_track.txt") -> None:
    for label, (first, last, parent) in sorted(rows.items()):
        if last >= n_frames:
            raise TrackImportError(f"{name}: track {label} ends on frame {last}, but "
                                   f"there are only {n_frames} masks")
        if parent == label:
            raise TrackImportError(f"{name}: track {label} names itself as its mother")
        if parent and parent not in rows:
            raise TrackImportError(f"{name}: the mother {parent} of track {label} is "
                                   "not a track")
        if parent and rows[parent][1] >= first:
            raise TrackImportError(f"{name}: track {label} starts on frame {first}, "
                                   f"not after its mother {parent} ends ({rows[parent][1]})")


def _read_frame(path: Path, frame_shape: tuple[int, ...] | None) -> np.ndarray:
    from napari_devosam.io.read import read_image

    data = np.asarray(read_image(path))
    if frame_shape is not None and data.shape != tuple(frame_shape):
        raise TrackImportError(f"{path.name} has shape {data.shape}, the movie's frames "
                               f"{frame_shape}: these masks belong to another movie")
    if data.dtype.kind not in "iu":
        raise TrackImportError(f"{path.name} is not a label image (dtype {data.dtype}: labels "
                               "are integers)")
    if data.size and data.min() < 0:
        raise TrackImportError(f"{path.name} holds negative labels (down to {data.min()}): "
                               "labels are 0 (background) or positive")
    return data


def _frame_count(store, files) -> tuple[int, ...]:
    frame_shape = tuple(store.shape[1:])
    if len(store.shape) < 3:
        raise TrackImportError(f"the movie of shape {tuple(store.shape)} has no time axis")
    if len(files) != store.shape[0]:
        raise TrackImportError(f"the masks cover {len(files)} frames, the movie has "
                               f"{store.shape[0]}")
    return frame_shape


def read_ctc(result_dir, frame_shape: tuple[int, ...] | None = None, n_frames=None
             ) -> Generator[tuple[int, int], None, tuple[np.ndarray, dict[int, int]]]:
    """Read and check a CTC result folder; yields ``(frames read, frames)``, returns
    ``(labels (F, *frame_shape) of the masks' dtype, {daughter label: mother label})``.
    ``frame_shape`` / ``n_frames``: what the masks must be. Raises ``TrackImportError``
    naming the first disagreement between the masks and ``res_track.txt``."""
    files = mask_files(result_dir)
    if n_frames is not None and len(files) != n_frames:
        raise TrackImportError(f"the masks cover {len(files)} frames, the movie has {n_frames}")
    listing = track_file(result_dir)
    rows = read_res_track(listing)
    _check_rows(rows, len(files), listing.name)
    first = _read_frame(files[0], frame_shape)  # a wrong shape is refused before the rest
    dtype = np.uint16 if first.dtype.itemsize <= 2 else np.uint32  # CTC masks: uint16
    labels = np.zeros((len(files), *first.shape), dtype=dtype)
    for f, path in enumerate(files):
        frame = first if f == 0 else _read_frame(path, first.shape)
        if frame.size and frame.max() > np.iinfo(dtype).max:
            raise TrackImportError(f"{path.name} holds labels above {np.iinfo(dtype).max}, "
                                   f"unlike {files[0].name}")
        labels[f] = frame
        present = set(np.unique(frame).tolist()) - {0}
        claimed = {t for t, (b, e, _) in rows.items() if b <= f <= e}
        if claimed - present:
            t = min(claimed - present)
            raise TrackImportError(f"{path.name} lacks track {t}, which {listing.name} puts on "
                                   f"frames {rows[t][0]}..{rows[t][1]}")
        if present - claimed:
            t = min(present - claimed)
            where = (f"frames {rows[t][0]}..{rows[t][1]}" if t in rows
                     else "no frame (not listed)")
            raise TrackImportError(f"{path.name} holds label {t}, which {listing.name} puts "
                                   f"on {where}")
        yield f + 1, len(files)
    parents = {t: p for t, (_, _, p) in rows.items() if p}
    return labels, parents


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
    from napari_devosam.tracking.geff_graph import GraphError, relabel_masks, tracks_from_graph

    _existing(store, replace)  # refused before anything is read
    files = mask_files(mask_dir)
    frame_shape = _frame_count(store, files)
    try:
        nodes, parents = tracks_from_graph(geff_path)
        masks = np.zeros((len(files), *frame_shape), dtype=np.uint32)
        for f, path in enumerate(files):
            masks[f] = _read_frame(path, frame_shape)
            yield f + 1, len(files) + 1
        labels = relabel_masks(masks, nodes)
    except GraphError as exc:
        raise TrackImportError(str(exc)) from None
    summary = store_tracks_from_labels(store, labels, parents, replace=replace,
                                       info={"imported_from": str(Path(geff_path))})
    yield len(files) + 1, len(files) + 1
    return summary
