"""An intensity image given as labels is refused (``io.labels``); new-user trial 20 gave a
movie itself as ``devosam track --seed-labels`` and got 214 tracks without a word."""

from __future__ import annotations

import numpy as np
import pytest

from napari_devosam.io.labels import check_label_plane
from napari_devosam.synthetic.phantoms import make_embryo


def test_an_intensity_image_is_refused_and_labels_pass():
    image, labels = make_embryo(n_cells=20, seed=0)[:2]
    check_label_plane(labels)  # a label image of many cells
    grey = np.asarray(image)
    grey = (grey if grey.ndim == 2 else grey[..., 0]).astype(np.int64)
    with pytest.raises(ValueError, match="the seed labels look like an intensity image"):
        check_label_plane(grey, "the seed labels")
    fragmented = labels.copy()
    fragmented[fragmented.shape[0] // 2, :] = 0  # cells cut by a line: still labels
    check_label_plane(fragmented)
    check_label_plane(np.arange(25).reshape(5, 5) % 3)  # too few values to judge


def test_track_and_export_refuse_an_intensity_image_as_labels(tmp_path):
    from napari_devosam.export.bundle import export_bundle
    from napari_devosam.tracking.request import seeds_from_labels
    from napari_devosam.utils.progress import drain

    image, labels = make_embryo(n_cells=20, seed=1)[:2]
    grey = np.asarray(image)
    grey = (grey if grey.ndim == 2 else grey[..., 0]).astype(np.uint16)
    stack = np.stack([grey, grey])
    with pytest.raises(ValueError, match="look like an intensity image"):
        seeds_from_labels(stack, stack.shape, (0,))
    with pytest.raises(ValueError, match="look like an intensity image"):
        drain(export_bundle(tmp_path / "b", stack, stack, source="x.tif"))
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    assert len(seeds_from_labels(labels, (2, *labels.shape), (0,))) == len(np.unique(labels)) - 1
