import numpy as np
import pytest
from scipy import ndimage

from napari_devosam.synthetic.phantoms import make_embryo, make_timelapse

FOUR = ndimage.generate_binary_structure(2, 1)


def _assert_ids_connected(labels, n):
    assert labels.dtype == np.int32
    assert set(np.unique(labels)) == set(range(n + 1))
    for i in range(1, n + 1):
        assert ndimage.label(labels == i, structure=FOUR)[1] == 1, f"id {i} is fragmented"


@pytest.mark.parametrize("kind", ["membrane", "nuclei"])
def test_embryo_ids_dtype_and_connectedness(kind):
    image, labels = make_embryo((160, 200), n_cells=10, seed=3, kind=kind)
    assert image.shape == labels.shape == (160, 200)
    assert image.dtype == np.uint16
    _assert_ids_connected(labels, 10)
    assert labels[0, 0] == 0 and labels[-1, -1] == 0  # corners are outside the embryo


def test_embryo_is_deterministic_per_seed():
    a = make_embryo(seed=5)
    b = make_embryo(seed=5)
    c = make_embryo(seed=6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_membrane_intensities_look_like_16bit_microscopy():
    image, labels = make_embryo((256, 256), n_cells=8, seed=1)
    background = np.median(image[labels == 0])
    # pixels on a boundary between two cells
    edges = ndimage.morphological_gradient(labels, size=3) > 0
    inner = (labels > 0) & ~ndimage.binary_dilation(edges, iterations=4)
    membrane = np.percentile(image[edges & (labels > 0)], 75)
    cytoplasm = np.median(image[inner])
    assert 100 < background < 350
    assert cytoplasm > background + 150
    assert membrane > 2 * cytoplasm
    assert 2500 < membrane < 9000
    assert image.max() > 15000  # a few hot pixels


def test_nuclei_are_bright_inside_labels():
    image, labels = make_embryo((200, 200), n_cells=6, seed=2, kind="nuclei")
    assert np.median(image[labels > 0]) > 3 * np.median(image[labels == 0])


def test_other_dtypes():
    img8, _ = make_embryo((64, 64), n_cells=3, dtype=np.uint8)
    imgf, _ = make_embryo((64, 64), n_cells=3, dtype=np.float32)
    assert img8.dtype == np.uint8 and img8.max() > 100
    assert imgf.dtype == np.float32


def test_timelapse_divides_and_drifts():
    stack, labels = make_timelapse(4, (192, 256), n_cells=4, seed=0)
    assert stack.shape == labels.shape == (4, 192, 256)
    assert stack.dtype == np.uint16 and labels.dtype == np.int32
    counts = [int(lab.max()) for lab in labels]
    assert counts[0] == 4
    assert all(b >= a for a, b in zip(counts, counts[1:], strict=False))
    assert counts[-1] >= 2 * counts[0]
    for lab in labels:
        _assert_ids_connected(lab, int(lab.max()))
    centroids = [np.argwhere(lab > 0).mean(axis=0) for lab in labels]
    assert 0 < np.hypot(*(centroids[-1] - centroids[0])) < 15


@pytest.mark.parametrize("bad", [dict(shape=(8, 8)), dict(n_cells=0), dict(kind="dapi")])
def test_bad_arguments(bad):
    with pytest.raises(ValueError):
        make_embryo(**bad)
