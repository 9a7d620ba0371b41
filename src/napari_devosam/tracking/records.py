"""Data of a propagation run: seeds, tracked objects, review items and the run's result.

Planes are tuples of indices along the image's leading (T and/or Z) axes, as everywhere in
the package. Masks are stored cropped to their bounding box (``Crop``) so that long runs with
many objects stay small in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Plane = tuple[int, ...]


@dataclass
class Crop:
    """A bool mask stored as its bounding box: ``offset`` (row, col) and ``data`` (h, w)."""

    offset: tuple[int, int]
    data: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def from_mask(cls, mask: np.ndarray) -> Crop:
        """``mask`` ``(H, W)`` bool -> its crop (an empty mask keeps a 0 x 0 crop)."""
        mask = np.asarray(mask, dtype=bool)
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            return cls((0, 0), np.zeros((0, 0), dtype=bool), mask.shape)
        cols = np.flatnonzero(mask.any(axis=0))
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        return cls((int(r0), int(c0)), mask[r0:r1, c0:c1].copy(), mask.shape)

    def full(self) -> np.ndarray:
        """The ``(H, W)`` bool mask."""
        out = np.zeros(self.shape, dtype=bool)
        r, c = self.offset
        out[r:r + self.data.shape[0], c:c + self.data.shape[1]] = self.data
        return out

    @property
    def area(self) -> int:
        return int(self.data.sum())

    def centroid(self) -> tuple[float, float]:
        """(row, col) centre of mass; NaN for an empty mask."""
        rr, cc = np.nonzero(self.data)
        if rr.size == 0:
            return (float("nan"), float("nan"))
        return (float(rr.mean() + self.offset[0]), float(cc.mean() + self.offset[1]))


@dataclass
class Seed:
    """A committed object that propagation starts from.

    ``track``: its track id (>0), or a negative placeholder for a track that does not exist
    yet; ``parent``: the mother's track id or None; ``mask`` ``(H, W)`` bool on ``plane``.
    """

    track: int
    plane: Plane
    mask: np.ndarray
    parent: int | None = None


@dataclass
class TrackedObject:
    """One object that propagation made: track ``track`` on plane ``plane``.

    ``confidence`` = min(``pred_iou``, ``iou_prev``) in [0, 1]; ``division``: the first
    object of a daughter track; ``start``: the first object of a new track that automatic
    segmentation found on this plane (``tracking.new_cells``; no mother, ``iou_prev`` = its
    score); ``parent``: the mother's track id (daughters), else None.
    Track ids may be negative placeholders for new tracks (resolved by the store).
    """

    track: int
    plane: Plane
    crop: Crop
    pred_iou: float
    iou_prev: float
    parent: int | None = None
    division: bool = False
    start: bool = False

    @property
    def confidence(self) -> float:
        return float(min(self.pred_iou, self.iou_prev))

    @property
    def mask(self) -> np.ndarray:
        return self.crop.full()


@dataclass
class ReviewItem:
    """A plane to look at: ``reason`` is "low confidence", "division", "new cell", "found
    again" or "track ended: ..."."""

    plane: Plane
    track: int
    reason: str
    confidence: float = float("nan")


@dataclass
class Progress:
    """Yielded after each plane, and once with ``done`` 0 when the run's setup is over (its
    stain decided: estimates time the planes from there): ``done`` of at most ``total``
    planes, ``plane`` just done (the seeds' plane at 0),
    ``active`` tracks still going, ``detect_seconds`` spent so far detecting cells
    (``tracking.new_cells``; a cost per plane, not per track: ``utils.estimate.record_run``)."""

    done: int
    total: int
    plane: Plane
    active: int
    detect_seconds: float = 0.0
    stain: str | None = None  # done 0: the run's stain.StainDecision, said before the run


@dataclass
class RunTally:
    """A run's ``Progress`` events added up for ``utils.estimate.record_run``:
    ``object_planes`` (the tracks going, summed over the planes done) and ``detect_seconds``
    (the latest event's)."""

    object_planes: int = 0
    detect_seconds: float = 0.0

    def add(self, p: Progress) -> None:
        self.object_planes += int(p.active) if p.done else 0  # done 0: the run's setup
        self.detect_seconds = float(p.detect_seconds)


@dataclass
class PropagationResult:
    """What a run made; nothing is committed until the caller applies it.

    ``objects``: new objects in the order made (mothers before daughters); ``ended``:
    ``{track: (plane where it stopped, reason)}``; ``divisions``: ``(mother, plane, daughter,
    daughter)`` tuples; ``started``: ``(track, plane)`` of every new track that automatic
    segmentation found (``tracking.new_cells``; no mother); ``cancelled``: the run stopped
    early (then ``objects`` are partial); ``stain``: the run's ``stain.StainDecision`` (its
    ``note`` says which and why in one line; None when no visited plane showed an embryo).
    """

    objects: list[TrackedObject] = field(default_factory=list)
    review: list[ReviewItem] = field(default_factory=list)
    ended: dict[int, tuple[Plane, str]] = field(default_factory=dict)
    divisions: list[tuple[int, Plane, int, int]] = field(default_factory=list)
    started: list[tuple[int, Plane]] = field(default_factory=list)
    cancelled: bool = False
    stain: str | None = None


# -- the division rule: one home for the lineage, exports, imports and the review list ------
DIVIDED = "divided"  # two daughters or more
CONTINUED = "continued"  # one daughter: a link across a gap, or a division whose sister is gone


def is_division(daughters) -> bool:
    """Whether a mother's ``daughters`` make a division: two or more. One daughter alone is
    a continuation (a CTC link across a gap, or a division whose other daughter was
    deleted), counted and drawn as no division everywhere."""
    return len(daughters) >= 2


def division_count(parents: dict[int, int]) -> int:
    """The divisions of ``{daughter: mother}`` (``is_division`` per mother)."""
    daughters: dict[int, list[int]] = {}
    for d, m in parents.items():
        daughters.setdefault(m, []).append(d)
    return sum(1 for kids in daughters.values() if is_division(kids))
