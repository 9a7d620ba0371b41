"""The annotator's Propagate panel in a headless napari viewer, with a tiny random SAM.

The random SAM's masks are noise, so the thresholds are opened wide and the tests check the
structure (ids, one undo step, layers, review list, cancel), not the quality.
Run under a display: ``xvfb-run -a python -m pytest tests/qt/test_qt_propagate.py``.
"""

import time

import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

import segment_anything  # noqa: E402, F401 - before any viewer: see napari_devosam._qt

import napari_devosam._qt.presentation as presentation  # noqa: E402
import napari_devosam._qt.propagate_export as export_module  # noqa: E402
import napari_devosam._qt.propagate_form as form_module  # noqa: E402
import napari_devosam._qt.propagate_panel as panel_module  # noqa: E402
from napari_devosam._qt.annotator_widget import AnnotatorWidget  # noqa: E402
from napari_devosam.engine.embeddings import EmbeddingCache  # noqa: E402
from napari_devosam.synthetic.lineage import make_lineage_timelapse  # noqa: E402
from napari_devosam.tracking.prefetch import PrefetchingEmbeddings  # noqa: E402
from napari_devosam.tracking.store_tracks import track_table  # noqa: E402

TIMEOUT = 60_000
# a random tiny SAM: no track may end, and only the seeds' tracks are followed (new tracks
# from automatic detection are tested in tests/tracking/test_new_tracks.py)
WIDE_OPEN = {"min_area": 1, "min_area_fraction": 0.0, "min_inside_fraction": 0.0,
             "min_iou_prev": 0.0, "min_pred_iou": 0.0, "review_below": 1.0,
             "max_growth": 0.0, "min_embryo_fraction": 0.0, "min_stained_fraction": 0.0,
             "new_tracks": False}


@pytest.fixture(scope="module")
def data():
    stack, labels, _ = make_lineage_timelapse(4, (96, 96), 3, seed=1)
    return stack, labels


@pytest.fixture
def messages(monkeypatch):
    said = []
    for module in (panel_module, form_module, export_module, presentation):
        for name in ("show_info", "show_warning", "show_error"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, said.append)
    return said


def open_annotator(make_napari_viewer, qtbot, image, sam):
    viewer = make_napari_viewer()
    viewer.add_image(image, name="embryo")
    viewer.dims.set_current_step(0, 0)
    w = AnnotatorWidget(viewer, sam=sam)
    viewer.window.add_dock_widget(w, name="SAM annotator")
    qtbot.waitUntil(lambda: w.store is not None and not w.jobs.busy, timeout=TIMEOUT)
    return viewer, w


def commit_seeds(qtbot, w, labels, plane=(0,)):
    masks = [labels[plane] == t for t in np.unique(labels[plane])[1:]]
    w.store_ops.commit(plane, masks, None, {})
    qtbot.waitUntil(lambda: len(w.store.objects) == len(masks) and not w.jobs.busy,
                    timeout=TIMEOUT)
    return sorted(w.store.objects)


def finish(qtbot, w):
    panel = w.propagate_panel
    qtbot.waitUntil(lambda: not panel.busy and not w.jobs.busy
                    and not panel._tracks_pending, timeout=TIMEOUT)


@pytest.fixture
def annotated(make_napari_viewer, qtbot, data, sam):
    stack, labels = data
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam)
    seeds = commit_seeds(qtbot, w, labels)
    panel = w.propagate_panel
    panel.form.set_values(WIDE_OPEN)
    panel.divisions_check.setChecked(False)
    return viewer, w, seeds


def test_propagate_one_undo_tracks_layer_and_review(qtbot, annotated):
    viewer, w, seeds = annotated
    panel = w.propagate_panel
    assert [panel.axis_combo.itemText(i) for i in range(panel.axis_combo.count())] == ["T"]
    assert (panel.first_spin.value(), panel.last_spin.value()) == (0, 3)
    before = w.store.labels.copy()
    assert panel.run()
    finish(qtbot, w)
    table = track_table(w.store.objects)
    later = {t: sorted(p for p in e["planes"] if p != (0,)) for t, e in table.items()}
    assert set(table) == set(seeds)  # every object belongs to a seed's track
    assert any(later[t] for t in seeds), "no object made on a later plane"
    for t, planes in later.items():  # the same track id on the planes it reached
        for p in planes:
            oid = table[t]["planes"][p]
            assert w.store.objects[oid]["track"] == t and (w.store.labels[p] == oid).any()
    # the tracks layer shows the centroids, one row per object of the line
    tracks = viewer.layers["tracks"]
    assert len(tracks.data) == len(w.store.objects) and set(tracks.data[:, 0]) == set(seeds)
    # review list (review_below=1: every object) and jumping to an entry
    assert sum(panel.review_list.counts().values()) == len(panel.entries) > 0
    row = next(i for i, e in enumerate(panel.entries)
               if e.plane != (0,) and e.kind == "low confidence")
    entry = panel.entries[row]
    panel.review_list.itemClicked.emit(panel.review_list.item_of(row), 0)
    assert viewer.dims.current_step[0] == entry.plane[0]
    assert w.current_plane == entry.plane
    assert panel.selected == viewer.layers["objects"].selected_label
    assert w.store.objects[panel.selected]["track"] == entry.track
    # one undo removes the whole run; the tracks layer and the review list follow
    w.undo()
    finish(qtbot, w)
    assert np.array_equal(w.store.labels, before)
    assert sorted(w.store.objects) == seeds
    assert len(viewer.layers["tracks"].data) == len(seeds)
    qtbot.waitUntil(lambda: not panel.lineage.pending, timeout=TIMEOUT)
    assert panel.entries == []


def test_propagate_from_here_replaces_the_track_downstream(qtbot, annotated):
    viewer, w, seeds = annotated
    panel = w.propagate_panel
    panel.run()
    finish(qtbot, w)
    table = track_table(w.store.objects)
    track = next(t for t in seeds if (1,) in table[t]["planes"] and len(table[t]["planes"]) > 2)
    old = {p: o for p, o in table[track]["planes"].items() if p[0] > 1}
    after_run = w.store.labels.copy()
    viewer.dims.set_current_step(0, 1)
    assert not panel.propagate_from_here()  # nothing selected yet
    panel._set_selected(table[track]["planes"][(1,)])  # as a click on it would
    panel.direction_combo.setCurrentText("forward")
    assert panel.propagate_from_here()
    finish(qtbot, w)
    new = track_table(w.store.objects)[track]["planes"]
    assert (0,) in new and (1,) in new
    assert all(new.get(p) != o for p, o in old.items())  # replaced (or ended), not kept
    w.undo()
    finish(qtbot, w)
    assert np.array_equal(w.store.labels, after_run)


def test_export_writes_the_corrected_tracks_as_they_are(qtbot, annotated, tmp_path,
                                                        messages):
    import tifffile

    viewer, w, seeds = annotated
    panel = w.propagate_panel
    panel.run()
    finish(qtbot, w)
    # a correction on plane 2: one object deleted (as the user would with the eraser)
    table = track_table(w.store.objects)
    track = next(t for t in seeds if (2,) in table[t]["planes"])
    w.store_ops.delete(table[track]["planes"][(2,)])
    qtbot.waitUntil(lambda: not w.jobs.busy, timeout=TIMEOUT)
    viewer.dims.set_current_step(0, 1)
    assert panel.export_tracks(tmp_path / "ctc")
    qtbot.waitUntil(lambda: panel.export_button.isEnabled(), timeout=TIMEOUT)
    assert any("Wrote" in str(m) for m in messages), messages
    frames = sorted((tmp_path / "ctc").glob("mask*.tif"))
    assert len(frames) == 4 and (tmp_path / "ctc" / "res_track.txt").is_file()
    assert (tmp_path / "ctc" / "tracks.csv").is_file()
    written = tifffile.imread(frames[2])
    expected = w.store.labels[2] > 0
    assert np.array_equal(written > 0, expected)  # exactly the store's plane 2, deleted one gone
    rows = [line.split() for line in (tmp_path / "ctc" / "res_track.txt").read_text().splitlines()]
    assert all(int(b) <= int(e) for _, b, e, _ in rows)
    assert len(rows) == len(np.unique(np.concatenate([np.unique(tifffile.imread(f))
                                                      for f in frames]))) - 1


def test_cancel_leaves_the_store_unchanged(qtbot, annotated, monkeypatch):
    viewer, w, seeds = annotated
    panel = w.propagate_panel
    slow = PrefetchingEmbeddings._compute

    def compute(self, plane):
        time.sleep(0.5)
        return slow(self, plane)

    monkeypatch.setattr(PrefetchingEmbeddings, "_compute", compute)
    before, objects = w.store.labels.copy(), w.store.objects
    assert panel.run()
    panel.cancel()  # while the store thread reads the seeds
    finish(qtbot, w)
    assert panel.run()
    qtbot.waitUntil(lambda: panel.progress.value() >= 1, timeout=TIMEOUT)
    panel.cancel()  # between planes
    finish(qtbot, w)
    assert "cancelled" in panel.message.text()
    assert np.array_equal(w.store.labels, before) and w.store.objects == objects
    assert not w.store.can_redo and panel.entries == []


def test_the_run_says_its_stain_and_warns_of_a_wrong_one(qtbot, annotated, messages):
    """The finished run's message names the stain used and why; a stain chosen in the Stain
    box that the movie does not read as (the phantom draws nuclei) is also a warning."""
    viewer, w, seeds = annotated
    panel = w.propagate_panel
    assert panel.run()
    finish(qtbot, w)
    assert "stain: nuclei (decided for the whole stack" in panel.message.text()
    assert "the stain box to override" in panel.message.text() and not messages
    w.undo()
    finish(qtbot, w)
    panel.form.set_values({"stain": "membrane"})
    assert panel.run()
    finish(qtbot, w)
    note = ("stain: membrane (given with the stain box, but the stack reads as nuclei: all 4 "
            "planes: 4 nuclei; check the stain box)")
    assert panel.message.text().endswith(note)
    assert messages == [note]


def test_errors_are_notifications(qtbot, annotated, messages):
    viewer, w, seeds = annotated
    panel = w.propagate_panel
    viewer.dims.set_current_step(0, 2)  # a plane without objects
    assert panel.run()
    finish(qtbot, w)
    assert any("no committed objects" in str(m) for m in messages)
    panel.first_spin.setValue(3)
    panel.last_spin.setValue(1)
    assert not panel.run()
    assert "empty" in str(messages[-1])


def test_4d_offers_both_axes_and_refuses_a_length_one_axis(make_napari_viewer, qtbot, data,
                                                          sam, messages):
    stack, labels = data
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack[:3, None], sam)
    panel = w.propagate_panel
    assert [panel.axis_combo.itemText(i) for i in range(2)] == ["T", "Z"]
    panel.axis_combo.setCurrentIndex(1)
    assert not panel.divisions_check.isChecked()
    assert not panel.run()
    assert "length 1" in str(messages[-1])
    masks = [labels[0] == t for t in np.unique(labels[0])[1:]]
    w.store_ops.commit((0, 0), masks, None, {})
    panel.axis_combo.setCurrentIndex(0)
    panel.form.set_values(WIDE_OPEN)
    panel.divisions_check.setChecked(False)
    assert panel.run()
    finish(qtbot, w)
    assert any(tuple(r["plane"])[0] > 0 for r in w.store.objects.values())
    tracks = viewer.layers["tracks"]
    assert tracks.data.shape[1] == 5 and np.all(tracks.data[:, 2] == 0)  # (id, t, z, y, x)


def test_prefetch_encodes_the_next_plane_and_reuses_cached_ones(sam, data, tmp_path):
    stack, _ = data
    calls = []
    hook = sam.image_encoder.register_forward_hook(lambda m, i, o: calls.append(1))
    try:
        cache = EmbeddingCache(tmp_path, max_items=8)
        order = [(1,), (2,), (3,)]
        emb = PrefetchingEmbeddings(sam, stack, order, cache)
        first = emb((1,))
        deadline = time.time() + 30
        while len(calls) < 2 and time.time() < deadline:  # (2,) is encoded meanwhile
            time.sleep(0.05)
        assert emb.handled[:2] == [(1,), (2,)] and len(calls) == 2
        assert tuple(first.original_size) == stack.shape[1:]
        emb((2,))
        emb((3,))
        emb.close()
        assert len(calls) == 3
        again = PrefetchingEmbeddings(sam, stack, order, cache)
        for plane in order:
            again(plane)
        again.close()
        assert len(calls) == 3  # all three came from the cache
    finally:
        hook.remove()


def test_a_run_that_adds_nothing_says_why():
    from types import SimpleNamespace

    result = SimpleNamespace(ended={43: ((4,), "vanished"), 7: ((5,), "IoU with previous 0.12"),
                                    8: ((5,), "IoU with previous 0.05")})
    text = export_module.nothing_added(result)
    assert "2 IoU with previous, 1 vanished" in text and "never overwritten" in text
    assert "no track reached a plane" in export_module.nothing_added(SimpleNamespace(ended={}))


def test_a_run_that_adds_nothing_offers_no_undo(qtbot, annotated, messages):
    viewer, w, seeds = annotated
    panel = w.propagate_panel
    panel.form.set_values({**WIDE_OPEN, "min_area": 10**6})  # every track vanishes at once
    before = w.store.labels.copy()
    assert panel.run()
    finish(qtbot, w)
    assert sorted(w.store.objects) == seeds and np.array_equal(w.store.labels, before)
    assert "no Undo step" in panel.message.text()
    assert "Undo removes" not in panel.message.text()
    assert any("added no object" in str(m) for m in messages)


def test_the_estimate_sits_right_above_the_propagate_button(annotated):
    """A trial found it under Export/Lineage/Import, out of view once the review list filled."""
    _, w, _ = annotated
    panel = w.propagate_panel
    grid = panel.layout()

    def row_of(widget):
        return grid.getItemPosition(grid.indexOf(widget))[0]

    assert row_of(panel.range.label) == row_of(panel.run_button) - 1
    assert row_of(panel.range.label) < row_of(panel.review_list)


def _sized(w, key):
    """``key`` of the step times recorded for planes of ``w``'s image's size class."""
    from napari_devosam._qt.estimates import plane_shape
    from napari_devosam.utils.estimate import size_class

    return f"{key}|{size_class(plane_shape(w))}"


def test_the_estimate_names_propagation_and_a_run_records_its_time(qtbot, annotated):
    from napari_devosam.utils.estimate import record_seconds, recorded_seconds, step_key

    viewer, w, _ = annotated
    panel = w.propagate_panel
    qtbot.waitUntil(lambda: w.state.ready_plane == (0,), timeout=TIMEOUT)
    w._update_status()
    key = w.model_panel.loaded.key
    before = panel.range.label.text()
    assert "3 planes to track" in before and "3 planes to embed" in before
    assert "counts the encoder only" in before and "propagation" in before
    record_seconds(step_key("track", key), 30.0)
    w._update_status()
    recorded = panel.range.label.text()
    assert recorded.startswith("Propagate: about 1 min 3")  # 3 x 30 s + the encoder's work
    assert "embedding 3 planes at" in recorded and "propagation and new-cell detection 30 s " \
        "per plane, recorded on an earlier run here" in recorded
    said, shown = [], panel._on_progress

    def spy(p):
        shown(p)
        said.append(panel.message.text())

    panel._on_progress = spy  # connected when the run starts
    assert panel.run()
    finish(qtbot, w)
    assert any("left for" in line for line in said), said
    measured = recorded_seconds(step_key("track", _sized(w, key)))
    assert measured is not None and measured != 30.0  # this run's, for the next estimate
    after = panel.range.label.text()
    assert after != recorded and "no embedding: every plane is in the cache" in after


def test_the_estimate_grows_with_the_seeds_and_a_run_records_its_object_time(qtbot, annotated):
    """Issue 25: Propagate's label counts the committed objects of the plane shown x the
    planes x the recorded seconds per object-plane; a denser seed set gives a proportionally
    larger estimate, and a run records its own per-object time. Fails with a per-plane
    estimate (the label would not change with the seeds)."""
    import re

    from napari_devosam.utils.estimate import object_key, record_seconds, recorded_seconds

    viewer, w, seeds = annotated
    panel = w.propagate_panel
    qtbot.waitUntil(lambda: w.state.ready_plane == (0,), timeout=TIMEOUT)
    key = w.model_panel.loaded.key
    record_seconds("track|" + key, 1.0)  # a per-plane record beside it is not used
    record_seconds(object_key("track", key), 20.0)
    w._update_status()

    def total(text):  # seconds of "about 3 min 01 s"
        m = re.search(r"about (\d+) min (\d+) s", text)
        assert m, text
        return 60 * int(m[1]) + int(m[2])

    sparse = panel.range.label.text()
    assert f"propagation of {len(seeds)} objects at 20 s per object-plane, recorded" in sparse
    extra = np.zeros((3, 96, 96), bool)
    for i, (r, c) in enumerate([(2, 2), (2, 88), (88, 2)]):  # corners, off the cells
        extra[i, r:r + 6, c:c + 6] = True
    assert not np.asarray(w.store.labels[0])[extra.any(0)].any()
    w.store_ops.commit((0,), list(extra), None, {})
    qtbot.waitUntil(lambda: len(w.store.objects) == len(seeds) + 3 and not w.jobs.busy,
                    timeout=TIMEOUT)
    w._update_status()
    dense = panel.range.label.text()
    n = len(seeds) + 3
    assert f"propagation of {n} objects at 20 s per object-plane" in dense
    # 3 planes x n objects x 20 s, plus the same (sub-second) embedding
    assert total(dense) - total(sparse) == pytest.approx(3 * 3 * 20, abs=2)
    assert total(dense) / total(sparse) == pytest.approx(n / len(seeds), rel=0.02)
    assert panel.run()
    finish(qtbot, w)
    per_plane = recorded_seconds("track|" + _sized(w, key))
    per_object = recorded_seconds(object_key("track", _sized(w, key)))
    assert per_plane != 1.0 and per_object != 20.0  # this run's
    # no track ends (WIDE_OPEN): n objects on each plane visited
    assert per_object == pytest.approx(per_plane / n, rel=0.01, abs=2e-4)


def test_a_reopened_store_lists_its_review_events(make_napari_viewer, qtbot, sam):
    """A new-user trial: tracks imported with ``devosam import-tracks`` showed an empty review
    list when the image was opened; the store's own events (divisions, track ends) are now
    listed."""
    from napari_devosam.tracking.import_tracks import store_tracks_from_labels
    from napari_devosam.tracking.review_events import review_events

    stack, labels, parents = make_lineage_timelapse(5, (96, 96), 3, seed=3)
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack, sam)
    store = w.store
    w.jobs.submit(lambda: store_tracks_from_labels(store, labels, parents))
    qtbot.waitUntil(lambda: bool(store.objects) and not w.jobs.busy, timeout=TIMEOUT)
    expected = [e.text() for e in review_events(store, 0)]
    assert any("divides" in e for e in expected), expected
    viewer.close()
    _, again = open_annotator(make_napari_viewer, qtbot, stack, sam)
    panel = again.propagate_panel
    qtbot.waitUntil(lambda: len(panel.entries) == len(expected), timeout=TIMEOUT)
    assert sorted(e.text() for e in panel.entries) == sorted(expected)


def test_a_2d_image_says_it_has_no_axis_to_propagate_along(make_napari_viewer, qtbot, data,
                                                           sam):
    """The panel's message is the image's, not an earlier one's (a new-user trial: a 2D
    image kept the movie's "433 object(s) on 29 plane(s)" line)."""
    stack, _ = data
    viewer, w = open_annotator(make_napari_viewer, qtbot, stack[0], sam)
    panel = w.propagate_panel
    assert "no T or Z axis" in panel.message.text()
    assert panel.axis_combo.count() == 0
