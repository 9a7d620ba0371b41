"""Phantom time-lapses with ground-truth lineage: cells keep their ids across frames and
daughters name their mother.

Built on ``synthetic.phantoms`` (same embryo geometry, rendering and noise): the seeds of the
Voronoi cells are followed through time with an id each. At every frame after the first, each
cell older than ``min_cycle`` frames divides with probability ``division_fraction`` (at most
``max_cells`` cells): its seed becomes two seeds ``0.4 * radius`` apart along a random
direction, with two new ids whose parent is the mother's id. The seeds relax (Lloyd steps)
and the embryo drifts by ~``drift`` pixels per frame. Deterministic per ``seed``.

A nucleus keeps its brightness from frame to frame, and daughters take their mother's within
10 % (sisters share her chromatin), as on real movies: DevoLearn nuclear sisters measured
0.66-1.0 of each other's brightness above background.
"""

from __future__ import annotations

import numpy as np

from napari_devosam.synthetic.phantoms import _check, _Embryo, _render


def _divide(embryo: _Embryo, ids: np.ndarray, born: np.ndarray, t: int, rng, fraction: float,
            min_cycle: int, max_cells: int, parents: dict[int, int], next_id: int):
    n = len(embryo.seeds)
    radius = np.sqrt(embryo.a * embryo.b / max(n, 1))
    seeds, new_ids, new_born = [], [], []
    budget = max_cells - n
    for s, cid, b in zip(embryo.seeds, ids, born, strict=True):
        if budget > 0 and t - b >= min_cycle and rng.random() < fraction:
            budget -= 1
            theta = rng.uniform(0, np.pi)
            d = 0.4 * radius * np.array([np.cos(theta), np.sin(theta)])
            for sign in (-1, 1):
                seeds.append(s + sign * d)
                new_ids.append(next_id)
                new_born.append(t)
                parents[next_id] = int(cid)
                next_id += 1
        else:
            seeds.append(s)
            new_ids.append(int(cid))
            new_born.append(b)
    seeds = np.asarray(seeds)
    r = np.hypot(seeds[:, 0] / embryo.a, seeds[:, 1] / embryo.b)
    seeds[r > 0.9] *= (0.9 / r[r > 0.9])[:, None]
    embryo.seeds = seeds
    return np.asarray(new_ids), np.asarray(new_born), next_id


def make_lineage_timelapse(n_timepoints: int = 8, shape=(128, 128), n_cells: int = 3,
                           seed: int = 0, dtype=np.uint16, kind: str = "nuclei",
                           division_fraction: float = 0.3, min_cycle: int = 3,
                           max_cells: int = 16, drift: float = 1.0,
                           steady_brightness: bool = True
                           ) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """A time-lapse of one embryo with tracked, dividing cells.

    Returns ``(stack, labels, parents)``: ``stack`` ``(T, H, W)`` of ``dtype``; ``labels``
    ``(T, H, W)`` int32 whose values are track ids (the same cell has the same id on every
    frame, 0 is background); ``parents`` ``{track id: mother's track id}`` for every daughter
    (tracks of the first frame have none). ``steady_brightness``: each nucleus keeps its
    brightness and daughters take their mother's (see the module docstring); False draws a
    new one for every nucleus on every frame, as this generator did before 2026-12-07 (the
    movies some older tests were written on). Raises ``ValueError`` for impossible layouts
    (see ``phantoms.make_embryo``).
    """
    shape = tuple(int(s) for s in shape)
    _check(shape, n_cells, kind)
    if n_timepoints < 1 or min_cycle < 1:
        raise ValueError("n_timepoints and min_cycle must be at least 1")
    rng = np.random.default_rng(seed)
    embryo = _Embryo(shape, rng)
    embryo.sample_seeds(n_cells, rng)
    embryo.relax()
    ids = np.arange(1, n_cells + 1)
    born = np.zeros(n_cells, dtype=int)
    parents: dict[int, int] = {}
    next_id = n_cells + 1
    shade = np.random.default_rng([seed, 1])  # apart from rng: the geometry stays as it was
    level = {int(i): float(shade.uniform(3000, 8000)) for i in ids}
    images, labels = [], []
    for t in range(n_timepoints):
        if t:
            ids, born, next_id = _divide(embryo, ids, born, t, rng, division_fraction,
                                         min_cycle, max(max_cells, n_cells), parents, next_id)
            embryo.relax(iterations=2)
            embryo.center = embryo.center + rng.normal(0, drift, 2)
            embryo.angle += rng.normal(0, 0.01)
        for i in ids:
            if int(i) not in level:
                level[int(i)] = level[parents[int(i)]] * float(shade.uniform(0.9, 1.1))
        steady = [level[int(i)] for i in ids] if steady_brightness else None
        img, lab = _render(embryo, rng, kind, dtype, steady)
        lut = np.concatenate([[0], ids]).astype(np.int32)
        images.append(img)
        labels.append(lut[lab])
    return np.stack(images), np.stack(labels), parents
