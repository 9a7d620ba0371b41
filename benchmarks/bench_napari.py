"""End-to-end napari latency: a prompt change -> the updated ``current object`` layer.

Run from the repository root under a display: ``xvfb-run -a python benchmarks/bench_napari.py``
(~1 minute on a 2-core CPU). A real napari viewer (shown, on Xvfb) with the SAM annotator
docked; the vit_b architecture with random weights; a 512 x 752 16-bit phantom plane. The
plane's embedding is random features put in the annotator's embedding cache (the encoder is
not what is timed here: see bench_click.py). Each timed step is one user action made through
the napari layers' own API (a rectangle added to ``boxes``, a point added to ``points``),
measured until the annotator has painted the mask into ``current object`` and refreshed it
("handled"), and until Qt has also processed the pending events including the canvas repaint
("+ repaint"). Stock ``SamPredictor.predict`` on the same embedding and prompts is timed
interleaved for reference.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, ratio, summary, write_json  # noqa: E402

TARGET_MS = 60.0


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30, help="timed actions per kind")
    ap.add_argument("--shape", default="512x752", help="plane size HxW")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: cores)")
    ap.add_argument("--json", default=None, help="write all figures to this file")
    ap.add_argument("--under-load", action="store_true",
                    help="time the clicks while 'Precompute all planes' runs the encoder on the "
                         "other planes: once at the background's low priority, once at normal "
                         "priority (the reference), in one run")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import os

    tmp = tempfile.mkdtemp(prefix="devosam-bench-")
    os.environ["DEVOSAM_STORE_DIR"] = str(Path(tmp) / "stores")
    import segment_anything  # noqa: F401 - before napari's OpenGL (see napari_devosam._qt)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_devosam._qt.annotator_widget import AnnotatorWidget
    from napari_devosam.engine.embeddings import PlaneEmbedding, signature
    from napari_devosam.synthetic.phantoms import make_embryo
    from napari_devosam.testing import random_sam

    h, w = (int(v) for v in args.shape.lower().split("x"))
    image, truth = make_embryo((h, w), n_cells=8, seed=1)
    if args.under_load:  # plane 0 is clicked; the encoder works through the 40 others
        image = np.stack([image] + [make_embryo((h, w), n_cells=8, seed=s)[0]
                                    for s in range(2, 42)])
    sam = random_sam("vit_b")
    size = sam.image_encoder.img_size
    scale = size / max(h, w)
    input_size = (int(h * scale + 0.5), int(w * scale + 0.5))
    torch.manual_seed(0)
    emb = PlaneEmbedding(torch.randn(1, 256, 64, 64), input_size, (h, w))

    viewer = napari.Viewer(show=True)
    viewer.add_image(image, name="embryo")
    if args.under_load:
        viewer.dims.set_current_step(0, 0)  # napari opens stacks at the middle plane
    widget = AnnotatorWidget(viewer, autoload=False, cache_dir=Path(tmp) / "cache")
    viewer.window.add_dock_widget(widget, name="SAM annotator")
    widget.cache.put(signature(image[0] if args.under_load else image, sam, None), emb)
    widget.set_model(sam, "vit_b (random weights)")
    app = QApplication.instance()

    def spin_until(cond, timeout=60.0):
        t0 = time.perf_counter()
        while not cond():
            app.processEvents()
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError("the annotator did not become ready")
            time.sleep(0.005)

    clicked = (0,) if args.under_load else ()
    spin_until(lambda: widget.state.ready_plane == clicked and widget.store is not None)
    boxes, points = widget.layers.boxes, widget.layers.points
    rng = np.random.default_rng(0)
    ids = [i for i in np.unique(truth) if i]

    def cell_box(i):
        rr, cc = np.nonzero(truth == i)
        return np.array([rr.min(), cc.min(), rr.max(), cc.max()], float)

    def inside(i):
        rr, cc = np.nonzero(truth == i)
        k = rng.integers(len(rr))
        return np.array([*clicked, rr[k], cc[k]], float)

    def timed(action):
        t0 = time.perf_counter()
        action()
        t1 = time.perf_counter()
        app.processEvents()
        t2 = time.perf_counter()
        return (t1 - t0) * 1e3, (t2 - t0) * 1e3

    def rect(b):
        r0, c0, r1, c1 = b
        corners = np.array([[r0, c0], [r0, c1], [r1, c1], [r1, c0]])
        return np.hstack([np.full((4, len(clicked)), clicked), corners]) if clicked else corners

    stock = segment_anything.SamPredictor(sam)
    stock.features, stock.original_size, stock.input_size = emb.features, (h, w), input_size
    stock.is_image_set = True

    def click_series(label=""):
        results = {f"box{label}": ([], []), f"box + point{label}": ([], []),
                   f"refine: 2nd point{label}": ([], [])}
        stock_ms = []
        for run in range(args.runs + 3):
            i = ids[run % len(ids)]
            box = cell_box(i)
            p1, p2 = inside(i), inside(i)
            steps = {
                "box": lambda b=box: boxes.add_rectangles(rect(b)),
                "box + point": lambda p=p1: points.add(p),
                "refine: 2nd point": lambda p=p2: points.add(p),
            }
            for name, action in steps.items():
                handled, painted = timed(action)
                if run >= 3:
                    results[name + label][0].append(handled)
                    results[name + label][1].append(painted)
            assert widget.state.current_labels.any()
            widget.clear_prompts()
            app.processEvents()
            t0 = time.perf_counter()
            stock.predict(box=box[[1, 0, 3, 2]], multimask_output=True)
            if run >= 3:
                stock_ms.append((time.perf_counter() - t0) * 1e3)
        return results, stock_ms

    if not args.under_load:
        results, stock_ms = click_series()
    else:
        from napari_devosam.utils import background

        results, stock_ms = {}, []
        for label, nice in ((" [encoder niced]", background.BACKGROUND_NICE),
                            (" [encoder at normal priority]", 0)):
            background.BACKGROUND_NICE = nice
            widget.precompute_all()
            time.sleep(3.0)  # the encoder is running now
            part, stock_part = click_series(label)
            results.update(part)
            stock_ms += stock_part
            widget.embeddings.cancel()
            spin_until(lambda: not widget.embeddings.precomputing, timeout=120)
    viewer.close()

    stock_p50 = float(np.percentile(stock_ms, 50))
    out = {"machine": machine("cpu"), "shape": [h, w], "runs": args.runs,
           "stock_predict": summary(stock_ms), "napari": {}}
    print(f"napari end-to-end latency, vit_b decoder, {h}x{w} plane, {args.runs} runs each")
    print(f"machine: {out['machine']['cpu']} ({out['machine']['cpu_count']} cores, "
          f"load {out['machine']['load_avg_1m']:.1f})")
    width = max(20, *(len(n) + 2 for n in results))
    print(f"{'action':<{width}}{'handled p50':>13}{'+ repaint p50':>15}{'p90':>8}  vs stock")
    for name, (handled, painted) in results.items():
        a, b = summary(handled), summary(painted)
        out["napari"][name] = {"handled": a, "with_repaint": b}
        print(f"{name:<{width}}{a['p50_ms']:>10.1f} ms{b['p50_ms']:>12.1f} ms{b['p90_ms']:>6.0f} ms"
              f"  {ratio(stock_p50, b['p50_ms'])}")
    print(f"{'stock predict (box)':<20}{stock_p50:>10.1f} ms   (SamPredictor.predict, no napari)")
    worst = max(v["handled"]["p50_ms"] for v in out["napari"].values())
    paint = max(v["with_repaint"]["p50_ms"] for v in out["napari"].values())
    print(f"target: p50 <= {TARGET_MS:.0f} ms from prompt to updated layer (handled): "
          f"{'met' if worst <= TARGET_MS else 'NOT met'} (worst p50 {worst:.1f} ms; with the "
          f"first Qt repaint {paint:.1f} ms, software OpenGL on Xvfb)")
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
