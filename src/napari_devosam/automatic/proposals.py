"""Automatic results as *proposals* in the annotator (``annotation.state.AnnotatorState``).

Proposals are a plane's current objects, like the objects of drawn prompts: shown in the
``current object`` layer, removable one by one, committed only by the user's commit (the
state's ``take_commit``). They never cover committed objects: pixels already committed are
removed from them and a proposal left with fewer than ``min_area`` pixels is dropped (the
store, too, gives a new object only background pixels). No Qt here.
"""

from __future__ import annotations

import numpy as np

from napari_devosam.automatic.core import AutoResult
from napari_devosam.automatic.postprocess import MIN_AREA


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


def show_proposals(state, plane, result: AutoResult, committed=None,
                   min_area: int = MIN_AREA) -> int:
    """Make ``result``'s objects ``plane``'s current objects in ``state``; returns how many.

    Raises ``ValueError`` when the plane already has current objects (commit or clear them
    first: proposals never replace the user's work).
    """
    from napari_devosam.annotation.state import PlanePrompts, PlaneResult

    plane = state.check_plane(plane)
    current = state.result(plane)
    if current is not None and len(current.masks):
        raise ValueError(f"plane {plane} has current objects: commit or clear them first")
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
