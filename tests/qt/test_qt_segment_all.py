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
    worker = panel.run(all_planes=True)
    bar = worker.pbar  # napari's activity dock: "2/2", not "0it" or an overflow
    finish(qtbot, panel)
    assert panel.progress.value() == 2
    assert (bar.n, bar.total) == (2, 2)
    assert w.state.current_labels[1].any() and w.state.current_labels[0].any()
    assert "proposals" in panel.message.text()
    assert panel.commit_all() == 2
    assert panel.message.text().startswith("committed the proposals of 2 planes")
    w.wait_for_store()
    qtbot.waitUntil(lambda: not w.jobs.busy, timeout=TIMEOUT)
    assert len(w.store.objects) == 2 * int(truth[0].max())


def test_the_second_round_box_reaches_segment_all(qtbot, annotator, monkeypatch):
    import napari_devosam.automatic.core as core

    viewer, w, truth = annotator
    panel = w.segment_all_panel
    seen = []
    real = core.segment_all

    def spy(source, model, **kw):
        seen.append(kw["second_round"])
        return real(source, model, **kw)

    monkeypatch.setattr(core, "segment_all", spy)
    assert panel.second_check.isChecked() and panel.second_check.isEnabled()
    panel.stain_combo.setCurrentText("membrane")  # no nuclei to look again for (trial 17)
    assert not panel.second_check.isEnabled()
    panel.stain_combo.setCurrentText("auto")
    assert panel.second_check.isEnabled()
    panel.second_check.setChecked(False)
    panel.run(all_planes=False)
    finish(qtbot, panel)
    assert seen == [False]


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


def test_box_on_plane_with_proposals_adds_an_object(qtbot, annotator, monkeypatch):
    """A box drawn on a cell the automatic run missed adds its object to the proposals (on
    top, a new label); Ctrl+Z removes it again, the proposals stay; Commit stores them all."""
    import napari_devosam._qt.annotator_prompts as prompts_module
    from napari_devosam.engine.coords import mask_within_box

    told = []
    monkeypatch.setattr(prompts_module, "show_info", told.append)
    viewer, w, truth = annotator
    panel = w.segment_all_panel
    qtbot.waitUntil(lambda: w.state.ready_plane == (0,), timeout=TIMEOUT)
    panel.run(all_planes=False)
    finish(qtbot, panel)
    n = int(truth[0].max())
    # make cell 1 a "missed" cell: remove its proposal
    ys, xs = np.nonzero(truth[0] == 1)
    panel.remove_button.setChecked(True)
    click(w.layers.current, ys.mean(), xs.mean())
    panel.remove_button.setChecked(False)
    proposals = w.state.current_labels[0].copy()
    assert set(np.unique(proposals)) - {0} == set(range(1, n))
    assert not (proposals[truth[0] == 1]).any()

    box = (ys.min() - 2.0, xs.min() - 2.0, ys.max() + 2.0, xs.max() + 2.0)
    boxes = viewer.layers["boxes"]
    rect = np.array([[0, box[0], box[1]], [0, box[0], box[3]], [0, box[2], box[3]],
                     [0, box[2], box[1]]])
    boxes.add_rectangles([rect])
    cur = w.state.current_labels[0]
    masks, scores, _ = w.predictor.predict(box=np.array(box), multimask=True)
    added = mask_within_box(np.array(masks, bool), box)[int(np.argmax(scores))]
    assert added.any()
    # the proposals keep their labels; the new object (label n) is on top of them
    np.testing.assert_array_equal(cur == n, added)
    np.testing.assert_array_equal(np.where(added, 0, cur), np.where(added, 0, proposals))
    assert len(w.state.result((0,)).masks) == n
    np.testing.assert_array_equal(viewer.layers["current object"].data[0], cur)
    assert told and f"added to the {n - 1} proposals" in told[-1]
    # SAM's next candidate replaces the new object only
    w.next_candidate()
    r = w.state.result((0,))
    nxt = mask_within_box(np.array(masks, bool), box)[r.candidate_index]
    assert len(r.masks) == n and r.candidate_index != int(np.argmax(scores))
    np.testing.assert_array_equal(cur == n, nxt)
    np.testing.assert_array_equal(np.where(nxt, 0, cur), np.where(nxt, 0, proposals))
    w.next_candidate()
    w.next_candidate()  # back to the best candidate

    # Ctrl+Z on the boxes layer removes the box and its object; the proposals stay
    viewer.layers.selection.active = boxes
    viewer.window._qt_viewer._key_map_handler.press_key("Control-z")
    np.testing.assert_array_equal(w.state.current_labels[0], proposals)
    assert len(boxes.data) == 0 and w.state.prompts[(0,)].empty
    assert f"{n - 1} proposals kept" in told[-1]
    qtbot.wait(100)
    assert not w.jobs.busy and not w.store.objects  # the store was not asked to undo

    # Escape, too, takes the box and its object back first, and the proposals stay
    boxes.add_rectangles([rect])
    assert len(w.state.result((0,)).masks) == n
    w.clear_prompts()
    np.testing.assert_array_equal(w.state.current_labels[0], proposals)
    assert len(boxes.data) == 0

    # drawn again, then committed: every proposal and the new object are stored
    boxes.add_rectangles([rect])
    assert len(w.state.result((0,)).masks) == n
    w.commit()
    w.wait_for_store()
    qtbot.waitUntil(lambda: not w.jobs.busy, timeout=TIMEOUT)
    assert len(w.store.objects) == n and len(boxes.data) == 0
    assert not w.state.current_labels[0].any()
    np.testing.assert_array_equal(w.store.labels[0] > 0, (proposals > 0) | added)


@pytest.fixture
def said(monkeypatch):
    """The panel's warning notifications, in order."""
    import napari_devosam._qt.segment_all_panel as panel_module

    out = []
    monkeypatch.setattr(panel_module, "show_warning", out.append)
    return out


def test_a_diameter_larger_than_the_plane_is_refused_before_any_work(qtbot, annotator, said):
    viewer, w, truth = annotator
    panel = w.segment_all_panel
    panel.diameter_spin.setValue(500)  # the plane is 96 x 128
    panel.run(all_planes=False)
    assert not panel.busy and panel.worker is None
    assert "larger than the plane (96 x 128 pixels)" in panel.message.text()
    assert said and "larger than the plane" in said[0]


def test_grid_mode_with_a_bundled_size_model_says_it_finds_little(qtbot, annotator, said):
    viewer, w, truth = annotator
    panel = w.segment_all_panel
    panel.mode_combo.setCurrentText("grid")
    panel.run(all_planes=False)
    finish(qtbot, panel)
    assert any("use seeded mode" in s for s in said)
    said.clear()
    panel.mode_combo.setCurrentText("seeded")
    panel.run(all_planes=False)
    finish(qtbot, panel)
    assert not any("use seeded mode" in s for s in said)
