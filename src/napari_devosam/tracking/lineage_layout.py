"""Where the Lineage dock draws each track: rows, line segments, forks, end marks (no Qt).

Time (the frame index along the tracked axis) runs along x, one row per track along y. The
rows come from the lineage forest in order: a mother sits between its two daughters' subtrees
(first daughter above, second below), so every division is a small fork; roots are ordered
by first frame, then id. ``layout_lineage`` turns ``tracking.lineage.lineage``'s
``{track: TrackInfo}`` into flat arrays the canvas paints in one pass; ``hit`` finds the
track and frame under a point, for clicks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_devosam.tracking.lineage import forest
from napari_devosam.tracking.records import CONTINUED, DIVIDED

UNRECORDED = "ended, no reason recorded"  # an early end of an imported or split track


@dataclass
class LineageLayout:
    """The drawing of a lineage, in data units (x: frame, y: row).

    ``tracks``: ``(n,)`` int64 track ids in row order (row ``i`` holds ``tracks[i]``);
    ``first``/``last``: ``(n,)`` frames; ``segments``: ``(m, 4)`` float64 ``(x0, y0, x1, y1)``
    (each track's line, one per run of frames it has objects on, then one connector per
    daughter from her mother's end);
    ``segment_row``: ``(m,)`` int64 row whose colour a segment takes; ``ends``: ``[(reason,
    row)]`` of tracks that end other than by a division (``UNRECORDED`` where no reason is
    recorded: imported tracks, the first piece of a split);
    ``n_frames``: frames spanned (``max(last) + 1``, 0 when empty)."""

    tracks: np.ndarray
    first: np.ndarray
    last: np.ndarray
    segments: np.ndarray
    segment_row: np.ndarray
    ends: list = field(default_factory=list)
    n_frames: int = 0

    @property
    def rows(self) -> dict[int, int]:
        """``{track: row}``."""
        return {int(t): i for i, t in enumerate(self.tracks.tolist())}


def row_order(info: dict) -> list[int]:
    """Track ids in row order: each mother between her daughters' subtrees (iterative, so a
    deep lineage cannot exhaust Python's stack)."""
    roots, children = forest(info)

    def key(t):
        return (info[t].first, t)

    order: list[int] = []
    seen: set[int] = set()
    for root in sorted(roots, key=key):
        stack: list[tuple[int, bool]] = [(root, False)]
        while stack:
            t, expanded = stack.pop()
            if expanded:
                order.append(t)
                continue
            if t in seen:
                continue
            seen.add(t)
            kids = sorted(children.get(t, []), key=key)
            # in-order: first daughter's subtree, the mother, then the other daughters
            for kid in reversed(kids[1:]):
                stack.append((kid, False))
            stack.append((t, True))
            if kids:
                stack.append((kids[0], False))
    order.extend(sorted((t for t in info if t not in seen), key=key))  # parent cycles
    return order


def _runs(frames) -> list[tuple[int, int]]:
    """``[(first, last)]`` of the runs of consecutive frames in ``frames``."""
    f = sorted(set(int(v) for v in frames))
    runs, start = [], f[0]
    for a, b in zip(f, f[1:], strict=False):
        if b > a + 1:
            runs.append((start, a))
            start = b
    runs.append((start, f[-1]))
    return runs


def layout_lineage(info: dict, frames: dict | None = None) -> LineageLayout:
    """The ``LineageLayout`` of ``{track: TrackInfo}`` (``tracking.lineage.TrackInfo``:
    ``track``, ``parent``, ``first``, ``last``, ``end_reason``). ``frames``: ``{track: the
    frames it has objects on}``; a track's line then breaks where it skips frames (new-user
    trial 19: a track without an object on frame 2 was drawn as one line)."""
    order = row_order(info)
    n = len(order)
    rows = {t: i for i, t in enumerate(order)}
    first = np.array([info[t].first for t in order], dtype=np.int64)
    last = np.array([info[t].last for t in order], dtype=np.int64)
    pieces = [((a, b), r) for r, t in enumerate(order)
              for a, b in (_runs(frames[t]) if frames and frames.get(t)
                           else [(info[t].first, info[t].last)])]
    lines = np.array([(a, r, b, r) for (a, b), r in pieces], dtype=np.float64).reshape(-1, 4)
    line_rows = np.array([r for _, r in pieces], dtype=np.int64)
    # a one-frame piece still shows: its line spans a third of a frame around its frame
    flat = lines[:, 0] == lines[:, 2]
    lines[flat, 0] -= 0.3
    lines[flat, 2] += 0.3
    forks, fork_rows = [], []
    for t in order:
        mother = info[t].parent
        if mother is not None and mother in rows and mother != t:
            forks.append((info[mother].last, rows[mother], info[t].first, rows[t]))
            fork_rows.append(rows[t])
    segments = np.concatenate([lines, np.asarray(forks, dtype=np.float64).reshape(-1, 4)])
    segment_row = np.concatenate([line_rows, np.asarray(fork_rows, dtype=np.int64)])
    ends = [(info[t].end_reason or UNRECORDED, rows[t]) for t in order
            if info[t].end_reason not in (DIVIDED, CONTINUED)]  # no reason: marked too
    return LineageLayout(np.asarray(order, dtype=np.int64), first, last, segments,
                         segment_row, ends, int(last.max()) + 1 if n else 0)


def hit(layout: LineageLayout, x: float, y: float, tolerance: float = 0.5
        ) -> tuple[int, int] | None:
    """``(track, frame)`` under data point ``(x frames, y rows)``, or None: the row nearest
    ``y`` (within ``tolerance`` rows) whose span covers the frame nearest ``x`` (clamped to
    the track's span when ``x`` lies within ``tolerance`` frames of it)."""
    row = int(round(y))
    if not 0 <= row < len(layout.tracks) or abs(y - row) > tolerance:
        return None
    lo, hi = int(layout.first[row]), int(layout.last[row])
    if x < lo - tolerance or x > hi + tolerance:
        return None
    frame = min(max(int(round(x)), lo), hi)
    return int(layout.tracks[row]), frame
