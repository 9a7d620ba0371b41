"""Automatic results as *proposals* in the annotator (``annotation.state.AnnotatorState``).

Proposals are a plane's current objects, like the objects of drawn prompts: shown in the
``current object`` layer, removable one by one, committed only by the user's commit (the
state's ``take_commit``). They never cover committed objects: pixels already committed are
removed from them and a proposal left with fewer than ``min_area`` pixels is dropped (the
store, too, gives a new object only background pixels). Running again (``apply_run``)
replaces a plane's earlier proposals, never objects of the user's prompts, and says what
changed and why nothing did; ``undo_replaced`` puts the earlier proposals back. No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_devosam.automatic.core import AutoResult
from napari_devosam.automatic.postprocess import MIN_AREA
from napari_devosam.utils.text import count, plane_name


def _store_prompt(prompt: dict, mode: str) -> dict:
    """The prompt dict committed with an object (the annotator's keys plus the origin)."""
    point = prompt.get("point")
    return {"box": prompt.get("box"), "points": [point] if point is not None else [],
            "point_labels": [1] if point is not None else [],
            "automatic": mode, "source": prompt.get("source")}


def proposal_masks(result: AutoResult, committed: np.ndarray | None = None,
                   min_area: int = MIN_AREA) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """``(masks (K, H, W) bool, scores (K,), prompts)`` of a result, minus ``committed``
    (``(H, W)`` labels, non-zero = taken) pixels; proposals left too small are dropped."""
    masks, scores, prompts = [], [], []
    free = None if committed is None else np.asarray(committed) == 0
    for obj in range(1, result.n_objects + 1):
        mask = result.labels == obj
        if free is not None:
            mask &= free
        if np.count_nonzero(mask) < min_area:
            continue
        masks.append(mask)
        scores.append(result.scores[obj])
        prompts.append(_store_prompt(result.prompts[obj - 1], result.mode))
    shape = result.labels.shape
    return (np.array(masks, dtype=bool).reshape(-1, *shape), np.asarray(scores, np.float64),
            prompts)


def only_proposals(state, plane) -> bool:
    """Whether ``plane``'s current objects (at least one) all came from automatic runs."""
    current = state.result(state.check_plane(plane))
    return (current is not None and len(current.masks) > 0
            and all(p.get("automatic") for p in current.prompts))


def show_proposals(state, plane, result: AutoResult, committed=None,
                   min_area: int = MIN_AREA, replace: bool = False) -> int:
    """Make ``result``'s objects ``plane``'s current objects in ``state``; returns how many.

    ``replace``: current objects that are all proposals of an earlier run are replaced (when
    ``result`` has at least one object; otherwise they stay). Raises ``ValueError`` when the
    plane has current objects from the user's prompts, or proposals and not ``replace``
    (commit or clear them first: proposals never replace the user's work).
    """
    from napari_devosam.annotation.state import PlanePrompts, PlaneResult

    plane = state.check_plane(plane)
    current = state.result(plane)
    if current is not None and len(current.masks) and not (
            replace and only_proposals(state, plane)):
        raise ValueError(f"{plane_name(plane)} has current objects: commit or clear them "
                         "first")
    masks, scores, prompts = proposal_masks(result, committed, min_area)
    if len(masks) == 0:
        return 0
    prompts_in = state.prompts.get(plane, PlanePrompts())
    state.restore(plane, prompts_in, PlaneResult(prompts_in, masks, scores, prompts))
    return len(masks)


def remove_proposal_at(state, plane, row: float, col: float) -> bool:
    """Remove the current object of ``plane`` under pixel ``(row, col)``; False if none."""
    from napari_devosam.annotation.state import PlaneResult

    plane = state.check_plane(plane)
    r, c = int(round(row)), int(round(col))
    h, w = state.plane_shape
    current = state.result(plane)
    if current is None or not (0 <= r < h and 0 <= c < w):
        return False
    hit = [k for k in range(len(current.masks)) if current.masks[k][r, c]]
    if not hit:
        return False
    keep = [k for k in range(len(current.masks)) if k != hit[0]]
    if not keep:
        return state.clear(plane)
    new = PlaneResult(current.prompts_in, current.masks[keep], current.scores[keep],
                      [current.prompts[k] for k in keep])
    state.restore(plane, current.prompts_in, new)
    return True


@dataclass
class ProposalRun:
    """What putting a run's results into the annotator did, plane by plane.

    ``shown``: proposals now shown; ``planes``: planes that got them; ``replaced``: ``{plane:
    (prompts, PlaneResult)}`` of earlier proposals replaced (``undo_replaced`` puts them back);
    ``unchanged``: planes whose new proposals equal the earlier ones; ``kept``: planes whose
    current objects came from the user's prompts (left alone); ``empty``: planes without any
    new proposal, with why (``AutoResult.message`` or "every object is committed already").
    """

    shown: int = 0
    planes: list = field(default_factory=list)
    replaced: dict = field(default_factory=dict)
    unchanged: list = field(default_factory=list)
    kept: list = field(default_factory=list)
    empty: dict = field(default_factory=dict)

    def text(self) -> str:
        """One message saying what changed, and why nothing did when nothing did."""
        parts = [f"{count(self.shown, 'proposal')} on {count(len(self.planes), 'plane')}"]
        n_old = sum(len(r.masks) for _, r in self.replaced.values())
        if self.replaced:
            parts.append(f"they replace {count(n_old, 'earlier proposal')} on "
                         f"{count(len(self.replaced), 'plane')} (Undo brings them back)")
        if self.unchanged:
            parts.append(f"{count(len(self.unchanged), 'plane')} got the same proposals as "
                         "before: nothing changed there (try another stain or diameter)")
        if self.kept:
            parts.append(f"{count(len(self.kept), 'plane')} with objects from your prompts "
                         "left alone: commit or clear them first")
        if self.empty:
            plane, why = next(iter(self.empty.items()))
            name = f"plane {plane_text(plane)}" if plane else "the plane"
            parts.append(f"{count(len(self.empty), 'plane')} without a proposal "
                         f"({name}: {why})")
        return "; ".join(parts)


def plane_text(plane) -> str:
    return ", ".join(str(i) for i in plane)


def apply_run(state, results: dict, committed_of=None, min_area: int = MIN_AREA
              ) -> ProposalRun:
    """Show ``results`` (``{plane: AutoResult}``) as proposals in ``state``, replacing the
    earlier proposals of those planes; ``committed_of(plane)`` gives the plane's committed
    labels ``(H, W)`` (or None). Returns a ``ProposalRun`` (what to say, what to undo)."""
    from napari_devosam.annotation.state import PlanePrompts

    run = ProposalRun()
    for plane, res in results.items():
        plane = state.check_plane(plane)
        old = state.result(plane)
        before = (state.prompts.get(plane, PlanePrompts()), old) if only_proposals(
            state, plane) else None
        committed = None if committed_of is None else committed_of(plane)
        try:
            n = show_proposals(state, plane, res, committed, min_area, replace=True)
        except ValueError:
            run.kept.append(plane)
            continue
        if n == 0:
            run.empty[plane] = res.message or ("every object found is committed already"
                                               if res.n_objects else "no object found")
            continue
        run.shown += n
        run.planes.append(plane)
        if before is not None:
            new = state.result(plane).masks
            if new.shape == old.masks.shape and np.array_equal(new, old.masks):
                run.unchanged.append(plane)
            else:
                run.replaced[plane] = before
    return run


def undo_replaced(state, replaced: dict) -> int:
    """Put back the proposals a run replaced (``ProposalRun.replaced``); returns how many
    planes."""
    for plane, (prompts, result) in replaced.items():
        state.restore(plane, prompts, result)
    return len(replaced)
