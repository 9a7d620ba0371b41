"""automatic.median: the 3 x 3 median equals scipy's for every dtype, size and border."""

import numpy as np
import pytest
from scipy import ndimage

from napari_devosam.automatic.median import median3x3


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (2, 2), (3, 5), (37, 64), (128, 97)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.uint8, np.int32])
def test_equals_scipy_median_filter(shape, dtype):
    rng = np.random.default_rng(7)
    x = (rng.random(shape) * 200).astype(dtype)
    x[0, 0] = 199  # a hot pixel in the corner, where the border mode matters
    out = median3x3(x)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, ndimage.median_filter(x, 3))


def test_ties_and_constant_planes():
    x = np.zeros((16, 16), np.float32)
    x[::2] = 5
    np.testing.assert_array_equal(median3x3(x), ndimage.median_filter(x, 3))
    np.testing.assert_array_equal(median3x3(np.full((4, 4), 3.0)), np.full((4, 4), 3.0))


def test_removes_an_isolated_hot_pixel():
    x = np.full((9, 9), 10, np.uint16)
    x[4, 4] = 60000
    assert median3x3(x).max() == 10


def test_rejects_non_2d():
    with pytest.raises(ValueError, match="2D plane"):
        median3x3(np.zeros((2, 3, 3)))
