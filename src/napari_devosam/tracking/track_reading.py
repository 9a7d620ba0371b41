"""Another tool's tracks read and checked, nothing written: CTC results and GEFF graphs.

``read_ctc`` reads a Cell Tracking Challenge result folder (``maskNNN.tif``: one label image
per frame, label = track id, 0 background; ``res_track.txt``: one ``L B E P`` line per track:
label, first frame, last frame, mother label, 0 none), or CTC tracking truth (``man_track``).
``read_geff`` reads a GEFF graph (https://liveimagingtrackingtools.org/geff) with such a mask
folder: each node is an object of a frame, found in the masks by its ``seg_id`` property,
else by the mask label under its ``(y, x)`` position (``geff_graph``). Both yield progress
and return ``(labels (F, *frame) uint32 by track, {daughter: mother})``; a disagreement is
refused with one line (``TrackImportError``) naming the first one. ``import_tracks`` commits
what they read into an annotation store.
"""

from __future__ import annotations

import re
from collections.abc import Generator
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


def read_geff(geff_path, mask_dir, frame_shape: tuple[int, ...] | None = None, n_frames=None
              ) -> Generator[tuple[int, int], None, tuple[np.ndarray, dict[int, int]]]:
    """Read and check a GEFF graph with its mask folder, as ``read_ctc`` a CTC result: yields
    ``(frames read, frames)``, returns ``(labels (F, *frame) uint32 by track, {daughter:
    mother})``. Raises ``TrackImportError``; ``RuntimeError`` without ``geff``."""
    from napari_devosam.tracking.geff_graph import GraphError, relabel_masks, tracks_from_graph

    files = mask_files(mask_dir)
    if n_frames is not None and len(files) != n_frames:
        raise TrackImportError(f"the masks cover {len(files)} frames, the movie has {n_frames}")
    try:
        nodes, parents = tracks_from_graph(geff_path)
        masks = None
        for f, path in enumerate(files):
            frame = _read_frame(path, frame_shape)
            if masks is None:
                masks = np.zeros((len(files), *frame.shape), dtype=np.uint32)
                frame_shape = frame.shape
            masks[f] = frame
            yield f + 1, len(files)
        labels = relabel_masks(masks, nodes)
    except GraphError as exc:
        raise TrackImportError(str(exc)) from None
    return labels, parents


def is_geff(path) -> bool:
    """Whether ``path`` is a GEFF graph (a zarr group whose attributes hold ``geff``)."""
    path = Path(path)
    for attrs in (path / ".zattrs", path / "zarr.json"):
        try:
            if '"geff"' in attrs.read_text()[:100_000]:
                return True
        except OSError:
            continue
    return False
