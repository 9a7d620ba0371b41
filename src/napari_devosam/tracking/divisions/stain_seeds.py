"""Divisions inside one connected mask: two stain seeds in it that SAM sees as two cells.

A cell that divides between two planes often comes back from the mother's prompt as one
connected mask over both daughters (they touch), which ``tracking.divisions.split.split_mask``
cannot split. Here the plane's stain seeds (``automatic.seeds``: distance-transform maxima of
membrane-enclosed interiors, or nuclear blobs) propose the split: when at least two seeds lie
in the mask, the two farthest apart cut it by nearest seed (the perpendicular bisector), and
both halves must hold ``division_min_fraction`` of the area and ``division_min_area`` pixels.
Propagation then asks SAM about each half on its own and keeps the division only if the two
answers are different cells (``division_max_overlap``). A track whose cell is lost on a plane
(the mother's prompt often lands on the new membrane between the daughters) is offered the
two free seeds nearest to it instead (``sisters_near``), checked by SAM the same way. These
heuristics are this package's own.
"""

from __future__ import annotations

import numpy as np

from napari_devosam.tracking.params import PropagationParams
from napari_devosam.tracking.records import Crop


def plane_seeds(pixels: np.ndarray, min_area: int, analysis=None, stain: str = "auto"):
    """The stain seeds (``automatic.seeds.Seeds``) of one ``(H, W)`` plane (may be empty);
    ``analysis``: its ``plane_analysis`` when already made; ``stain`` as for
    ``plane_analysis``."""
    from napari_devosam.automatic.seeds import stain_seeds

    if analysis is None:
        analysis = plane_analysis(pixels, min_area, stain)
    return stain_seeds(analysis, min_area)


def plane_analysis(pixels: np.ndarray, min_area: int, stain: str = "auto"):
    """``automatic.seeds.analyse_plane`` of one ``(H, W)`` plane; ``stain`` "auto" decides it
    from the plane, "membrane" or "nuclei" takes it as given (skips the decision)."""
    from napari_devosam.automatic.seeds import analyse_plane

    return analyse_plane(pixels, stain=stain, min_area=min_area)


def seed_points(seeds) -> np.ndarray:
    """``(N, 2)`` (row, col) int pixel positions of ``seeds``."""
    return np.round(seeds.points).astype(np.int64).reshape(-1, 2)


def existed_before(point, previous_points: np.ndarray, mother: Crop, tolerance: float) -> bool:
    """True when the previous plane had a stain seed (``previous_points`` ``(N, 2)`` (row,
    col)) within ``tolerance`` pixels of ``point`` outside ``mother`` (the dividing cell's
    previous mask): a cell was there already, so the cell at ``point`` is no daughter but a
    neighbour (on membrane images SAM's masks often leak into the next cell)."""
    if len(previous_points) == 0:
        return False
    near = previous_points[np.linalg.norm(previous_points - point, axis=1) <= tolerance]
    inside = mother.full()
    h, w = inside.shape
    return any(not (0 <= r < h and 0 <= c < w) or not inside[r, c] for r, c in near)


def sisters_near(seeds, shifted: Crop, free: np.ndarray, params: PropagationParams
                 ) -> list[Crop] | None:
    """Two daughters for a track that lost its cell: the two seeds nearest to its
    motion-shifted previous mask ``shifted``, within ``division_search_radius`` times that
    mask's equivalent radius of its centroid, on ``free`` pixels (no other object's); each
    becomes its seed basin's box (free pixels only) for SAM to outline. None if there are
    fewer than two such seeds."""
    return _free_seeds_near(seeds, shifted, free, params, 2)


def seed_near(seeds, shifted: Crop, free: np.ndarray, params: PropagationParams
              ) -> Crop | None:
    """As ``sisters_near``, for one cell: the basin box of the free seed nearest to
    ``shifted`` (to find a lost cell again), or None."""
    found = _free_seeds_near(seeds, shifted, free, params, 1)
    return found[0] if found else None


def _free_seeds_near(seeds, shifted: Crop, free: np.ndarray, params: PropagationParams,
                     n: int) -> list[Crop] | None:
    if len(seeds) < n or shifted.area == 0:
        return None
    points = seed_points(seeds)
    h, w = free.shape
    ok = (points[:, 0] >= 0) & (points[:, 0] < h) & (points[:, 1] >= 0) & (points[:, 1] < w)
    ok &= ~np.isnan(seeds.boxes).any(axis=1)
    ok[ok] = free[points[ok, 0], points[ok, 1]]
    reach = params.division_search_radius * np.sqrt(shifted.area / np.pi)
    dist = np.linalg.norm(points - np.asarray(shifted.centroid()), axis=1)
    near = np.flatnonzero(ok & (dist <= reach))
    if len(near) < n:
        return None
    crops = []
    for k in near[np.argsort(dist[near], kind="stable")[:n]]:
        r0, c0, r1, c1 = (int(v) for v in seeds.boxes[k])
        mask = np.zeros((h, w), dtype=bool)
        mask[r0:r1 + 1, c0:c1 + 1] = free[r0:r1 + 1, c0:c1 + 1]
        if mask.sum() < params.division_min_area:
            return None
        crops.append(Crop.from_mask(mask))
    return crops


def split_by_seeds(crop: Crop, points: np.ndarray, params: PropagationParams
                   ) -> list[Crop] | None:
    """Two halves of ``crop`` cut between the two seeds of ``points`` inside it that lie
    farthest apart, or None (fewer than two seeds inside, or a half too small)."""
    r0, c0 = crop.offset
    h, w = crop.data.shape
    local = points - (r0, c0)
    inside = (local[:, 0] >= 0) & (local[:, 0] < h) & (local[:, 1] >= 0) & (local[:, 1] < w)
    local = local[inside]
    local = local[crop.data[local[:, 0], local[:, 1]]] if len(local) else local
    if len(local) < 2:
        return None
    d = np.linalg.norm(local[:, None] - local[None], axis=-1)
    i, j = np.unravel_index(np.argmax(d), d.shape)
    rr, cc = np.nonzero(crop.data)
    pix = np.stack([rr, cc], 1)
    nearer_i = np.linalg.norm(pix - local[i], axis=1) <= np.linalg.norm(pix - local[j], axis=1)
    need = max(params.division_min_fraction * crop.area, params.division_min_area)
    halves = []
    for side in (nearer_i, ~nearer_i):
        if side.sum() < need:
            return None
        mask = np.zeros((h, w), dtype=bool)
        mask[rr[side], cc[side]] = True
        sub = Crop.from_mask(mask)
        halves.append(Crop((sub.offset[0] + r0, sub.offset[1] + c0), sub.data, crop.shape))
    return halves
