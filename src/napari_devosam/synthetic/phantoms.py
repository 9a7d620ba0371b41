"""Procedurally generated C. elegans-like embryo images with ground-truth instance labels.

An embryo is an ellipse (the eggshell's inside) tiled by cells: a Voronoi tessellation of
well-separated seeds, relaxed a few Lloyd steps so the cells look roundish. The image is
rendered in 16-bit "photon" units like a membrane-stained confocal plane:

- background ~200 with a smooth gradient, dim cytoplasm (~450-900, one level per cell);
- ``kind="membrane"``: bright thin membranes (peaks ~3000-8000, one level per cell pair,
  modulated along their length) between cells and along the embryo's edge;
- ``kind="nuclei"``: one bright nucleus (a disk, ~3000-8000) per cell, no membranes;
- a slight blur (the optics), Poisson shot noise plus Gaussian read noise, a few hot pixels.

Labels are ``int32``, ``0`` outside the embryo; with ``kind="membrane"`` ids ``1..n`` are the
cells (they tile the embryo), with ``kind="nuclei"`` id ``i`` is the nucleus of cell ``i``.
Every id is present and is one 4-connected region. Everything is deterministic per ``seed``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

KINDS = ("membrane", "nuclei")


class _Embryo:
    """Ellipse geometry plus cell seeds in embryo-local coordinates (pixels from the centre,
    ``u`` along the long axis, ``v`` across)."""

    def __init__(self, shape, rng):
        h, w = shape
        self.shape = (h, w)
        long_axis = max(h, w)
        short_axis = min(h, w)
        self.a = 0.5 * min(0.86 * long_axis, 1.45 * 0.80 * short_axis)  # semi-axis along u
        self.b = self.a / rng.uniform(1.45, 1.7)  # C. elegans eggs are ~1.6:1
        self.angle = (0.0 if w >= h else np.pi / 2) + rng.uniform(-0.25, 0.25)
        self.center = np.array([h / 2, w / 2]) + rng.normal(0, 0.02 * short_axis, 2)
        self.seeds = np.zeros((0, 2))

    def inside(self, uv, margin=1.0):
        return (uv[:, 0] / self.a) ** 2 + (uv[:, 1] / self.b) ** 2 <= margin**2

    def to_local(self, rows, cols):
        """Pixel (row, col) arrays -> local (u, v) arrays."""
        dr, dc = rows - self.center[0], cols - self.center[1]
        ca, sa = np.cos(self.angle), np.sin(self.angle)
        return dc * ca - dr * sa, dc * sa + dr * ca

    def sample_seeds(self, n, rng):
        """``n`` seeds inside the ellipse, pairwise farther apart than a fair share allows."""
        min_dist = 0.55 * np.sqrt(np.pi * self.a * self.b / max(n, 1))
        seeds: list[np.ndarray] = []
        tries = 0
        while len(seeds) < n:
            tries += 1
            if tries % 2000 == 0:
                min_dist *= 0.8
            p = rng.uniform([-self.a, -self.b], [self.a, self.b])
            if not self.inside(p[None], 0.85)[0]:
                continue
            if seeds and np.min(np.hypot(*(np.asarray(seeds) - p).T)) < min_dist:
                continue
            seeds.append(p)
        self.seeds = np.asarray(seeds, dtype=float)

    def relax(self, iterations=3, step=2.0):
        """Lloyd relaxation on a grid of local points inside the ellipse."""
        u, v = np.meshgrid(np.arange(-self.a, self.a, step), np.arange(-self.b, self.b, step))
        pts = np.stack([u.ravel(), v.ravel()], axis=1)
        pts = pts[self.inside(pts)]
        for _ in range(iterations):
            owner = cKDTree(self.seeds).query(pts)[1]
            counts = np.bincount(owner, minlength=len(self.seeds))
            for axis in range(2):
                sums = np.bincount(owner, weights=pts[:, axis], minlength=len(self.seeds))
                keep = counts > 0
                self.seeds[keep, axis] = sums[keep] / counts[keep]

    def divide(self, rng, fraction, max_cells):
        """Split about ``fraction`` of the cells into two daughters (never above ``max_cells``)."""
        n = len(self.seeds)
        radius = np.sqrt(self.a * self.b / max(n, 1))
        new = []
        budget = max_cells - n
        for s in self.seeds:
            if budget > 0 and rng.random() < fraction:
                theta = rng.uniform(0, np.pi)
                d = 0.4 * radius * np.array([np.cos(theta), np.sin(theta)])
                new.extend([s - d, s + d])
                budget -= 1
            else:
                new.append(s)
        seeds = np.asarray(new)
        r = np.hypot(seeds[:, 0] / self.a, seeds[:, 1] / self.b)
        seeds[r > 0.9] *= (0.9 / r[r > 0.9])[:, None]
        self.seeds = seeds


def _smooth_field(shape, rng, cells=(4, 5), low=0.0, high=1.0):
    """A smooth random field of ``shape`` with values in ``[low, high]``."""
    coarse = rng.random(cells)
    field = ndimage.zoom(coarse, (shape[0] / cells[0], shape[1] / cells[1]), order=1)
    field = field[: shape[0], : shape[1]]
    if field.shape != tuple(shape):
        field = np.pad(field, [(0, shape[0] - field.shape[0]), (0, shape[1] - field.shape[1])],
                       mode="edge")
    return low + (high - low) * field


def _fix_fragments(labels: np.ndarray) -> np.ndarray:
    """Make every id one 4-connected region: stray pieces join their neighbouring cell."""
    four = ndimage.generate_binary_structure(2, 1)
    stray = np.zeros(labels.shape, dtype=bool)
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        comp, n = ndimage.label(labels[sl] == i, structure=four)
        if n > 1:
            sizes = np.bincount(comp.ravel())[1:]
            stray[sl] |= (comp > 0) & (comp != 1 + int(np.argmax(sizes)))
    if stray.any():
        filled = labels.copy()
        filled[stray] = 0
        idx = ndimage.distance_transform_edt(
            (filled == 0) & (labels > 0) | stray, return_distances=False, return_indices=True
        )
        labels = np.where(stray, filled[idx[0], idx[1]], labels)
    return labels


def _to_dtype(values: np.ndarray, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.floating):
        return values.astype(dtype)
    info = np.iinfo(dtype)
    if info.max < 65535:
        values = values * (info.max / 10000.0)  # 8-bit: the 16-bit range scaled down
    return np.clip(np.rint(values), max(info.min, 0), info.max).astype(dtype)


def _render(embryo: _Embryo, rng, kind: str, dtype, nucleus_levels=None
            ) -> tuple[np.ndarray, np.ndarray]:
    """One plane of ``embryo`` and its labels. ``nucleus_levels``: ``(n,)`` brightness of
    each cell's nucleus, in seed order (None: drawn here, 3000-8000); the random stream is
    the same either way."""
    h, w = embryo.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = embryo.to_local(rows, cols)
    rad = np.hypot(u / embryo.a, v / embryo.b)
    inside = rad <= 1.0

    n = len(embryo.seeds)
    # a smooth warp makes membranes gently curved instead of straight Voronoi edges
    wobble = 0.012 * min(h, w)
    wu = _smooth_field((h, w), rng, cells=(6, 7), low=-wobble, high=wobble)
    wv = _smooth_field((h, w), rng, cells=(6, 7), low=-wobble, high=wobble)
    pts = np.stack([(u + wu)[inside], (v + wv)[inside]], axis=1)
    k = 2 if n > 1 else 1
    dist, idx = cKDTree(embryo.seeds).query(pts, k=k)
    nearest = idx[:, 0] if k == 2 else idx
    cells = np.zeros((h, w), dtype=np.int32)
    cells[inside] = nearest + 1
    cells = _fix_fragments(cells)

    # distance to the embryo's edge: (rad - 1) / |grad rad|
    grad = np.hypot(u / embryo.a**2, v / embryo.b**2) / np.maximum(rad, 1e-9)
    edge_dist = np.abs(rad - 1.0) / np.maximum(grad, 1e-9)

    signal = 200.0 * _smooth_field((h, w), rng, low=0.85, high=1.2)
    cyto = rng.uniform(450, 900, n + 1)
    signal += np.where(cells > 0, cyto[cells], 0.0)
    modulation = _smooth_field((h, w), rng, cells=(9, 11), low=0.55, high=1.2)
    sigma = 0.9

    if kind == "membrane":
        levels = rng.uniform(3000, 8000, (n + 1, n + 1))
        levels = np.maximum(levels, levels.T)  # one level per (unordered) cell pair
        if k == 2:
            s1, s2 = embryo.seeds[idx[:, 0]], embryo.seeds[idx[:, 1]]
            sep = np.maximum(np.hypot(*(s2 - s1).T), 1e-9)
            bisector = (dist[:, 1] ** 2 - dist[:, 0] ** 2) / (2 * sep)
            peak = levels[idx[:, 0] + 1, idx[:, 1] + 1]
            membrane = np.zeros((h, w))
            membrane[inside] = peak * np.exp(-0.5 * (bisector / sigma) ** 2)
            signal += membrane * modulation
        edge_level = rng.uniform(3500, 7000)
        signal += edge_level * modulation * np.exp(-0.5 * (edge_dist / (1.2 * sigma)) ** 2)
        labels = cells
    else:
        area = np.bincount(cells.ravel(), minlength=n + 1)
        nuc_r = 0.5 * np.sqrt(area / np.pi) * rng.uniform(0.8, 1.05, n + 1)
        sr, sc = _local_to_pixel(embryo, embryo.seeds)
        owner = np.maximum(cells - 1, 0)
        own = np.hypot(rows - sr[owner], cols - sc[owner])  # distance to the own seed
        radius = nuc_r[cells]
        labels = np.where((cells > 0) & (own <= radius), cells, 0).astype(np.int32)
        labels = _fix_fragments(labels)
        levels = rng.uniform(3000, 8000, n + 1)
        if nucleus_levels is not None:
            levels[1:] = nucleus_levels
        soft = 1.0 / (1.0 + np.exp((own - radius) / 0.8))
        signal += np.where(cells > 0, levels[cells] * soft, 0.0) * (0.6 + 0.4 * modulation)
        signal += rng.uniform(500, 900) * np.exp(-0.5 * (edge_dist / 2.0) ** 2)  # autofluor.

    signal = ndimage.gaussian_filter(signal, 1.0)
    gain = 2.0
    noisy = rng.poisson(np.maximum(signal, 0) / gain) * gain + rng.normal(0, 25, (h, w))
    n_hot = max(1, h * w // 15000)
    hot = rng.integers(0, h * w, n_hot)
    noisy.ravel()[hot] = rng.uniform(20000, 60000, n_hot)
    return _to_dtype(np.maximum(noisy, 0), dtype), labels.astype(np.int32)


def _local_to_pixel(embryo: _Embryo, uv: np.ndarray):
    ca, sa = np.cos(embryo.angle), np.sin(embryo.angle)
    u, v = uv[:, 0], uv[:, 1]
    dc = u * ca + v * sa
    dr = -u * sa + v * ca
    return embryo.center[0] + dr, embryo.center[1] + dc


def _check(shape, n_cells, kind):
    if len(shape) != 2 or min(shape) < 16:
        raise ValueError(f"shape must be (H, W) with H, W >= 16, got {shape}")
    if n_cells < 1:
        raise ValueError(f"n_cells must be at least 1, got {n_cells}")
    if n_cells * 60 > shape[0] * shape[1] * 0.4:
        raise ValueError(f"{n_cells} cells do not fit in a {shape[0]}x{shape[1]} image")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def make_embryo(shape=(256, 256), n_cells: int = 8, seed: int = 0, dtype=np.uint16,
                kind: str = "membrane") -> tuple[np.ndarray, np.ndarray]:
    """One embryo plane and its ground truth.

    Returns ``(image, labels)``: ``image`` ``(H, W)`` of ``dtype`` (16-bit photon units;
    8-bit dtypes get them scaled by 255/10000, floats keep them), ``labels`` ``(H, W)`` int32
    with ids ``1..n_cells`` (cells, or their nuclei for ``kind="nuclei"``), 0 elsewhere.
    """
    shape = tuple(int(s) for s in shape)
    _check(shape, n_cells, kind)
    rng = np.random.default_rng(seed)
    embryo = _Embryo(shape, rng)
    embryo.sample_seeds(n_cells, rng)
    embryo.relax()
    return _render(embryo, rng, kind, dtype)


def make_timelapse(n_timepoints: int = 3, shape=(256, 256), n_cells: int = 4, seed: int = 0,
                   dtype=np.uint16, kind: str = "membrane", division_fraction: float = 0.75,
                   max_cells: int = 64, drift: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """A time-lapse of one embryo whose cells divide, with slight drift and rotation.

    Starts with ``n_cells`` cells; at each next time point about ``division_fraction`` of the
    cells divide (at most ``max_cells`` in all), daughters relax into place, the embryo moves
    by ~``drift`` pixels. Returns ``(stack (T, H, W) dtype, labels (T, H, W) int32)``; labels
    are numbered ``1..n_t`` independently on each time point (no lineage across time).
    """
    shape = tuple(int(s) for s in shape)
    _check(shape, n_cells, kind)
    if n_timepoints < 1:
        raise ValueError(f"n_timepoints must be at least 1, got {n_timepoints}")
    max_cells = max(max_cells, n_cells)
    rng = np.random.default_rng(seed)
    embryo = _Embryo(shape, rng)
    embryo.sample_seeds(n_cells, rng)
    embryo.relax()
    images, labels = [], []
    for t in range(n_timepoints):
        if t:
            embryo.divide(rng, division_fraction, max_cells)
            embryo.relax(iterations=2)
            embryo.center = embryo.center + rng.normal(0, drift, 2)
            embryo.angle += rng.normal(0, 0.01)
        img, lab = _render(embryo, rng, kind, dtype)
        images.append(img)
        labels.append(lab)
    return np.stack(images), np.stack(labels)
