"""A new user's first minute: the sample, the bundled model, boxes, commit: the committed
objects match the sample's ground truth."""

import numpy as np
import pytest

from napari_devosam.models.registry import recommended_bundled

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

import segment_anything  # noqa: E402, F401 - before any viewer: see napari_devosam._qt

from napari_devosam._qt.annotator_widget import AnnotatorWidget  # noqa: E402
from napari_devosam.sample_data import SAMPLE_SEED, SAMPLE_SHAPE, embryo_timelapse  # noqa: E402
from napari_devosam.synthetic.phantoms import make_timelapse  # noqa: E402

IOU_FLOOR = 0.8


def test_boxes_on_the_sample_commit_its_cells(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    for data, kwargs, _ in embryo_timelapse():
        viewer.add_image(data, **kwargs)
    viewer.dims.set_current_step(0, 0)
    _, truth = make_timelapse(n_timepoints=SAMPLE_SHAPE[0], shape=SAMPLE_SHAPE[1:], n_cells=4,
                              seed=SAMPLE_SEED)
    widget = AnnotatorWidget(viewer, project_dir=tmp_path, autoload=False)
    viewer.window.add_dock_widget(widget, name="SAM annotator")
    # nothing cached: the recommended bundled model (models.defaults)
    assert widget.model_panel.model_combo.currentText() == recommended_bundled()
    with qtbot.waitSignal(widget.model_changed, timeout=60_000):
        widget.model_panel.load()
    qtbot.waitUntil(lambda: widget.state is not None and widget.state.ready_plane == (0,)
                    and widget.store is not None, timeout=60_000)
    ids = [i for i in np.unique(truth[0]) if i]
    boxes = []
    for i in ids:
        rr, cc = np.nonzero(truth[0] == i)
        boxes.append(np.array([[0, rr.min(), cc.min()], [0, rr.min(), cc.max()],
                               [0, rr.max(), cc.max()], [0, rr.max(), cc.min()]], float))
    widget.layers.boxes.add_rectangles(boxes)
    qtbot.waitUntil(lambda: widget.state.current_labels[0].max() == len(ids), timeout=30_000)
    widget.commit()
    qtbot.waitUntil(lambda: not widget.jobs.busy and widget.store.labels[0].any(),
                    timeout=30_000)
    committed = widget.store.labels[0]
    for i in ids:
        cell = truth[0] == i
        found = np.bincount(committed[cell].ravel()).argmax()
        assert found != 0
        obj = committed == found
        assert (obj & cell).sum() / (obj | cell).sum() >= IOU_FLOOR, i
