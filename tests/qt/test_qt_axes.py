"""The annotator reads channel axes by the same rule as the API and the CLI."""

import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

import segment_anything  # noqa: E402, F401 - before any viewer: see napari_devosam._qt

from napari_devosam._qt.annotator_widget import AnnotatorWidget  # noqa: E402
from napari_devosam.testing import tiny_sam  # noqa: E402


@pytest.mark.parametrize("channels", [1, 2])
def test_channel_axis_layer_is_annotated_as_gray_planes(make_napari_viewer, qtbot, tmp_path,
                                                        channels):
    rng = np.random.default_rng(1)
    gray = (rng.random((48, 64)) * 200).astype(np.uint8)
    data = np.stack([gray] + [np.full_like(gray, 255)] * (channels - 1), axis=-1)
    viewer = make_napari_viewer()
    viewer.add_image(data, name="png", rgb=False)
    widget = AnnotatorWidget(viewer, sam=tiny_sam(), project_dir=tmp_path)
    viewer.window.add_dock_widget(widget, name="SAM annotator")
    qtbot.waitUntil(lambda: widget.store is not None, timeout=20_000)
    assert widget.image_layer.name == "png (gray)"
    np.testing.assert_array_equal(np.asarray(widget.image_layer.data), gray)
    assert widget.layers.objects.data.shape == gray.shape
    assert not viewer.layers["png"].visible
