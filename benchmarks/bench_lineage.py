"""The Lineage dock's speed on a big lineage: redraw and click-jump (issue 23's targets).

Run from the repository root under a display:
``xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/bench_lineage.py`` (~1 minute).

A synthetic lineage of 300 frames x 500 tracks (20 roots dividing until there are 500
tracks; ends: divided, movie end, lost, left the movie), one object per track and frame
(~26 000 nodes). Timed, interleaved, in one run:

- "redraw": a new lineage -> pixels: ``lineage_layout.layout_lineage``, the track colours
  and a synchronous repaint of the dock's tree (target <= 200 ms), for the three drawing
  libraries compared: QPainter (what the dock uses), vispy (a ``SceneCanvas`` with one
  segment ``Line`` visual and a ``Markers`` visual, as napari draws) and matplotlib (a Qt
  canvas with a ``LineCollection`` and a scatter). pyqtgraph is not installed with napari and
  was not added for this. Every candidate draws the same layout into a 900 x 400 widget.
- "click": a mouse click on a node of the real ``LineageDock`` in a shown napari viewer
  (a ``(300, 128, 128)`` image and ``objects`` labels) -> the viewer on that frame and the
  object selected ("handled"), and after Qt has processed the pending events, the napari
  canvas repaint included ("+ repaint"); target <= 100 ms. The dock reads a precomputed
  ``LineageData`` (what ``LineageModel`` computes on the store thread), not a store. The
  reference, in the same rounds: napari's own slider moving to another frame
  (``dims.set_current_step``), which every jump includes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ratio, summary, write_json  # noqa: E402

REDRAW_MS, CLICK_MS = 200.0, 100.0


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--tracks", type=int, default=500)
    ap.add_argument("--runs", type=int, default=15, help="timed redraws per library / clicks")
    ap.add_argument("--json", default=None, help="write all figures to this file")
    return ap.parse_args(argv)


def big_lineage(n_frames: int, n_tracks: int, seed: int = 0) -> dict:
    """``{track: TrackInfo}``: 20 roots on frame 0 dividing until ``n_tracks`` tracks."""
    from napari_devosam.tracking.lineage import TrackInfo

    rng = np.random.default_rng(seed)
    span = max(2, n_frames // 12)
    rows = {t: [None, 0] for t in range(1, 21)}  # track: [parent, first]
    todo, next_id, daughters = list(rows), 21, {}
    while todo:
        t = todo.pop(0)
        first = rows[t][1]
        last = min(first + int(rng.integers(span, 3 * span)), n_frames - 1)
        rows[t].append(last)
        if last < n_frames - 2 and next_id + 1 <= n_tracks:
            for kid in (next_id, next_id + 1):
                rows[kid] = [t, last + 1]
                todo.append(kid)
            daughters[t] = (next_id, next_id + 1)
            next_id += 2
    info = {}
    for t, (parent, first, last) in rows.items():
        kids = daughters.get(t, ())
        reason = ("divided" if kids else "movie end" if last == n_frames - 1
                  else ("lost", "left the movie")[t % 2])
        info[t] = TrackInfo(t, parent, first, last, reason, kids)
    return info


def data_for(info: dict):
    from napari_devosam._qt.lineage_model import LineageData
    from napari_devosam.tracking.lineage_colors import track_colors

    nodes, object_tracks, oid = {}, {}, 1
    for t, ti in info.items():
        for f in range(ti.first, ti.last + 1):
            nodes[(t, f)] = [((f,), oid)]
            object_tracks[oid] = t
            oid += 1
    return LineageData(info, nodes, object_tracks, track_colors(info), 0)


# -- the three candidates: each has redraw(info) -> pixels on screen --------------------------
def qpainter_candidate():
    from napari_devosam._qt.lineage_canvas import LineageCanvas
    from napari_devosam.tracking.lineage_colors import rgba_array, track_colors
    from napari_devosam.tracking.lineage_layout import layout_lineage

    canvas = LineageCanvas()
    canvas.resize(900, 400)
    canvas.show()

    def redraw(info):
        layout = layout_lineage(info)
        canvas.set_lineage(layout, rgba_array(track_colors(info), layout.tracks))
        canvas.repaint()  # synchronous paintEvent

    return canvas, redraw


def vispy_candidate():
    from vispy import scene
    from vispy.gloo import gl

    from napari_devosam.tracking.lineage_colors import rgba_array, track_colors
    from napari_devosam.tracking.lineage_layout import layout_lineage

    canvas = scene.SceneCanvas(keys=None, size=(900, 400), show=True, bgcolor="#262930")
    view = canvas.central_widget.add_view()
    view.camera = scene.PanZoomCamera(aspect=None)
    lines = scene.visuals.Line(connect="segments", parent=view.scene, method="gl")
    marks = scene.visuals.Markers(parent=view.scene)

    def redraw(info):
        layout = layout_lineage(info)
        colors = rgba_array(track_colors(info), layout.tracks)
        seg = layout.segments
        pos = seg.reshape(-1, 2).astype(np.float32)
        lines.set_data(pos=pos, color=np.repeat(colors[layout.segment_row], 2, axis=0))
        rows = np.array([r for _, r in layout.ends])
        marks.set_data(np.stack([layout.last[rows], rows], axis=1).astype(np.float32),
                       face_color=colors[rows], size=6)
        view.camera.set_range(x=(-0.5, layout.n_frames), y=(-0.5, len(layout.tracks)))
        canvas.native.repaint()
        gl.glFinish()

    return canvas.native, redraw


def matplotlib_candidate():
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    from napari_devosam.tracking.lineage_colors import rgba_array, track_colors
    from napari_devosam.tracking.lineage_layout import layout_lineage

    fig = Figure(figsize=(9, 4), dpi=100)
    ax = fig.add_subplot(111)
    canvas = FigureCanvasQTAgg(fig)
    canvas.resize(900, 400)
    canvas.show()
    collection = LineCollection([], linewidths=2)
    ax.add_collection(collection)
    scatter = ax.scatter([], [], s=12)

    def redraw(info):
        layout = layout_lineage(info)
        colors = rgba_array(track_colors(info), layout.tracks)
        collection.set_segments(layout.segments.reshape(-1, 2, 2))
        collection.set_color(colors[layout.segment_row])
        rows = np.array([r for _, r in layout.ends])
        scatter.set_offsets(np.stack([layout.last[rows], rows], axis=1))
        scatter.set_color(colors[rows])
        ax.set_xlim(-0.5, layout.n_frames)
        ax.set_ylim(len(layout.tracks), -0.5)
        canvas.draw()
        canvas.repaint()

    return canvas, redraw


def time_redraws(candidates: dict, infos: list, runs: int) -> dict:
    """Interleaved: each round redraws every candidate once with the next lineage."""
    from qtpy.QtWidgets import QApplication

    times = {name: [] for name in candidates}
    for i in range(runs + 2):
        for name, (_, redraw) in candidates.items():
            QApplication.processEvents()
            t0 = time.perf_counter()
            redraw(infos[i % len(infos)])
            if i >= 2:  # two warm-up rounds
                times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: summary(t) for name, t in times.items()}


class _Annotator:
    """What ``LineageDock`` reads of an ``AnnotatorWidget``, without a store."""

    def __init__(self, viewer, image, objects, data):
        from qtpy.QtCore import QObject, Signal

        class Model(QObject):
            changed = Signal(object)

            def refresh(self):
                pass

        class Panel:
            pass

        class Layers:
            pass

        self.viewer, self.image_layer = viewer, image
        self.layers = Layers()
        self.layers.objects = objects
        self.propagate_panel = Panel()
        self.propagate_panel.lineage = Model()
        self.propagate_panel.lineage.data = data
        self.store = None
        self.undo = self.redo = lambda: None

    @property
    def current_plane(self):
        return (int(self.viewer.dims.current_step[0]),)


def time_clicks(data, n_frames: int, runs: int) -> dict:
    import napari
    from qtpy.QtCore import QPoint, Qt
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QApplication

    from napari_devosam._qt.lineage_dock import LineageDock, node_center

    viewer = napari.Viewer(show=True)
    image = viewer.add_image(np.zeros((n_frames, 128, 128), np.uint16), name="embryo")
    objects = viewer.add_labels(np.zeros((n_frames, 128, 128), np.uint32), name="objects")
    w = _Annotator(viewer, image, objects, data)
    dock = LineageDock(w)
    viewer.window.add_dock_widget(dock, name="Lineage", area="bottom")
    dock.canvas.setMinimumHeight(400)
    QApplication.processEvents()
    rng = np.random.default_rng(1)
    keys = list(data.nodes)
    handled, painted, slider, slider_painted = [], [], [], []
    for i in range(runs + 2):
        track, frame = keys[int(rng.integers(len(keys)))]
        row = dock.layout_.rows[track]  # zoomed in as a user would: 40 rows, 100 frames shown
        dock.canvas._view = (frame - 50.0, frame + 50.0, row - 20.0, row + 20.0)
        dock.canvas.repaint()
        x, y = node_center(dock, track, frame)
        QApplication.processEvents()
        t0 = time.perf_counter()
        QTest.mouseClick(dock.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier(0),
                         QPoint(x, y))
        t1 = time.perf_counter()
        QApplication.processEvents()
        t2 = time.perf_counter()
        assert viewer.dims.current_step[0] == frame, "the click did not jump"
        assert objects.selected_label == data.nodes[(track, frame)][0][1]
        # the reference: napari's own slider moving to another frame (no dock involved)
        t3 = time.perf_counter()
        viewer.dims.set_current_step(0, (frame + n_frames // 2) % n_frames)
        t4 = time.perf_counter()
        QApplication.processEvents()
        t5 = time.perf_counter()
        if i >= 2:
            handled.append((t1 - t0) * 1e3)
            painted.append((t2 - t0) * 1e3)
            slider.append((t4 - t3) * 1e3)
            slider_painted.append((t5 - t3) * 1e3)
    viewer.close()
    return {"handled": summary(handled), "+ repaint": summary(painted),
            "slider alone": summary(slider), "slider + repaint": summary(slider_painted)}


def main(argv=None) -> int:
    args = parse_args(argv)
    from qtpy.QtWidgets import QApplication

    from napari_devosam.tracking.lineage_layout import layout_lineage

    app = QApplication.instance() or QApplication(sys.argv)  # noqa: F841 - kept alive
    infos = [big_lineage(args.frames, args.tracks, seed) for seed in range(3)]
    n_tracks = len(infos[0])
    n_forks = len(layout_lineage(infos[0]).segments) - n_tracks
    print(f"lineage: {args.frames} frames x {n_tracks} tracks, {n_forks} daughters, "
          f"{sum(i.last - i.first + 1 for i in infos[0].values())} nodes")
    candidates = {"QPainter": qpainter_candidate(), "vispy": vispy_candidate(),
                  "matplotlib": matplotlib_candidate()}
    redraw = time_redraws(candidates, infos, args.runs)
    ours = redraw["QPainter"]["p50_ms"]
    print("redraw (layout + colours + synchronous repaint), ms:")
    for name, s in redraw.items():
        print(f"  {name:<11} p50 {s['p50_ms']:7.1f}  p90 {s['p90_ms']:7.1f}   "
              f"{ratio(s['p50_ms'], ours)} QPainter's time")
    for widget, _ in candidates.values():
        widget.close()
    clicks = time_clicks(data_for(infos[0]), args.frames, args.runs)
    print("click on a node -> frame shown + object selected, ms:")
    for name, s in clicks.items():
        print(f"  {name:<11} p50 {s['p50_ms']:7.1f}  p90 {s['p90_ms']:7.1f}")
    own = clicks["handled"]["p50_ms"] - clicks["slider alone"]["p50_ms"]
    print(f"  the dock's own share of a jump (handled - slider alone, p50): {own:.1f} ms")
    ok_redraw = redraw["QPainter"]["p90_ms"] <= REDRAW_MS
    verdicts = {f"{name} {q}": clicks[name][f"{q}_ms"] <= CLICK_MS
                for name in ("handled", "+ repaint") for q in ("p50", "p90")}
    print(f"targets: redraw p90 <= {REDRAW_MS:.0f} ms: {'met' if ok_redraw else 'MISSED'}; "
          f"click <= {CLICK_MS:.0f} ms: " + ", ".join(
              f"{k} {'met' if v else 'MISSED'}" for k, v in verdicts.items()))
    ok_click = verdicts["handled p50"]
    write_json(args.json, {"lineage": {"frames": args.frames, "tracks": n_tracks},
                           "redraw": redraw, "click": clicks})
    return 0 if ok_redraw and ok_click else 1


if __name__ == "__main__":
    sys.exit(main())
