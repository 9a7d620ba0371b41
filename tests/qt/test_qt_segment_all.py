"""The annotator's "Segment all" panel in a headless napari viewer, with a tiny random SAM
whose decoder is replaced by an oracle (true masks per prompt), so that proposals are exact.

Run under a display: ``xvfb-run -a python -m pytest tests/qt/test_qt_segment_all.py``.
"""

import numpy as np
import pytest
import torch

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

import segment_anything  # noqa: E402, F401 - before any viewer: see napari_devosam._qt

import napari_devosam.automatic.decoding as decoding  # noqa: E402
from napari_devosam._qt.annotator_widget import AnnotatorWidget  # noqa: E402
from napari_devosam.synthetic.phantoms import make_timelapse  # noqa: E402
from napari_devosam.testing import tiny_sam  # noqa: E402

TIMEOUT = 30_000


class Oracle:
    def __init__(self, truth):
        self.truth, self.threshold = truth, 0.0
        self.valid = self.plane_shape = truth.shape[-2:]

    def decode(self, points_rc=None, boxes_rc=None, multimask=False):
        pts = np.round(np.asarray(points_rc)[:, 0]).astype(int)
        ids = self.truth[pts[:, 0], pts[:, 1]]
        low = np.where((self.truth[None] == ids[:, None, None]) & (ids[:, None, None] > 0), 4., -4.)
        c = 3 if multimask else 1
        low = torch.as_tensor(low, dtype=torch.float32)[:, None].expand(-1, c, -1, -1)
        return low.contiguous(), torch.full((len(pts), c), 0.9)

    def upscale(self, low_res):
        return low_res


@pytest.fixture(scope="module")
def data():
    return make_timelapse(n_timepoints=2, shape=(96, 128), n_cells=4, seed=10_000_700,
                          division_fraction=0.0)


@pytest.fixture
def annotator(make_napari_viewer, qtbot, data, monkeypatch):
    stack, truth = data
    # the same cells on both planes (no division): one oracle serves both
    monkeypatch.setattr(decoding, "PromptDecoder", lambda sam, emb: Oracle(truth[0]))
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="embryo")
    viewer.dims.set_current_step(0, 0)
    widget = AnnotatorWidget(viewer, sam=tiny_sam())
    viewer.window.add_dock_widget(widget, name="SAM annotator")
    qtbot.waitUntil(lambda: widget.store is not None, timeout=TIMEOUT)
    widget.predictor.zoom = False  # the oracle answers in whole-plane coordinates only
    return viewer, widget, truth


def finish(qtbot, panel):
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)


def click(layer, row, col, plane=0):
    from types import SimpleNamespace

    event = SimpleNamespace(position=(plane, row, col), button=1)
    for cb in list(layer.mouse_drag_callbacks):
        cb(layer, event)


def test_segment_plane_remove_one_then_commit(qtbot, annotator):
    viewer, w, truth = annotator
    panel = w.segment_all_panel
    assert panel.run(all_planes=False) is not None
    finish(qtbot, panel)
    cur = w.state.current_labels[0]
    n = int(truth[0].max())
    assert len(np.unique(cur)) - 1 == n
    assert not w.store.labels.any()  # nothing committed yet
    # remove the proposal under one cell's centre
    ys, xs = np.nonzero(truth[0] == 1)
    panel.remove_button.setChecked(True)
    click(w.layers.current, ys.mean(), xs.mean())
    assert len(np.unique(w.state.current_labels[0])) - 1 == n - 1
    w.commit()
    w.wait_for_store()
    qtbot.waitUntil(lambda: not w.jobs.busy, timeout=TIMEOUT)
    assert len(w.store.objects) == n - 1 and not w.state.current_labels[0].any()
    # segmenting again never proposes committed pixels
    committed = w.store.labels[0].copy()
    panel.run(all_planes=False)
    finish(qtbot, panel)
    again = w.state.current_labels[0]
    assert not (again.astype(bool) & (committed > 0)).any()
    assert len(np.unique(again)) - 1 == 1  # only the removed cell comes back
    np.testing.assert_array_equal(w.store.labels[0], committed)


def test_all_planes_then_commit_all(qtbot, annotator):
    viewer, w, truth = annotator
    panel = w.segment_all_panel
    panel.run(all_planes=True)
    finish(qtbot, panel)
    assert panel.progress.value() == 2
    assert w.state.current_labels[1].any() and w.state.current_labels[0].any()
    assert panel.commit_all() == 2
    w.wait_for_store()
    qtbot.waitUntil(lambda: not w.jobs.busy, timeout=TIMEOUT)
    assert len(w.store.objects) == 2 * int(truth[0].max())


def test_cancel_changes_nothing(qtbot, annotator, monkeypatch):
    import threading

    import napari_devosam.automatic.core as core

    viewer, w, truth = annotator
    gate = threading.Event()
    real = core.segment_all

    def slow(*a, **k):
        gate.wait(10)
        return real(*a, **k)

    monkeypatch.setattr(core, "segment_all", slow)
    panel = w.segment_all_panel
    panel.run(all_planes=True)
    panel.cancel()
    gate.set()
    finish(qtbot, panel)
    qtbot.wait(200)
    assert not w.state.current_labels.any() and not w.store.labels.any()
    assert "cancelled" in panel.message.text()
