"""A constant added to a plane (a camera offset, a shifted float plane) changes nothing in
its analysis: the Gaussian-derivative filters see the plane less its floor (trial 16: DSB2018
minus 40000 as float32 gave a 7 px diameter and 174 objects instead of 22 px and 110)."""

import numpy as np
import pytest
from scipy import ndimage

from napari_devosam.automatic.seeds import analyse_plane, stain_seeds
from napari_devosam.synthetic.phantoms import make_embryo


@pytest.mark.parametrize("kind", ["nuclei", "membrane"])
def test_an_offset_changes_neither_stain_nor_size_nor_seeds(kind):
    plane, _ = make_embryo((160, 192), 8, seed=10_000_700, kind=kind)
    plane = plane.astype(np.float64)
    plane = np.round(200 * (plane - plane.min()) / np.ptp(plane))  # an 8-bit range
    base = analyse_plane(plane)
    base_seeds = stain_seeds(base)
    for shifted in (plane - 40_000.0, (plane + 40_000.0).astype(np.float32),
                    plane.astype(np.uint32) + 60_000):
        a = analyse_plane(shifted)
        seeds = stain_seeds(a)
        offset = float(shifted.min()) - float(plane.min())
        assert a.stain == base.stain == kind
        assert a.stain.score == pytest.approx(base.stain.score, abs=0.01)
        assert a.t_high - offset == pytest.approx(base.t_high, rel=1e-3)
        assert seeds.diameter == pytest.approx(base_seeds.diameter, rel=0.02)
        assert len(seeds) == len(base_seeds)
        np.testing.assert_allclose(seeds.points, base_seeds.points, atol=1.0)


def test_the_filters_leak_a_constant_without_the_floor_taken_off():
    """Why: scipy's sampled LoG kernel does not sum to zero, so a constant answers (this is
    what the analysis must not see); the floor-free plane answers nothing."""
    from napari_devosam.automatic.pedestal import floor_free

    flat = np.full((64, 64), 40_000.0)
    assert abs(ndimage.gaussian_laplace(flat, 1.0)[32, 32]) > 1.0
    assert not np.any(ndimage.gaussian_laplace(floor_free(flat), 1.0))


def test_infinite_pixels_read_as_the_brightest_and_darkest():
    """+Inf is the brightest value, as SAM's RGB shows it (trial 16: nuclei set to +Inf read
    as background, "no embryo"); -Inf the darkest; NaN the median."""
    plane, truth = make_embryo((160, 192), 8, seed=10_000_701, kind="nuclei")
    plane = plane.astype(np.float32)
    base = stain_seeds(analyse_plane(plane))
    hot = plane.copy()
    hot[truth > 0] = np.inf  # every nucleus saturated to +Inf
    a = analyse_plane(hot)
    assert a.found and a.stain == "nuclei"
    assert abs(len(stain_seeds(a)) - len(base)) <= 2
    cold = plane.copy()
    cold[:, :20] = -np.inf  # a dark band
    assert len(stain_seeds(analyse_plane(cold))) == len(base)
