"""The annotator's logic without Qt or napari: prompts per plane -> the current object(s).

A *plane* is identified by its indices along the image's leading (T and/or Z) axes (``()``
for 2D). Prompts are napari's: boxes ``(row0, col0, row1, col1)`` and points ``(row, col)``
with labels 1 (positive) / 0 (negative), in pixel coordinates of the plane.

How prompts become objects (``AnnotatorState.update_prompts``):

- no box, points only: one object from the points;
- one box (with or without points): one object;
- several boxes: one object per box, batched (``Predictor.predict_boxes``); points go with
  the first box that contains them; other points are ignored while there are several boxes.

A box says where its object is: mask pixels more than ``coords.BOX_MARGIN`` pixels outside it are
dropped (SAM leaks into neighbours; the rule is ``engine.coords.mask_within_box``).
Unusable prompts are dropped, the others answered.

One object from a single prompt (one point, or one box alone) is ambiguous: SAM's three
candidates are kept, the best one is shown, ``next_candidate`` cycles through them. Points
added to a single object's prompts feed the chosen candidate's low-res logits back as
``mask_input`` (refinement); any other change starts afresh.

Prompts drawn on a plane whose current objects include automatic proposals (objects whose
prompt dict has ``"automatic"``, from ``automatic.proposals``) ADD their objects to the
proposals: the proposals come first (their labels do not change), the prompts' objects after
them, on top (proposal pixels under a prompt's object go to that object, so what is shown is
what a commit stores). ``PlaneResult.kept`` holds the proposals as they were;
``drop_added_prompts`` (the annotator's Undo) or removing the prompts brings them back.

The state owns ``current_labels`` (``uint16``, the image's shape), shown by the ``current
object`` layer: object ``k`` (1-based) of plane ``p`` is ``current_labels[p] == k``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_devosam.engine.coords import mask_within_box, normalise_box, usable_prompts
from napari_devosam.engine.stacks import PlaneIndex
from napari_devosam.utils.text import plane_name


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


class AnnotatorState:
    """Prompts and current objects of every plane of one image.

    Arguments:
      shape: the image's shape without a colour axis: leading axes then ``(H, W)``.
      predictor: an object with napari_devosam.Predictor's ``predict`` / ``predict_boxes``;
        the caller sets the right plane's embedding on it and tells the state with
        ``embedding_ready(plane)`` (prompts of a plane without an embedding wait).
    """

    def __init__(self, shape: tuple[int, ...], predictor=None):
        if len(shape) < 2:
            raise ValueError(f"an image needs at least 2 dimensions, got shape {shape}")
        self.shape = tuple(int(s) for s in shape)
        self.plane_shape = self.shape[-2:]
        self.n_lead = len(self.shape) - 2
        self.predictor = predictor
        self.current_labels = np.zeros(self.shape, dtype=np.uint16)
        self.prompts: dict[PlaneIndex, PlanePrompts] = {}
        self.results: dict[PlaneIndex, PlaneResult] = {}
        self.ready_plane: PlaneIndex | None = None
        self.dropped: list[str] = []  # prompts the last update_prompts dropped, and why
        self._extent: dict[PlaneIndex, tuple[int, int, int, int]] = {}
        self._dirty: dict[PlaneIndex, tuple[int, int, int, int]] | None = {}

    # -- planes and embeddings ------------------------------------------------------------
    def check_plane(self, plane) -> PlaneIndex:
        plane = tuple(int(i) for i in plane)
        if len(plane) != self.n_lead or any(not 0 <= i < s for i, s in zip(plane, self.shape,
                                                                          strict=False)):
            raise ValueError(f"{plane_name(plane)} does not exist in an image of shape "
                             f"{self.shape}")
        return plane

    def embedding_ready(self, plane) -> bool:
        """The predictor now holds ``plane``'s embedding: answer its waiting prompts.

        Returns True when ``current_labels`` changed on that plane.
        """
        plane = self.check_plane(plane)
        self.ready_plane = plane
        prompts = self.prompts.get(plane)
        done = self.results.get(plane)
        if prompts is None or (done is not None and
                               done.prompts_in.signature() == prompts.signature()):
            return False
        return self._recompute(plane, prompts)

    def embedding_lost(self) -> None:
        """The predictor's embedding (or model) changed: nothing is ready any more."""
        self.ready_plane = None

    def is_pending(self, plane) -> bool:
        """True when ``plane`` has prompts whose answer waits for the embedding."""
        plane = tuple(plane)
        prompts = self.prompts.get(plane)
        if prompts is None or prompts.empty:
            return False
        done = self.results.get(plane)
        return done is None or done.prompts_in.signature() != prompts.signature()

    # -- prompts -> objects ---------------------------------------------------------------
    def update_prompts(self, plane, prompts: PlanePrompts) -> bool:
        """Record ``plane``'s usable prompts; predict now if its embedding is ready.

        Returns True when ``current_labels`` changed. Prompts SAM cannot answer (a point
        outside the plane, a zero-area box) are dropped, a message each in ``dropped``.
        """
        plane = self.check_plane(plane)
        kb, kp, self.dropped = usable_prompts(prompts.boxes, prompts.points, self.plane_shape)
        prompts = PlanePrompts(prompts.boxes[kb], prompts.points[kp], prompts.labels[kp])
        old = self.prompts.get(plane)
        if old is not None and old.signature() == prompts.signature():
            return False
        self.prompts[plane] = prompts
        if prompts.empty:
            return self.drop_added_prompts(plane) or self.clear(plane)
        if self.ready_plane != plane:
            return False
        return self._recompute(plane, prompts)

    def _recompute(self, plane: PlaneIndex, prompts: PlanePrompts) -> bool:
        if self.predictor is None:
            return False
        if prompts.empty:
            return self.drop_added_prompts(plane) or self.clear(plane)
        previous = self.results.get(plane)
        kept = proposals_under(previous)
        try:
            result = self._predict(prompts, previous)
        except ValueError:
            self.results.pop(plane, None)
            self._forget(plane)
            if kept is not None:  # the proposals stay; the prompts wait for a change
                self.results[plane] = kept
                self._paint(plane)
            raise
        if kept is not None:
            result = _added(kept, result)
        self.results[plane] = result
        self._paint(plane)
        return True

    def _predict(self, prompts: PlanePrompts, previous: PlaneResult | None) -> PlaneResult:
        p = self.predictor
        boxes, pts, labs = prompts.boxes, prompts.points, prompts.labels
        if len(boxes) <= 1:
            box = boxes[0] if len(boxes) else None
            single_prompt = (box is None and len(pts) == 1) or (box is not None and len(pts) == 0)
            refine = (previous is not None and previous.logits is not None
                      and prompts.extends(previous.prompts_in))
            mask_input = None
            if refine:
                mask_input = previous.logits[previous.candidate_index][None]
            masks, scores, logits = p.predict(
                box=box, points=pts if len(pts) else None,
                point_labels=labs if len(pts) else None,
                mask_input=mask_input, multimask=single_prompt and not refine)
            if box is not None:
                masks = _clip_to_box(np.array(masks, dtype=bool), box)
            scores = np.asarray(scores, dtype=np.float64)
            best = int(np.argmax(scores))
            result = PlaneResult(prompts, masks[best:best + 1], scores[best:best + 1],
                                 [_prompt_dict(box, pts, labs)], logits=np.asarray(logits),
                                 refined=refine)
            if len(masks) > 1:
                result.candidates, result.candidate_scores = masks, scores
                result.candidate_index = best
            return result
        # several boxes: one object each; points go with the first box that contains them
        owner = np.full(len(pts), -1)
        for i, box in enumerate(boxes):
            owner[(owner < 0) & _inside(pts, box)] = i
        masks = np.zeros((len(boxes), *self.plane_shape), dtype=bool)
        scores = np.zeros(len(boxes))
        plain = [i for i in range(len(boxes)) if not np.any(owner == i)]
        if plain:
            m, s = p.predict_boxes(boxes[plain])
            masks[plain], scores[plain] = m, s
            for i in plain:
                _clip_to_box(masks[i:i + 1], boxes[i])
        for i in range(len(boxes)):
            if i in plain:
                continue
            m, s, _ = p.predict(box=boxes[i], points=pts[owner == i],
                                point_labels=labs[owner == i], multimask=False)
            masks[i], scores[i] = _clip_to_box(np.array(m[:1], dtype=bool), boxes[i])[0], s[0]
        prompts_out = [_prompt_dict(b, pts[owner == i], labs[owner == i])
                       for i, b in enumerate(boxes)]
        return PlaneResult(prompts, masks, scores, prompts_out)

    def _paint(self, plane: PlaneIndex) -> None:
        out = self.current_labels[plane]
        out[...] = 0
        result = self.results.get(plane)
        extent = (0, 0, 0, 0)
        if result is not None:
            # later objects do not overwrite earlier ones where masks overlap
            for k in range(len(result.masks) - 1, -1, -1):
                out[result.masks[k]] = k + 1
            extent = _extent(result.masks)
        old = self._extent.pop(plane, (0, 0, 0, 0))
        if extent[0] < extent[1]:
            self._extent[plane] = extent
        if self._dirty is not None:
            self._dirty[plane] = _union(self._dirty.get(plane, (0, 0, 0, 0)), _union(old, extent))

    def take_changed_regions(self) -> dict[PlaneIndex, tuple[int, int, int, int]] | None:
        """Where ``current_labels`` changed since the last call: ``{plane: (row0, row1, col0,
        col1)}`` (half-open boxes; planes not listed did not change), or None when unknown
        (treat everything as changed). Lets a viewer update only that part of the display."""
        dirty, self._dirty = self._dirty, {}
        return dirty

    def next_candidate(self, plane, step: int = 1) -> bool:
        """Show the next of SAM's candidates for ``plane``'s single ambiguous prompt.

        Returns False (and changes nothing) when the plane has no candidates.
        """
        plane = self.check_plane(plane)
        r = self.results.get(plane)
        if r is None or r.n_candidates < 2:
            return False
        r.candidate_index = (r.candidate_index + step) % r.n_candidates
        r.masks = r.candidates[r.candidate_index][None]
        r.scores = r.candidate_scores[r.candidate_index:r.candidate_index + 1]
        if r.kept is not None:
            r.prompts = r.prompts[r.n_kept:]
            _added(r.kept, r)
        self._paint(plane)
        return True

    def result(self, plane) -> PlaneResult | None:
        return self.results.get(tuple(plane))

    # -- commit and clear -----------------------------------------------------------------
    def take_commit(self, plane) -> tuple[np.ndarray, list[dict]] | None:
        """Hand over ``plane``'s current objects and clear the plane (prompts included).

        Returns ``(masks (K, H, W) bool, prompts)`` with one prompt dict per mask (``box``,
        ``points``, ``point_labels``, plus ``plane`` and ``score``), or None when the plane has
        no non-empty object. Empty masks are dropped.
        """
        plane = self.check_plane(plane)
        r = self.results.get(plane)
        if r is None:
            return None
        keep = [k for k in range(len(r.masks)) if r.masks[k].any()]
        if not keep:
            return None
        prompts = [dict(r.prompts[k], plane=list(plane), score=float(r.scores[k])) for k in keep]
        masks = r.masks[keep].copy()
        self.clear(plane)
        return masks, prompts

    def restore(self, plane, prompts: PlanePrompts, result: PlaneResult) -> None:
        """Put back a plane's prompts and current objects (a commit that failed)."""
        plane = self.check_plane(plane)
        self.prompts[plane], self.results[plane] = prompts, result
        self._paint(plane)

    def drop_added_prompts(self, plane) -> bool:
        """Forget ``plane``'s prompts and their objects but keep the automatic proposals they
        were added to (as they were). Returns False (changing nothing) when the plane's current
        objects are not proposals plus objects of prompts."""
        plane = self.check_plane(plane)
        current = self.results.get(plane)
        kept = proposals_under(current)
        if kept is None or kept is current:
            return False
        self.restore(plane, PlanePrompts(), kept)
        return True

    def clear(self, plane) -> bool:
        """Forget ``plane``'s prompts and current objects. Returns True if labels changed."""
        plane = tuple(plane)
        self.prompts.pop(plane, None)
        had = self.results.pop(plane, None) is not None
        changed = had or bool(self.current_labels[plane].any())
        self._forget(plane)
        return changed

    def _forget(self, plane: PlaneIndex) -> None:
        self.current_labels[plane] = 0
        self._extent.pop(plane, None)
        self._dirty = None

    def recompute_all(self) -> list[PlaneIndex]:
        """After a decoder change: drop every result; recompute the ready plane's.

        Returns the planes whose labels changed.
        """
        planes = list(self.results)
        for plane in planes:
            self.results.pop(plane)
            self._forget(plane)
        if self.ready_plane is not None and self.ready_plane in self.prompts:
            self._recompute(self.ready_plane, self.prompts[self.ready_plane])
        return planes
