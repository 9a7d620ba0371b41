"""One plane's prompts and the objects they made (``PlanePrompts``, ``PlaneResult``), and the
rules that tie them: the prompt dicts stored with objects, box clipping, and how objects a
user prompts are added to automatic proposals (``proposals_under``). Used by
``annotation.state.AnnotatorState``; no Qt, no napari."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_devosam.engine.coords import mask_within_box, normalise_box
from napari_devosam.engine.stacks import PlaneIndex


@dataclass
class PlanePrompts:
    """The prompts of one plane: boxes ``(B, 4)``, points ``(N, 2)``, point labels ``(N,)``."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), dtype=np.int64))

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.points = np.asarray(self.points, dtype=np.float64).reshape(-1, 2)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if len(self.labels) != len(self.points):
            raise ValueError(f"{len(self.points)} points but {len(self.labels)} point labels")

    @property
    def empty(self) -> bool:
        return len(self.boxes) == 0 and len(self.points) == 0

    def signature(self) -> tuple:
        """A hashable summary used to detect real changes (layers fire many events)."""
        return (self.boxes.round(3).tobytes(), self.points.round(3).tobytes(),
                self.labels.tobytes())

    def extends(self, other: PlanePrompts) -> bool:
        """True when ``self`` has ``other``'s boxes and points plus at least one new point."""
        if len(self.points) <= len(other.points) or not np.array_equal(self.boxes, other.boxes):
            return False
        n = len(other.points)
        return bool(np.allclose(self.points[:n], other.points)
                    and np.array_equal(self.labels[:n], other.labels))


@dataclass
class PlaneResult:
    """The current object(s) of one plane.

    ``masks`` ``(K, H, W)`` bool, ``scores`` ``(K,)`` predicted IoU and ``prompts`` (one dict
    per object) are what a commit stores. For one ambiguous prompt, ``candidates`` ``(3, H, W)``,
    ``candidate_scores`` ``(3,)`` and ``candidate_index`` hold SAM's alternatives.
    """

    prompts_in: PlanePrompts
    masks: np.ndarray
    scores: np.ndarray
    prompts: list[dict]
    logits: np.ndarray | None = None  # (C, h, w) low-res logits of a single object
    candidates: np.ndarray | None = None
    candidate_scores: np.ndarray | None = None
    candidate_index: int = 0
    refined: bool = False  # whether the previous logits were fed back as mask_input
    # the proposals the prompts' objects were added to (masks[:n_kept]), as they were
    kept: PlaneResult | None = None

    @property
    def n_kept(self) -> int:
        """How many leading objects are proposals kept under the prompts' objects."""
        return 0 if self.kept is None else len(self.kept.masks)

    @property
    def n_candidates(self) -> int:
        return 0 if self.candidates is None else len(self.candidates)


def plane_prompts_from_layer_data(box_vertices, point_coords, point_labels, plane: PlaneIndex
                                  ) -> PlanePrompts:
    """Select the prompts drawn on ``plane`` from full-dimensional layer data.

    ``box_vertices``: a list of ``(V, ndim)`` arrays (napari Shapes data: rectangles), whose
    leading ``len(plane)`` coordinates say where they were drawn; ``point_coords`` ``(N, ndim)``
    and ``point_labels`` ``(N,)`` likewise for Points. Coordinates are rounded to the nearest
    plane index. Returns the plane's boxes and points in (row, col) plane coordinates.
    """
    n = len(plane)
    target = np.asarray(plane, dtype=np.float64)
    boxes = []
    for verts in box_vertices:
        verts = np.asarray(verts, dtype=np.float64)
        if len(verts) == 0:
            continue
        if n and not np.array_equal(np.round(verts[0, :n]), target):
            continue
        boxes.append(normalise_box(verts[:, n:n + 2]))
    pts = np.asarray(point_coords, dtype=np.float64)
    labs = np.asarray(point_labels, dtype=np.int64).reshape(-1)
    if pts.size == 0:
        pts = np.zeros((0, n + 2))
        labs = np.zeros((0,), dtype=np.int64)
    if n:
        keep = np.all(np.round(pts[:, :n]) == target, axis=1)
        pts, labs = pts[keep], labs[keep]
    return PlanePrompts(np.array(boxes).reshape(-1, 4), pts[:, n:n + 2], labs)


def _inside(points: np.ndarray, box: np.ndarray) -> np.ndarray:
    return ((points[:, 0] >= box[0]) & (points[:, 0] <= box[2])
            & (points[:, 1] >= box[1]) & (points[:, 1] <= box[3]))


def _clip_to_box(masks: np.ndarray, box) -> np.ndarray:
    # ``Predictor`` applies the rule already; repeated for any predictor-like object passed in
    return mask_within_box(masks, box)


def _extent(masks: np.ndarray) -> tuple[int, int, int, int]:
    """Half-open (row0, row1, col0, col1) around the True pixels of ``masks`` (K, H, W)."""
    rows = np.flatnonzero(masks.any(axis=(0, 2)))
    if rows.size == 0:
        return (0, 0, 0, 0)
    cols = np.flatnonzero(masks[:, rows[0]:rows[-1] + 1].any(axis=(0, 1)))
    return (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def _union(a, b) -> tuple[int, int, int, int]:
    if a[0] >= a[1]:
        return b
    if b[0] >= b[1]:
        return a
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def _prompt_dict(box, points, labels) -> dict:
    return {"box": None if box is None else [float(v) for v in box],
            "points": [[float(r), float(c)] for r, c in points],
            "point_labels": [int(v) for v in labels]}


def proposals_under(result: PlaneResult | None) -> PlaneResult | None:
    """The automatic proposals among ``result``'s objects, as they were before prompts' objects
    were added (``result.kept``), or ``result`` itself when all its objects are proposals;
    None when it has none."""
    if result is None:
        return None
    if result.kept is not None:
        return result.kept
    auto = [k for k, p in enumerate(result.prompts) if p.get("automatic")]
    if not auto:
        return None
    if len(auto) == len(result.prompts):
        return result
    return PlaneResult(PlanePrompts(), result.masks[auto], result.scores[auto],
                       [result.prompts[k] for k in auto])


def _added(kept: PlaneResult, result: PlaneResult) -> PlaneResult:
    """``result`` (the prompts' objects) added after the proposals ``kept``: the proposals
    lose the pixels of the prompts' objects; candidates still cycle the last object."""
    taken = result.masks.any(axis=0)
    masks = np.concatenate([kept.masks & ~taken, result.masks])
    scores = np.concatenate([kept.scores, result.scores])
    result.masks, result.scores = masks, scores
    result.prompts = [*kept.prompts, *result.prompts]
    result.kept = kept
    return result
