"""to_rgb and Normalization: grayscale of any dtype -> SAM's (H, W, 3) uint8."""

import numpy as np
import pytest

from napari_devosam.engine.image import (
    DEFAULT_NORMALIZATION,
    Normalization,
    intensity_range,
    is_rgb,
    to_rgb,
)


def _ramp(dtype, shape=(40, 60), scale=1):
    return (np.arange(np.prod(shape)).reshape(shape) * scale).astype(dtype)


def _check_rgb(out, shape):
    assert out.shape == (*shape, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.uint32,
                                   np.int64, np.float16, np.float32, np.float64])
def test_grayscale_of_any_dtype_is_stretched(dtype):
    plane = _ramp(dtype) if dtype != np.float16 else _ramp(dtype, scale=0.25)
    out = to_rgb(plane)
    _check_rgb(out, plane.shape)
    assert out.min() == 0 and out.max() == 255
    # monotonic in the input
    order = np.argsort(plane.astype(np.float64).ravel(), kind="stable")
    assert (np.diff(out[..., 0].ravel()[order].astype(int)) >= 0).all()


def test_negative_values_and_a_hot_pixel_do_not_ruin_the_range():
    rng = np.random.default_rng(0)
    plane = rng.normal(-500, 50, size=(100, 100))
    plane[3, 4] = 1e9  # a hot pixel
    out = to_rgb(plane)
    assert out[3, 4, 0] == 255
    body = np.delete(out[..., 0].ravel(), 3 * 100 + 4)
    assert body.std() > 30  # the rest still spans the range, not squashed to 0
    lo, hi = intensity_range(plane)
    assert lo == pytest.approx(np.percentile(plane, 0.5)) and hi < 1e6


def test_nan_and_inf_are_handled():
    plane = _ramp(np.float32)
    clean = to_rgb(plane)
    dirty = plane.copy()
    dirty[0, :3] = [np.nan, np.inf, -np.inf]
    out = to_rgb(dirty)
    assert out[0, 0, 0] == 0 and out[0, 1, 0] == 255 and out[0, 2, 0] == 0
    # the range comes from the finite values only
    assert np.abs(out[1:].astype(int) - clean[1:].astype(int)).max() <= 1
    lo, hi = intensity_range(dirty)
    assert np.isfinite(lo) and np.isfinite(hi)


@pytest.mark.parametrize("fill", [np.nan, 7.0, np.inf, -np.inf])
def test_degenerate_planes_give_a_defined_result(fill):
    plane = np.full((20, 30), fill, dtype=np.float32)
    out = to_rgb(plane)
    _check_rgb(out, plane.shape)
    assert (out == (255 if fill == np.inf else 0)).all()
    assert intensity_range(np.full((4, 4), np.nan)) == (0.0, 0.0)


def test_sparse_bright_objects_are_not_lost():
    """Percentiles that coincide (few bright pixels on a flat background) fall back to min..max."""
    plane = np.zeros((100, 100), dtype=np.uint16)
    plane[10:13, 10:13] = 1000  # 0.09 % of the pixels: both percentiles are 0
    out = to_rgb(plane)
    assert out[11, 11, 0] == 255 and out[50, 50, 0] == 0


def test_bool_and_single_channel_planes():
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:5, 3:9] = True
    out = to_rgb(mask)
    _check_rgb(out, mask.shape)
    assert set(np.unique(out)) == {0, 255}
    np.testing.assert_array_equal(to_rgb(_ramp(np.uint16)[..., None]), to_rgb(_ramp(np.uint16)))


def test_uint8_rgb_passes_through_and_to_rgb_is_idempotent():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb(rgb), rgb)
    gray = to_rgb(_ramp(np.uint16))
    np.testing.assert_array_equal(to_rgb(gray), gray)
    rgba = np.concatenate([rgb, np.full((30, 40, 1), 17, np.uint8)], axis=-1)
    np.testing.assert_array_equal(to_rgb(rgba), rgb)
    out = to_rgb(rgb[:, ::-1])  # non-contiguous view
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb[:, ::-1])


def test_non_uint8_colour_shares_one_stretch():
    rgb = np.stack([_ramp(np.uint16), _ramp(np.uint16) * 2, np.zeros((40, 60), np.uint16)], -1)
    out = to_rgb(rgb)
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8
    assert out[..., 1].max() == 255 and out[..., 0].max() < 200 and out[..., 2].max() == 0


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((10, 10, 5)), "got 10 planes"),
        (np.zeros(10), "at least 2 dimensions"),
        (np.zeros((2, 3, 10, 10)), "got 6 planes"),
        (np.zeros((10, 10), dtype=complex), "complex"),
        (np.array([["a", "b"], ["c", "d"]]), "dtype"),
        (np.zeros((0, 10)), "empty"),
    ],
)
def test_unsupported_input_is_a_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        to_rgb(bad)


def test_normalization_key_and_validation():
    assert Normalization() == DEFAULT_NORMALIZATION
    assert Normalization().key() == Normalization(0.5, 99.5).key()
    keys = {Normalization().key(), Normalization(1, 99).key(), Normalization(0, 100).key()}
    assert len(keys) == 3
    assert Normalization(2, 98).to_dict() == {"low": 2, "high": 98, "method": "percentile"}
    for low, high in [(50, 50), (-1, 99), (10, 101), (90, 10)]:
        with pytest.raises(ValueError):
            Normalization(low, high)
    plane = _ramp(np.float64)
    assert not np.array_equal(to_rgb(plane, Normalization(0, 100)),
                              to_rgb(plane, Normalization(20, 80)))


def test_is_rgb():
    assert is_rgb(np.zeros((4, 4, 3))) and is_rgb(np.zeros((4, 4, 4)))
    assert not is_rgb(np.zeros((4, 4))) and not is_rgb(np.zeros((4, 4, 2)))


def _dim_blobs(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:64, 0:80]
    plane = rng.normal(8, 1, (64, 80))
    for r, c in ((20, 20), (40, 55)):
        plane += 30 * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / 40)
    return np.clip(plane, 0, 255).astype(np.uint8)


def test_a_stain_carried_in_one_rgb_channel_is_stretched_like_grayscale():
    from napari_devosam.engine.image import encoded_gray, to_rgb

    gray = _dim_blobs()
    green = np.zeros((*gray.shape, 3), np.uint8)
    green[..., 1] = gray
    green[..., 0] = np.random.default_rng(1).integers(0, 2, gray.shape)  # a noisy dark channel
    np.testing.assert_array_equal(encoded_gray(green), gray.astype(np.float32))
    out = to_rgb(green)
    np.testing.assert_array_equal(out, to_rgb(gray))
    assert out.max() == 255 and gray.max() < 60  # the dim frame reaches SAM with full contrast


def test_gray_stored_as_three_equal_channels_is_grayscale():
    from napari_devosam.engine.image import encoded_gray, to_rgb

    gray = _dim_blobs(2)
    rgba = np.dstack([gray, gray, gray, np.full_like(gray, 255)])
    assert encoded_gray(rgba[..., :3]) is not None
    np.testing.assert_array_equal(to_rgb(rgba), to_rgb(gray))


def test_true_colour_uint8_passes_through():
    from napari_devosam.engine.image import encoded_gray, to_rgb

    colour = np.random.default_rng(3).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    assert encoded_gray(colour) is None
    np.testing.assert_array_equal(to_rgb(colour), colour)
