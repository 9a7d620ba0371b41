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

import numpy as np

from napari_devosam.annotation.plane_results import (  # noqa: F401 - re-exported
    PlanePrompts,
    PlaneResult,
    _added,
    _clip_to_box,
    _extent,
    _inside,
    _prompt_dict,
    _union,
    plane_prompts_from_layer_data,
    proposals_under,
)
from napari_devosam.engine.coords import usable_prompts
from napari_devosam.engine.stacks import PlaneIndex
from napari_devosam.utils.text import plane_name


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
