"""Tracking export: Cell Tracking Challenge (CTC) results, a tracks CSV and GEFF.

Input everywhere: ``labels`` ``(F, H, W)`` (or ``(F, Z, H, W)``) integer track ids per frame
(0 background; the same id on two frames is the same cell) and ``parents`` ``{track: mother
track}``. Frames are the planes along the followed axis (T; for Z, the z-slices).

CTC result format (Ulman et al. 2017, Nat. Methods 14:1141; celltrackingchallenge.net,
"Naming and file content conventions"): ``maskNNN.tif`` per frame (uint16, label = track id,
NNN zero-padded to 3 digits, 4 beyond 1000 frames) and ``res_track.txt`` with one
``L B E P`` line per track: label, first frame, last frame, parent label (0: none). A CTC
track must be present on every frame from B to E; a track with gaps is split there, the
later piece getting a new label whose parent is the earlier piece. Labels above 65535 do not
fit uint16: then all tracks are renumbered 1..N. The CSV keeps the original ids and names
each row's CTC label (``ctc_label``), so the two can always be joined.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
from scipy import ndimage

UINT16_MAX = 65535
CSV_COLUMNS = ("track_id", "frame", "z", "centroid_row", "centroid_col", "area", "parent_id",
               "ctc_label")


def _spans(labels: np.ndarray) -> dict[int, list[int]]:
    """``{track: sorted frames where it is present}``."""
    out: dict[int, list[int]] = {}
    for f in range(labels.shape[0]):
        for t in np.unique(labels[f]):
            if t:
                out.setdefault(int(t), []).append(f)
    return out


def ctc_tracks(labels: np.ndarray, parents: dict[int, int]) -> tuple[np.ndarray, list[tuple]]:
    """CTC-conform labels and ``(L, B, E, P)`` rows (sorted by L).

    Returns a uint16 copy of ``labels`` in which gapped tracks are split and labels are
    renumbered if they do not fit uint16. Raises ``ValueError`` for negative labels.
    """
    labels = np.asarray(labels)
    if labels.size and labels.min() < 0:
        raise ValueError("track ids must be >= 0")
    spans = _spans(labels)
    pieces = {t: np.split(np.asarray(f), np.flatnonzero(np.diff(f) > 1) + 1)
              for t, f in spans.items()}
    extra = sum(len(p) - 1 for p in pieces.values())
    renumber = bool(spans) and max(spans) + extra > UINT16_MAX
    rename = {t: i for i, t in enumerate(sorted(spans), 1)} if renumber else {t: t for t in spans}
    out = labels.astype(np.int64, copy=True)
    next_label = max(rename.values(), default=0) + 1
    rows, last_piece, assign = [], {}, {}
    for t in sorted(spans, key=lambda t: (spans[t][0], t)):  # mothers before daughters
        parent = parents.get(t)
        p_label = last_piece.get(parent, rename.get(parent, 0)) if parent else 0
        label = rename[t]
        for k, piece in enumerate(pieces[t]):
            if k:
                p_label, label = label, next_label
                next_label += 1
            for f in piece:
                assign.setdefault(int(f), {})[t] = label
            rows.append((label, int(piece[0]), int(piece[-1]), int(p_label)))
        last_piece[t] = label
    for f, mapping in assign.items():  # one lookup per frame, not one pass per track
        keys = np.array(sorted(mapping), dtype=np.int64)
        values = np.array([mapping[k] for k in keys.tolist()], dtype=np.int64)
        at = np.minimum(np.searchsorted(keys, out[f]), keys.size - 1)
        out[f] = np.where(keys[at] == out[f], values[at], 0)
    if next_label - 1 > UINT16_MAX:
        raise ValueError(f"{next_label - 1} CTC tracks do not fit uint16 labels")
    return out.astype(np.uint16), sorted(rows)


OUTPUT_NAMES = ("res_track.txt", "tracks.csv", "review.csv", "tracks.geff")


def writes_name(name: str) -> bool:
    """True for a file name a tracking result folder gets (or loses: stale ``maskNNN.tif``)."""
    return name in OUTPUT_NAMES or re.fullmatch(r"mask\d+\.tif", name) is not None


def holds_result(out_dir) -> bool:
    """Whether ``out_dir`` holds an earlier devosam tracking result (``res_track.txt`` and
    ``tracks.csv``), which writing a new one replaces."""
    out_dir = Path(out_dir)
    return (out_dir / "res_track.txt").is_file() and (out_dir / "tracks.csv").is_file()


def check_result_folder(out_dir) -> None:
    """``ValueError`` when ``out_dir`` holds ``mask<digits>.tif`` files but no
    ``res_track.txt`` (they are not an earlier tracking result, and writing one there would
    mix with them or, for stale frames, remove them), or a CTC result devosam did not write
    (``res_track.txt`` without ``tracks.csv``: another tool's, or ground truth, which a new
    result would overwrite and cut to its own frames)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return
    if (out_dir / "res_track.txt").is_file():
        if not (out_dir / "tracks.csv").is_file():
            raise ValueError(f"{out_dir} holds a tracking result devosam did not write "
                             "(res_track.txt, no tracks.csv): writing the tracks there would "
                             "replace it; choose an empty folder")
        return
    masks = sorted(f.name for f in out_dir.glob("mask*.tif")
                   if re.fullmatch(r"mask\d+\.tif", f.name))
    if masks:
        raise ValueError(f"{out_dir} holds {masks[0]} (and maybe more mask files) but no "
                         "res_track.txt, so it is not an earlier tracking result; choose an "
                         "empty folder for the tracks")


def write_ctc(out_dir, labels: np.ndarray, parents: dict[int, int]) -> list[tuple]:
    """Write ``maskNNN.tif`` per frame and ``res_track.txt`` into ``out_dir`` (created);
    returns the ``(L, B, E, P)`` rows. Daughters must start after their mother's first frame.
    In an earlier result's folder (it has ``res_track.txt``), that result's ``maskNNN.tif``
    / ``maskNNNN.tif`` files this one does not replace (a longer movie) are removed: a CTC
    reader would take them for frames of this result. Raises ``ValueError`` for a folder
    with other mask files (``check_result_folder``): nothing of the user's is removed.
    """
    return _write_ctc(Path(out_dir), labels, parents)[1]


def _write_ctc(out_dir: Path, labels: np.ndarray, parents: dict[int, int]
               ) -> tuple[np.ndarray, list[tuple]]:
    """``write_ctc``, also returning the CTC labels written (``ctc_tracks``)."""
    from napari_devosam.io.write import write_tiff
    from napari_devosam.utils.atomic import write_text

    check_result_folder(out_dir)
    ctc, rows = ctc_tracks(labels, parents)
    earlier_result = (out_dir / "res_track.txt").is_file()
    out_dir.mkdir(parents=True, exist_ok=True)
    digits = 3 if len(ctc) <= 1000 else 4
    written = set()
    for f, frame in enumerate(ctc):
        name = f"mask{f:0{digits}d}.tif"
        write_tiff(out_dir / name, frame)  # atomic: a reader never sees half a frame
        written.add(name)
    write_text(out_dir / "res_track.txt", "".join(f"{a} {b} {c} {d}\n" for a, b, c, d in rows))
    for stale in out_dir.glob("mask*.tif") if earlier_result else ():  # a longer result's
        if re.fullmatch(r"mask\d{3,4}\.tif", stale.name) and stale.name not in written:
            stale.unlink()
    return ctc, rows


def track_rows(labels: np.ndarray, parents: dict[int, int], z_of_frame=None,
               ctc: np.ndarray | None = None) -> list[dict]:
    """One CSV row per (track, frame): ``CSV_COLUMNS``. Centroids are (row, col) pixel
    coordinates (mean over the object's pixels; for 3D frames also over z). ``z_of_frame``:
    frame -> z index to report (default: empty). ``ctc``: the CTC labels of ``ctc_tracks``
    (same shape), whose label of each (track, frame) fills ``ctc_label`` (default: empty)."""
    rows = []
    for f in range(labels.shape[0]):
        frame = np.asarray(labels[f])
        ids = np.unique(frame)
        ids = ids[ids > 0]
        if not ids.size:
            continue
        areas = ndimage.sum_labels(np.ones(frame.shape), frame, ids)
        centres = ndimage.center_of_mass(np.ones(frame.shape), frame, ids)
        ctc_ids = [""] * len(ids) if ctc is None else \
            [int(v) for v in ndimage.maximum(np.asarray(ctc[f]), frame, ids)]
        for t, area, c, ctc_id in zip(ids, areas, centres, ctc_ids, strict=True):
            rows.append({
                "track_id": int(t), "frame": f,
                "z": "" if z_of_frame is None else int(z_of_frame(f)),
                "centroid_row": round(float(c[-2]), 3), "centroid_col": round(float(c[-1]), 3),
                "area": int(area), "parent_id": int(parents.get(int(t), 0) or 0),
                "ctc_label": ctc_id,
            })
    rows.sort(key=lambda r: (r["track_id"], r["frame"]))
    return rows


def frame_z(plane: tuple[int, ...], along_z: bool):
    """``z_of_frame`` for ``track_rows``: the frame index when the frames are z-slices, the
    seed plane's z for T through a ``(T, Z, Y, X)`` stack (``plane`` = ``(t, z)``), else
    ``None`` (no z)."""
    if along_z:
        return int
    if len(plane) == 2:
        z = int(plane[1])
        return lambda f: z
    return None


def write_track_results(out_dir, labels: np.ndarray, parents: dict[int, int], z_of_frame=None,
                        geff: bool = False) -> tuple[list[tuple], list[dict]]:
    """The tracking result files in ``out_dir``: the CTC result (``write_ctc``),
    ``tracks.csv`` (``track_rows`` with each row's CTC label) and, with ``geff``,
    ``tracks.geff``. Returns ``(CTC (L, B, E, P) rows, CSV rows)``; raises what
    ``write_ctc`` and ``write_geff`` raise."""
    out_dir = Path(out_dir)
    earlier = holds_result(out_dir)
    ctc, rows = _write_ctc(out_dir, labels, parents)
    csv_rows = track_rows(labels, parents, z_of_frame, ctc=ctc)
    write_csv(out_dir / "tracks.csv", csv_rows)
    if geff:
        write_geff(out_dir / "tracks.geff", csv_rows)
    if earlier:  # the earlier result's other files describe another run: never leave them
        _remove_stale(out_dir, keep={"tracks.geff"} if geff else set())
    return rows, csv_rows


def _remove_stale(out_dir: Path, keep: set[str]) -> None:
    """Remove the earlier result's ``review.csv`` and ``tracks.geff`` (a zarr folder) that
    this result does not write (``keep``); ``write_results`` writes ``review.csv`` after."""
    import shutil

    for name in ("review.csv", "tracks.geff"):
        path = out_dir / name
        if name in keep or not path.exists():
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def write_csv(path, rows: list[dict]) -> None:
    """The rows of ``track_rows`` as CSV with a header (written atomically)."""
    import io

    from napari_devosam.utils.atomic import write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(Path(path), buf.getvalue())


def _seg_id(row: dict) -> dict:
    """``{"seg_id": label}``: the node's object in ``maskNNN.tif`` (the row's CTC label), so
    that a reader finds the object without its centroid (a crescent's centroid lies on the
    background); ``{}`` when the row has no CTC label."""
    label = row.get("ctc_label")
    return {"seg_id": int(label)} if isinstance(label, int | np.integer) else {}


def write_geff(path, rows: list[dict]) -> None:
    """A GEFF graph (zarr; https://liveimagingtrackingtools.org/geff): one node per row of
    ``track_rows`` (t, y, x, area, track_id, and seg_id: the object's label in the
    ``maskNNN.tif`` beside it), edges along each track and mother -> daughter.

    Needs the optional ``geff`` package: ``pip install geff`` (else ``RuntimeError``).
    """
    try:
        import geff
        import networkx as nx
    except ImportError as exc:
        raise RuntimeError(
            "GEFF export needs the optional 'geff' package: pip install geff "
            "(or pip install 'napari-devosam[tracking]')"
        ) from exc
    graph = nx.DiGraph()
    last: dict[int, int] = {}
    first: dict[int, int] = {}
    for node, r in enumerate(rows):
        graph.add_node(node, t=r["frame"], y=r["centroid_row"], x=r["centroid_col"],
                       area=r["area"], track_id=r["track_id"], **_seg_id(r))
        t = r["track_id"]
        if t in last:
            graph.add_edge(last[t], node)
        first.setdefault(t, node)
        last[t] = node
    for r in rows:
        mother = r["parent_id"]
        if mother and mother in last and first[r["track_id"]] not in graph.succ[last[mother]]:
            graph.add_edge(last[mother], first[r["track_id"]])
    geff.write(graph, str(path), axis_names=["t", "y", "x"], axis_types=["time", "space",
                                                                        "space"],
               overwrite=True)


def tracks_text(n_tracks: int, n_ctc: int) -> str:
    """``"15 tracks"``, or ``"15 tracks (16 CTC tracks: tracks with a gap are split there)"``
    when the CTC result holds more pieces than tracks.csv has tracks (an export and the
    import of it said 16 and 15 for the same tracks: trial 17)."""
    from napari_devosam.utils.text import count

    pieces = ("" if n_ctc == n_tracks else
              f" ({count(n_ctc, 'CTC track')}: tracks with a gap are split there)")
    return f"{count(n_tracks, 'track')}{pieces}"
