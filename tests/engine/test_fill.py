"""The constant fill of padded or rotated planes (``engine.fill``): found on padding on any
side and with any value, and on rotation; not on a background clipped at 0; SAM's input
keeps the data's contrast."""

import numpy as np
import pytest
from scipy import ndimage

from napari_devosam.engine.fill import fill_mask, without_fill


def _offset_nuclei(seed: int) -> np.ndarray:
    """A 16-bit plane like the CTC HeLa movie: nuclei 2,000 levels above a 33,000 offset."""
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[:240, :320]
    img = np.full(rr.shape, 33_000.0)
    for r, c in rng.uniform([30, 30], [210, 290], size=(12, 2)):
        img[(rr - r) ** 2 + (cc - c) ** 2 <= 12 ** 2] += 2_000
    img = ndimage.gaussian_filter(img, 1.5) + rng.normal(0, 20, img.shape)
    return np.round(img).astype(np.uint16)


def test_padding_and_rotation_fill_is_found_and_takes_the_edge_value():
    plane = _offset_nuclei(10_000_710)
    padded = np.pad(plane, 40, constant_values=0)
    fill = fill_mask(padded)
    assert fill is not None and fill[:40].all() and not fill[40:-40, 40:-40].any()
    cleaned = without_fill(padded.astype(np.float32))
    assert abs(float(np.median(cleaned[:40])) - 33_000) < 100
    for angle in (10, 30, 45):
        rotated = ndimage.rotate(plane.astype(float), angle, reshape=True, order=1, cval=0)
        assert fill_mask(rotated) is not None, angle


@pytest.mark.parametrize("how", ["one side", "the mean", "the maximum"])
def test_any_constant_padding_is_fill(how):
    plane = _offset_nuclei(10_000_714)
    if how == "one side":
        padded = np.pad(plane, ((0, 0), (40, 0)), constant_values=0)
    else:
        value = int(plane.mean()) if how == "the mean" else 65_535
        padded = np.pad(plane, 60, constant_values=value)
    fill = fill_mask(padded)
    assert fill is not None and not fill[60:-60, 60:-60].any()


def test_sam_sees_the_data_not_the_fill():
    from napari_devosam.engine.image import plane_rgb, to_rgb

    plane = _offset_nuclei(10_000_715)
    alone = to_rgb(plane)[..., 0]
    padded = plane_rgb(np.pad(plane, 60, constant_values=0))[..., 0][60:-60, 60:-60]
    squeezed = to_rgb(np.pad(plane, 60, constant_values=0))[..., 0][60:-60, 60:-60]
    assert np.ptp(squeezed) < 0.2 * np.ptp(alone)  # what the fill did to the stretch
    assert np.abs(padded.astype(int) - alone.astype(int)).mean() < 3


@pytest.mark.parametrize("kind", ["plain", "clipped background"])
def test_no_fill_where_there_is_none(kind):
    rng = np.random.default_rng(10_000_711)
    if kind == "plain":
        plane = _offset_nuclei(10_000_712)
    else:  # 8-bit, background clipped at 0 in blocks, a bright embryo in the middle
        blocks = np.clip(rng.normal(0, 2, (30, 40)), 0, None).round()
        plane = np.kron(blocks, np.ones((8, 8)))
        rr, cc = np.mgrid[:240, :320]
        plane[((rr - 120) / 80) ** 2 + ((cc - 160) / 110) ** 2 <= 1] += 60
    assert fill_mask(plane) is None
    assert without_fill(plane) is plane
