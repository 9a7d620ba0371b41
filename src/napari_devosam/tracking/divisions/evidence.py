"""Evidence a division needs before it stands (private to tracking).

Every division strategy (``split``, ``stain_seeds``, ``steps``, ``free_cells``) only proposes
two daughters. On real movies most proposals are not divisions: SAM's mask leaks over a
membrane into a neighbour, or a neighbour nobody tracks sits beside the track (the real
DevoLearn membrane movie, 5 seeds, 61 frames: 42 divisions where a person sees a handful).
A proposal stands only with all of this evidence (thresholds in ``PropagationParams``):

- **size**, on membrane-stained planes: each daughter holds at most
  ``division_max_daughter_fraction`` of the mother's previous area and both together at
  most ``division_max_total_fraction`` of it (a cell that divides is split in about
  halves; a neighbour is a whole cell beside one that kept its size). Nuclei are not held
  to it: a daughter nucleus soon has its mother's size (on the phantom lineage movies each
  daughter held 0.7-1.05 of it);
- **stain seeds** (``division_need_seeds``): each daughter covers one of the plane's own
  stain seeds, a different one (the image shows two cells, not one cut in two);
- **not a neighbour**: a daughter whose seed had a seed on the previous plane within half
  the mother's equivalent radius, outside the mother's previous mask, is a cell that was
  there before, not a daughter (``stain_seeds.existed_before``).

SAM seeing two cells is checked where the daughters are decoded (``steps.refine_daughters``:
the two answers overlap less than ``division_max_overlap``). A refused proposal keeps the
part that overlaps the mother most, and the track goes on as one cell. This rule is this
package's own.
"""

from __future__ import annotations

import numpy as np

from napari_devosam.tracking import prompts as pr
from napari_devosam.tracking.divisions.stain_seeds import existed_before, seed_points
from napari_devosam.tracking.params import PropagationParams
from napari_devosam.tracking.records import Crop


def _seed_inside(crop: Crop, points: np.ndarray) -> list[int]:
    """Indices of ``points`` ((N, 2) row, col) that fall on ``crop``'s pixels."""
    r0, c0 = crop.offset
    h, w = crop.data.shape
    local = points - (r0, c0)
    ok = (local[:, 0] >= 0) & (local[:, 0] < h) & (local[:, 1] >= 0) & (local[:, 1] < w)
    idx = np.flatnonzero(ok)
    return [int(k) for k in idx if crop.data[local[k, 0], local[k, 1]]]


def refusal(daughters: list[Crop], mother: Crop, seeds, previous_points, params: PropagationParams,
            stain: str = "membrane") -> str | None:
    """Why two proposed ``daughters`` are no division of ``mother`` (her previous mask, as
    it was, full-plane coordinates), or None when the evidence holds.

    ``seeds``: the plane's stain seeds (``automatic.seeds.Seeds``) or None (then the seed
    tests are skipped); ``previous_points()``: ``(N, 2)`` (row, col) seed points of the
    previous plane, called only when needed (may return an empty array); ``stain``: the
    run's stain ("membrane" checks the sizes, "nuclei" and "auto" do not)."""
    p = params
    area = float(mother.area)
    if area <= 0:
        return "no mother"
    sizes = [d.area / area for d in daughters]
    if stain == "membrane" and max(sizes) > p.division_max_daughter_fraction:
        return f"a daughter keeps {max(sizes):.2f} of the mother's area"
    if stain == "membrane" and sum(sizes) > p.division_max_total_fraction:
        return f"daughters hold {sum(sizes):.2f} of the mother's area"
    if not p.division_need_seeds or seeds is None:
        return None
    points = seed_points(seeds)
    inside = [_seed_inside(d, points) for d in daughters]
    if not inside[0] or not inside[1]:  # daughters are disjoint: two different seeds
        return "not two stain seeds"
    previous = np.round(np.asarray(previous_points(), dtype=float)).astype(np.int64)
    previous = previous.reshape(-1, 2)
    radius = np.sqrt(area / np.pi)
    for mine in inside:
        if all(existed_before(points[k], previous, mother, 0.5 * radius) for k in mine):
            return "a daughter is a cell that was there before"
    return None


def keep_one(daughters: list[Crop], shifted: Crop) -> list[Crop]:
    """The daughter that overlaps the motion-shifted mother most (first on ties), as the
    track's one cell."""
    scores = [pr.crop_iou(d, shifted) for d in daughters]
    return [daughters[int(np.argmax(scores))]]


def refuse_unproven(found: list[list[Crop]], mothers: list[Crop], shifted: list[Crop], seeds,
                    previous_points, params: PropagationParams, stain: str = "membrane"
                    ) -> list[tuple[int, str]]:
    """Turn, in place, every pair of daughters in ``found`` (per track index) that lacks the
    evidence of ``refusal`` back into one cell (``keep_one``). ``mothers`` and ``shifted``:
    each track's previous mask as it was and motion-shifted; ``previous_points()`` as for
    ``refusal`` (called once at most), ``stain`` as there. Returns ``(index, why)`` per
    refused pair."""
    memo: list = []

    def points():
        if not memo:
            memo.append(previous_points())
        return memo[0]

    refused = []
    for i, parts in enumerate(found):
        if len(parts) != 2:
            continue
        why = refusal(parts, mothers[i], seeds, points, params, stain)
        if why:
            found[i] = keep_one(parts, shifted[i])
            refused.append((i, why))
    return refused
