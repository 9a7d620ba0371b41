"""Membrane seeds on synthetic membranes: membranes found by their ridge shape
(``stain.membrane_map``, ``stain.membrane_width``), one seed per distance-transform dome
(``seeds.membrane_seeds``), the cell radius from the interiors (``scale.interior_radius``) and
the sparse path's embryo. No SAM here."""

import numpy as np
import pytest
from scipy import ndimage

from napari_devosam.automatic.membrane_seeds import membrane_seeds
from napari_devosam.automatic.scale import interior_radius
from napari_devosam.automatic.seeds import analyse_plane
from napari_devosam.automatic.stain import bright_width, membrane_map, membrane_width
from napari_devosam.synthetic.phantoms import make_embryo


def _seed_counts(seeds, truth) -> np.ndarray:
    """How many seeds fall in each label of ``truth`` (index 0: the background)."""
    rc = np.round(seeds.points).astype(int)
    return np.bincount(truth[rc[:, 0], rc[:, 1]], minlength=int(truth.max()) + 1)


def _bright_cytoplasm(frac: float = 0.5, cells=(2, 5, 8)):
    """A membrane phantom (10 cells) where the cytoplasm of ``cells`` is textured and as
    bright as ``frac`` of the membranes (above the plane's bright threshold), as in real
    membrane movies where some cells' cytoplasm outshines other cells' membranes."""
    img, truth = make_embryo((256, 320), 10, seed=7, kind="membrane")
    x = img.astype(np.float64)
    membrane = ndimage.grey_dilation(truth, size=3) != ndimage.grey_erosion(truth, size=3)
    level = float(np.median(x[membrane & (truth > 0)]))
    rng = np.random.default_rng(3)
    for c in cells:
        texture = ndimage.gaussian_filter(rng.normal(0, 1, x.shape), 2)
        texture /= texture.std()
        inside = (truth == c) & ~membrane
        x[inside] = (frac * level * (1 + 0.1 * texture))[inside]
    return np.clip(x, 0, None), truth


def test_cells_with_bright_cytoplasm_still_get_one_seed_each():
    img, truth = _bright_cytoplasm()
    a = analyse_plane(img, stain="membrane")
    bright = (a.smooth >= a.t_high) & (truth > 0)
    assert bright[truth == 5].mean() > 0.5  # a brightness threshold takes these for membrane
    counts = _seed_counts(membrane_seeds(a), truth)
    assert counts[0] == 0 and list(counts[1:]) == [1] * 10


def test_membrane_width_is_the_membranes_not_the_bright_cells():
    plain, _ = make_embryo((256, 320), 10, seed=7, kind="membrane")
    a = analyse_plane(plain, stain="membrane")
    w_plain = membrane_width(a.smooth, a.region)
    b = analyse_plane(_bright_cytoplasm(0.6)[0], stain="membrane")
    assert 1 <= w_plain <= 4
    assert abs(membrane_width(b.smooth, b.region) - w_plain) <= 1
    assert bright_width(b.smooth, b.region) > w_plain + 2  # the stain rule's width is pulled up


def test_membrane_map_marks_lines_not_bright_flat_regions():
    """A 3 x 3 grid of 50 px cells (membranes 4 px wide); the middle cell's cytoplasm is
    flat and 60 % as bright as the membranes."""
    rng = np.random.default_rng(0)
    img = np.full((170, 170), 100.0)
    for k in range(4):
        img[8 + 50 * k:12 + 50 * k, 8:162] = img[8:162, 8 + 50 * k:12 + 50 * k] = 300.0
    img[62:108, 62:108] = 220.0
    smooth = ndimage.gaussian_filter(img + rng.normal(0, 3, img.shape), 1.0)
    _ridge, membrane, sigma = membrane_map(smooth, np.ones(img.shape, dtype=bool))
    assert 1 <= sigma <= 3
    assert membrane[20:50, 59:61].mean() > 0.9 and membrane[109:111, 120:150].mean() > 0.9
    assert membrane[70:100, 70:100].mean() < 0.05  # inside the bright flat cell: no ridge
    assert membrane[20:50, 20:50].mean() < 0.05


def _two_cells(gap: int):
    """Two 60 x 60 cells side by side in a membrane box; their shared membrane has a hole of
    ``gap`` px in its middle. Returns ``(image, truth)``."""
    img = np.full((100, 150), 20.0)
    truth = np.zeros(img.shape, dtype=np.int32)
    truth[20:80, 15:75], truth[20:80, 75:135] = 1, 2
    img[17:83, 12:138] = 200.0
    img[20:80, 15:135] = 60.0
    img[20:80, 74:77] = 200.0
    if gap:
        img[50 - gap // 2:50 + gap - gap // 2, 74:77] = 60.0
    rng = np.random.default_rng(1)
    return img + rng.normal(0, 3, img.shape), truth


@pytest.mark.parametrize("gap", [0, 8])
def test_two_cells_get_two_seeds_even_through_a_membrane_gap(gap):
    img, truth = _two_cells(gap)
    counts = _seed_counts(membrane_seeds(analyse_plane(img, stain="membrane")), truth)
    assert list(counts) == [0, 1, 1]


def test_a_notch_or_speck_inside_one_cell_leaves_one_seed():
    img, truth = _two_cells(0)
    img[20:80, 74:77] = 60.0  # one wide cell instead of two ...
    truth[truth == 2] = 1
    img[20:34, 60:63] = 200.0  # ... with a notch of membrane into it
    img[60:64, 100:104] = 200.0  # and a bright speck inside
    counts = _seed_counts(membrane_seeds(analyse_plane(img, stain="membrane")), truth)
    assert list(counts) == [0, 1]


def test_interior_radius_is_the_area_weighted_typical_cell():
    rr, cc = np.mgrid[:200, :300]
    interior = np.zeros((200, 300), dtype=bool)
    for r, c, rad in [(50, 50, 20), (50, 150, 21), (150, 60, 19), (150, 200, 8)]:
        interior |= (rr - r) ** 2 + (cc - c) ** 2 <= rad ** 2
    interior[190:193, 100:280] = True  # a sliver between membranes, 3 px wide
    interior[5:9, 280:284] = True  # a speck under min_area
    lab, _ = ndimage.label(interior)
    radius = interior_radius(lab, ndimage.distance_transform_edt(interior), min_area=30)
    assert 19 <= radius <= 22
    assert interior_radius(np.zeros((5, 5), dtype=int), np.zeros((5, 5))) is None


def test_dim_embryo_in_pixel_noise_gets_seeds_in_cells_not_outside():
    """Low photon counts send the analysis down the sparse path (the embryo's extent is not
    found); the seeds must still be cells, not the space around the embryo."""
    img, truth = make_embryo((256, 320), 10, seed=7, kind="membrane")
    x = img.astype(np.float64)
    lo, hi = np.percentile(x, (1, 99.5))
    photons = np.random.default_rng(1).poisson(np.clip((x - lo) / (hi - lo), 0, None) * 10 + 2)
    a = analyse_plane(photons.astype(np.float64), stain="membrane")
    assert a.found and a.sparse
    counts = _seed_counts(membrane_seeds(a), truth)
    assert counts[0] == 0
    assert np.count_nonzero(counts[1:] == 1) >= 9 and counts[1:].max() == 1


def test_a_bright_speck_at_a_seed_does_not_shrink_its_box():
    """A seed's box is its cell's extent, also when a bright inclusion sits where the seed
    is (a real DevoLearn cell, frame 10, got a one-pixel box and no mask from SAM)."""
    img, truth = _two_cells(8)  # the right cell's flood can come in through the gap
    img[49:52, 44:47] = 120.0  # a small bright inclusion at the left cell's centre
    seeds = membrane_seeds(analyse_plane(img, stain="membrane"))
    assert list(_seed_counts(seeds, truth)) == [0, 1, 1]
    for (r0, c0, r1, c1), (r, c) in zip(seeds.boxes, seeds.points, strict=True):
        rows, cols = np.nonzero(truth == truth[int(r), int(c)])
        assert r1 - r0 >= 0.8 * np.ptp(rows) and c1 - c0 >= 0.8 * np.ptp(cols)
