"""The Lineage dock in a real napari viewer, on a phantom lineage of 14 tracks over 5 frames.

The phantom (``synthetic.lineage``) divides every two frames: tracks 1, 2 (frames 0-1) ->
four daughters (2-3) -> eight granddaughters (4). It is committed straight into the
annotator's store with its tracks and parents (no SAM: the tree, the edits and the jumps do
not need one). Run under a display:
``xvfb-run -a -s "-screen 0 1600x1000x24" python -m pytest tests/qt/test_qt_lineage.py``.
"""

import colorsys

import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

import segment_anything  # noqa: E402, F401 - before any viewer: see napari_devosam._qt
from qtpy.QtCore import QPoint, Qt  # noqa: E402

import napari_devosam._qt.lineage_dock as dock_module  # noqa: E402
from napari_devosam._qt.annotator_widget import AnnotatorWidget  # noqa: E402
from napari_devosam._qt.lineage_dock import node_center, open_lineage_dock  # noqa: E402
from napari_devosam.synthetic.lineage import make_lineage_timelapse  # noqa: E402
from napari_devosam.tracking.lineage import lineage  # noqa: E402

TIMEOUT = 30_000


@pytest.fixture(scope="module")
def phantom():
    return make_lineage_timelapse(5, (64, 64), 2, seed=0, division_fraction=0.9, min_cycle=2)


@pytest.fixture
def messages(monkeypatch):
    said = []
    for name in ("show_info", "show_warning", "show_error"):
        monkeypatch.setattr(dock_module, name, said.append)
    return said


def settle(qtbot, w):
    model = w.propagate_panel.lineage
    qtbot.waitUntil(lambda: not w.jobs.busy and not model.pending
                    and not w.propagate_panel._tracks_pending, timeout=TIMEOUT)


@pytest.fixture
def tree(make_napari_viewer, qtbot, phantom):
    """``(viewer, annotator, dock, {phantom track: store track})``."""
    stack, labels, parents = phantom
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="embryo")
    w = AnnotatorWidget(viewer, autoload=False)
    viewer.window.add_dock_widget(w, name="SAM annotator")
    qtbot.waitUntil(lambda: w.store is not None and not w.jobs.busy, timeout=TIMEOUT)
    commits = []  # negative tracks: the store gives each the id of its first object
    for t in range(len(labels)):
        for track in np.unique(labels[t])[1:].tolist():
            parent = parents.get(track)
            commits.append(((t,), labels[t] == track,
                            {"track": -track, "parent": None if parent is None else -parent}))
    w.store_ops._submit("phantom", lambda s: s.apply_batch([], commits))
    settle(qtbot, w)
    dock = open_lineage_dock(w)
    settle(qtbot, w)
    ids = {}
    for oid, rec in w.store.objects.items():
        ids.setdefault(int(labels[tuple(rec["plane"])][w.store.labels[tuple(rec["plane"])]
                                                       == oid][0]), rec["track"])
    return viewer, w, dock, ids


def snapshot(w):
    """The lineage and every object's track fields."""
    objects = {oid: (r.get("track"), r.get("parent"), r.get("ended"))
               for oid, r in w.store.objects.items()}
    return lineage(w.store), objects


def test_tree_draws_the_store_and_a_click_jumps_there(qtbot, tree):
    viewer, w, dock, ids = tree
    assert len(dock.layout_.tracks) == 14 == len(dock.data.info)
    assert len(dock.layout_.segments) == 14 + 12  # a line per track, a fork per daughter
    assert open_lineage_dock(w) is dock  # opened once
    # the annotator's dock keeps the window's height (its buttons stay above the fold)
    corner = viewer.window._qt_window.corner(Qt.Corner.BottomRightCorner)
    assert corner == Qt.DockWidgetArea.RightDockWidgetArea
    mother, daughter = ids[1], ids[3]
    x, y = node_center(dock, daughter, 3)
    qtbot.mouseClick(dock.canvas, Qt.MouseButton.LeftButton, pos=QPoint(x, y))
    assert viewer.dims.current_step[0] == 3
    oid = dock.data.object_at(daughter, 3)[1]
    assert viewer.layers["objects"].selected_label == oid == w.propagate_panel.selected
    assert dock.selected == [daughter]
    x, y = node_center(dock, mother, 0)
    qtbot.mouseClick(dock.canvas, Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.ShiftModifier, QPoint(x, y))
    assert dock.selected == [daughter, mother] and viewer.dims.current_step[0] == 0
    assert dock.buttons["join"].isEnabled()


def test_objects_and_tracks_are_coloured_by_track(qtbot, tree):
    viewer, w, dock, ids = tree
    colors = dock.data.colors
    objects = viewer.layers["objects"]
    for oid, rec in w.store.objects.items():  # every object has its track's colour
        assert np.allclose(objects.colormap.map(oid)[..., :3].ravel(), colors[rec["track"]],
                           atol=1 / 255)
    hue = {t: colorsys.rgb_to_hls(*c)[0] for t, c in colors.items()}
    roots = [ids[1], ids[2]]

    def gap(a, b):
        d = abs(hue[a] - hue[b]) % 1.0
        return min(d, 1 - d)

    assert gap(*roots) > 0.2  # unrelated tracks differ clearly
    for daughter in (ids[3], ids[4]):  # daughters stay near their mother's hue
        assert gap(daughter, ids[1]) < 0.1
    tracks = viewer.layers["tracks"]
    for track in (ids[1], ids[7]):
        rows = tracks.data[:, 0] == track
        assert np.allclose(tracks.track_colors[rows][:, :3], colors[track], atol=0.02)


EDIT_CASES = [
    ("clear_parent", lambda ids: [ids[3]]),
    ("set_parent", lambda ids: [ids[2], ids[7]]),  # 7 (a daughter of 3) becomes 2's third
    ("split", lambda ids: [ids[1]]),
    ("join", lambda ids: [ids[3], ids[8]]),  # refused: 3 divides into 7 and 8
    ("swap", lambda ids: [ids[3], ids[5]]),
    ("delete", lambda ids: [ids[3]]),
    ("delete_all", lambda ids: [ids[1]]),
]


@pytest.mark.parametrize("name, pick", EDIT_CASES, ids=[c[0] for c in EDIT_CASES])
def test_each_edit_undoes_and_redoes_from_the_dock(qtbot, tree, messages, name, pick):
    viewer, w, dock, ids = tree
    viewer.dims.set_current_step(0, 3 if name == "swap" else 1)
    tracks = pick(ids)
    dock.select(tracks)
    before, labels = snapshot(w), w.store.labels.copy()
    assert dock.edit(name)
    settle(qtbot, w)
    after = snapshot(w)
    if name in ("set_parent", "join"):  # refused by the core: one line, nothing changed
        assert after == before and np.array_equal(w.store.labels, labels)
        assert len(messages) == 1 and "\n" not in messages[0]
        return
    assert after != before and not messages
    assert dock.data.info == after[0]  # the dock followed the edit
    qtbot.keyClick(dock.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    settle(qtbot, w)
    assert snapshot(w) == before and np.array_equal(w.store.labels, labels)
    assert dock.data.info == before[0]
    w.redo()
    settle(qtbot, w)
    assert snapshot(w) == after


def test_a_valid_parent_and_join_by_keys(qtbot, tree):
    viewer, w, dock, ids = tree
    viewer.dims.set_current_step(0, 3)
    dock.select([ids[3]])
    qtbot.keyClick(dock.canvas, Qt.Key.Key_P, Qt.KeyboardModifier.ShiftModifier)  # no mother
    settle(qtbot, w)
    assert lineage(w.store)[ids[3]].parent is None
    dock.select([ids[1], ids[3]])
    qtbot.keyClick(dock.canvas, Qt.Key.Key_P)  # 1 is 3's mother again
    settle(qtbot, w)
    assert lineage(w.store)[ids[3]].parent == ids[1]
    dock.select([ids[3]])
    qtbot.keyClick(dock.canvas, Qt.Key.Key_S)  # split 3 at frame 3
    settle(qtbot, w)
    info = lineage(w.store)
    new = next(t for t, i in info.items() if i.first == 3 and i.parent is None)
    assert info[ids[3]].last == 2
    dock.select([ids[3], new])
    qtbot.keyClick(dock.canvas, Qt.Key.Key_J)  # and join the two pieces again
    settle(qtbot, w)
    info = lineage(w.store)
    assert new not in info and (info[ids[3]].first, info[ids[3]].last) == (2, 3)


def test_review_list_groups_events_worst_first_and_jumps(qtbot, tree):
    from napari_devosam.tracking.review_events import ReviewEvent

    viewer, w, dock, ids = tree
    panel = w.propagate_panel
    oid = dock.data.object_at(ids[5], 3)[1]
    events = [ReviewEvent("division", ids[1], 2, (2,), 0.8, f"track {ids[1]} divides"),
              ReviewEvent("low confidence", ids[5], 3, (3,), 0.3, "low confidence on frame 3"),
              ReviewEvent("division", ids[2], 2, (2,), 0.4, f"track {ids[2]} divides"),
              ReviewEvent("track end", ids[7], 4, (4,), 0.5, "track ends: lost")]
    panel.review_list.set_events(events)
    assert panel.review_list.counts() == {"division": 2, "track end": 1, "low confidence": 1}
    heads = [panel.review_list.topLevelItem(i).text(0)
             for i in range(panel.review_list.topLevelItemCount())]
    assert heads == ["division (2)", "track end (1)", "low confidence (1)"]
    assert [e.confidence for e in panel.entries[:2]] == [0.4, 0.8]  # worst first
    row = next(i for i, e in enumerate(panel.entries) if e.kind == "low confidence")
    panel.review_list.itemClicked.emit(panel.review_list.item_of(row), 0)
    assert viewer.dims.current_step[0] == 3
    assert viewer.layers["objects"].selected_label == oid == panel.selected
    # an edit that takes a track away drops its events (the store followed live)
    panel.review_list.set_events(events)
    w.store_ops._submit("nothing", lambda s: None)  # a store change that is no track edit
    settle(qtbot, w)
    assert panel.review_list.counts() == {"division": 2, "track end": 1, "low confidence": 1}


def test_review_list_follows_track_edits_undo_and_redo(qtbot, tree):
    """New-user trial 19: after *No mother* the list still showed the division, after *A is
    B's mother* the track end; now it is read again from the store after each edit."""
    from napari_devosam.tracking.review_events import ReviewEvent, review_events

    viewer, w, dock, ids = tree
    panel = w.propagate_panel
    blank = ReviewEvent("blank plane", 0, 4, (4,), float("nan"), "blank plane skipped")
    panel.review_list.set_events([blank])  # a run's plane event: kept through the edits

    def shown():
        return sorted(e.text() for e in panel.entries)

    def store_events():
        return sorted([blank.text()] + [e.text() for e in review_events(w.store, 0)])

    mother_divides = f"track {ids[1]} divides"
    viewer.dims.set_current_step(0, 2)
    dock.select([ids[3]])
    assert dock.edit("clear_parent")  # 3 loses its mother 1: 1 no longer divides
    settle(qtbot, w)
    qtbot.waitUntil(lambda: shown() == store_events(), timeout=TIMEOUT)
    assert not any(mother_divides in t for t in shown())
    w.undo()
    settle(qtbot, w)
    qtbot.waitUntil(lambda: shown() == store_events(), timeout=TIMEOUT)
    assert any(mother_divides in t for t in shown()) and blank.text() in shown()


def test_import_tracks_replaces_then_undoes(qtbot, tree, tmp_path, monkeypatch):
    import napari_devosam._qt.propagate_import as import_module
    from napari_devosam._qt.propagate_import import import_tracks
    from napari_devosam.tracking.store_tracks import export_store_tracks

    viewer, w, dock, ids = tree
    said = []
    for name in ("show_info", "show_warning", "show_error"):
        monkeypatch.setattr(import_module, name, said.append)
    export_store_tracks(tmp_path / "ctc", w.store, (0,), 0)
    before = w.store.objects
    shape = {t: (i.first, i.last, len(i.daughters)) for t, i in lineage(w.store).items()}
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in (tmp_path / "ctc").iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "res_track.txt").write_text("1 0 4 0\n")  # disagrees with the masks
    assert import_tracks(w.propagate_panel, bad, replace=True)
    qtbot.waitUntil(lambda: not w.propagate_panel.busy, timeout=TIMEOUT)
    settle(qtbot, w)
    assert "not imported" in said[-1].lower() and w.store.objects == before
    assert import_tracks(w.propagate_panel, tmp_path / "ctc", replace=True)
    qtbot.waitUntil(lambda: not w.propagate_panel.busy, timeout=TIMEOUT)
    settle(qtbot, w)
    after = lineage(w.store)
    assert sorted(v for v in shape.values()) == sorted(
        (i.first, i.last, len(i.daughters)) for i in after.values())
    assert all(r.get("source") == "import" for r in w.store.objects.values())
    assert dock.data.info == after  # the dock shows the imported lineage
    assert w.propagate_panel.review_list.counts()["division"] == 6
    assert "one Undo removes the import" in w.propagate_panel.message.text()
    w.undo()
    settle(qtbot, w)
    assert w.store.objects == before
    said = w.propagate_panel.message.text()  # no longer the import's result
    assert said.startswith("Undo: a change over several planes") and "undone" in said
    assert w.segment_all_panel.message.text() == said


def test_import_checks_before_it_asks_and_takes_a_geff_graph(qtbot, tree, tmp_path,
                                                             monkeypatch):
    """New-user trial 19: a wrong folder was met with "Replace the 362 objects?" first, and
    GEFF graphs could not be imported from the viewer."""
    pytest.importorskip("geff")
    import napari_devosam._qt.propagate_import as import_module
    from napari_devosam.tracking.store_tracks import export_store_tracks

    viewer, w, dock, ids = tree
    said, asked = [], []
    for name in ("show_info", "show_warning", "show_error"):
        monkeypatch.setattr(import_module, name, said.append)
    monkeypatch.setattr(import_module.QMessageBox, "question",
                        lambda *a, **k: asked.append(a) or
                        import_module.QMessageBox.StandardButton.Yes)
    empty = tmp_path / "empty"
    empty.mkdir()
    picks = iter([str(empty)])
    monkeypatch.setattr(import_module.QFileDialog, "getExistingDirectory",
                        lambda *a, **k: next(picks))
    import_module.choose_and_import(w.propagate_panel)
    qtbot.waitUntil(lambda: not w.propagate_panel.busy, timeout=TIMEOUT)
    settle(qtbot, w)
    assert not asked and "Tracks not imported" in said[-1] and "maskNNN" in said[-1]

    export_store_tracks(tmp_path / "ctc", w.store, (0,), 0, geff=True)
    shape = sorted((i.first, i.last, len(i.daughters)) for i in lineage(w.store).values())
    picks = iter([str(tmp_path / "ctc" / "tracks.geff"), str(tmp_path / "ctc")])
    import_module.choose_and_import(w.propagate_panel)  # the graph, then its masks
    qtbot.waitUntil(lambda: not w.propagate_panel.busy, timeout=TIMEOUT)
    settle(qtbot, w)
    assert len(asked) == 1  # the store held the phantom's objects
    assert all(r.get("source") == "import" for r in w.store.objects.values())
    assert sorted((i.first, i.last, len(i.daughters))
                  for i in lineage(w.store).values()) == shape


def test_track_ids_are_written_once_rows_are_far_enough_apart(qtbot, tree):
    """A lineage of 80 imported tracks had rows 4 px apart and no ids (new-user trial)."""
    from napari_devosam._qt.lineage_canvas import ROW_MIN_PX

    viewer, w, dock, ids = tree
    canvas = dock.canvas
    canvas.resize(480, 14 * int(ROW_MIN_PX) + 60)  # 14 rows, each >= the spacing
    canvas.reset_view()
    assert canvas.label_rows() == list(range(14))
    canvas.resize(480, 14 * 4 + 40)  # the whole lineage: rows ~4 px apart, no ids
    canvas.show_all()
    assert canvas.label_rows() == []
    canvas.grab()  # paints with and without ids, without error


def test_rows_stay_readable_scroll_and_follow_the_image(qtbot, tree):
    """New-user trial 19: ~100 tracks drawn 2 px apart without ids, a Shift-click took a
    neighbour, and an object picked in the image did not select its track in the tree."""
    from napari_devosam._qt.lineage_canvas import ROW_MIN_PX

    viewer, w, dock, ids = tree
    canvas = dock.canvas
    canvas.resize(480, 6 * int(ROW_MIN_PX) + 28)  # room for ~6 of the 14 rows
    canvas.reset_view()
    top, shown, n = canvas.row_window()
    assert n == 14 and shown <= 6.5 and top == 0
    assert len(canvas.label_rows()) >= 5  # ids written
    assert not dock.scroll.isHidden() and dock.scroll.maximum() > 0
    dock.scroll.setValue(dock.scroll.maximum())  # the last rows
    top, shown, _ = canvas.row_window()
    assert abs(top + shown - 14) < 0.1
    last = int(canvas.layout_.tracks[-1])
    pos = canvas.node_position(last, int(canvas.layout_.first[-1]))
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=pos.toPoint())
    assert dock.selected == [last]
    # an object picked in the image selects its track in the tree
    other = next(t for t in ids.values() if t != last)
    frame = dock.data.info[other].first
    plane, oid = dock.data.object_at(other, frame)
    viewer.layers["objects"].selected_label = oid
    assert dock.selected == [other]
    top, shown, _ = canvas.row_window()  # and the tree scrolled to show it (trial 21)
    assert top <= canvas.layout_.rows[other] <= top + shown - 1

