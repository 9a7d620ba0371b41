"""Seeded automatic segmentation's views: which planes are decoded in zoomed views."""

import numpy as np
import pytest

import napari_devosam.engine.zoom as Z
from napari_devosam.automatic import segment_all
from napari_devosam.automatic.seed_types import Seeds
from napari_devosam.engine.predictor import Predictor
from napari_devosam.synthetic.phantoms import make_embryo
from napari_devosam.testing import tiny_sam

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def views(monkeypatch):
    """The windows each ``embed_views`` call was asked for (it still runs)."""
    calls = []
    original = Z.embed_views

    def spy(sam, plane, windows, *args, **kwargs):
        calls.extend(windows)
        return original(sam, plane, windows, *args, **kwargs)

    monkeypatch.setattr(Z, "embed_views", spy)
    return calls


def test_cells_at_the_trained_scale_are_decoded_on_the_whole_plane(views):
    """Views are for cells smaller than the models were trained on: on CTC CHO (nuclei ~64
    px in a 512 px plane) they cost encoder passes and gave grainy nuclei back in pieces."""
    img, _ = make_embryo((192, 256), 14, seed=10_000_101, kind="nuclei")
    pred = Predictor(tiny_sam(seed=5), cache_dir=None)
    assert pred.zoom
    assert pred.sam.image_encoder.img_size == 256  # a 256 px plane seen at its own size
    # 20 px: 20 input px, a view's job
    segment_all(img, pred, min_score=-np.inf, stain="nuclei", diameter=20)
    assert views
    views.clear()
    # 50 px: at the trained scale
    segment_all(img, pred, min_score=-np.inf, stain="nuclei", diameter=50)
    assert views == []


def test_added_seeds_keep_the_first_diameter():
    a = Seeds(np.zeros((1, 2)), np.full((1, 4), np.nan), ["nuclei"], 12.0, "estimated")
    b = Seeds(np.ones((2, 2)), np.full((2, 4), np.nan), ["neighbour"] * 2)
    assert ((a + b).diameter, (a + b).diameter_source) == (12.0, "estimated")
    assert (b + a).diameter == 12.0 and len(b + a) == 3
