"""Regenerate the user guide's screenshots: ``xvfb-run -a python docs/make_screenshots.py``.

Opens the synthetic sample with the SAM annotator and the bundled ``embryo_tiny`` model (real
masks, no download), draws prompts where the sample's cells are, commits, and saves window
grabs as PNG under docs/images/.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> int:
    os.environ.setdefault("DEVOSAM_STORE_DIR", tempfile.mkdtemp())
    os.environ.setdefault("DEVOSAM_CACHE_DIR", tempfile.mkdtemp())
    import napari
    import segment_anything  # noqa: F401 - before napari's OpenGL (see napari_devosam._qt)
    from PIL import Image
    from qtpy.QtWidgets import QApplication

    from napari_devosam._qt.annotator_widget import AnnotatorWidget
    from napari_devosam.sample_data import SAMPLE_SEED, SAMPLE_SHAPE, embryo_timelapse
    from napari_devosam.synthetic.phantoms import make_timelapse

    viewer = napari.Viewer(title="napari-devosam")
    viewer.window.resize(1400, 860)
    for data, kwargs, _ in embryo_timelapse():
        viewer.add_image(data, **kwargs)
    _, truth = make_timelapse(n_timepoints=SAMPLE_SHAPE[0], shape=SAMPLE_SHAPE[1:], n_cells=4,
                              seed=SAMPLE_SEED)
    widget = AnnotatorWidget(viewer, autoload=False)
    viewer.window.add_dock_widget(widget, name="SAM annotator", area="right")
    widget.model_panel.select("embryo_tiny", "cpu")
    widget.model_panel.load()
    app = QApplication.instance()

    def spin(cond=lambda: False, seconds=30.0):
        t0 = time.time()
        while not cond() and time.time() - t0 < seconds:
            app.processEvents()
            time.sleep(0.01)

    def grab(name):
        viewer.reset_view()
        spin(seconds=0.5)
        shot = viewer.screenshot(canvas_only=False, flash=False)
        img = Image.fromarray(shot[..., :3])
        img.thumbnail((1200, 1200))
        img = img.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
        path = HERE / "images" / name
        img.save(path, optimize=True)
        print(f"{path} ({path.stat().st_size // 1024} KB)")

    def cell_box(t, i):
        rr, cc = np.nonzero(truth[t] == i)
        return np.array([[t, rr.min(), cc.min()], [t, rr.min(), cc.max()],
                         [t, rr.max(), cc.max()], [t, rr.max(), cc.min()]], float)

    for t in (0, 1):
        viewer.dims.set_current_step(0, t)
        spin(lambda t=t: widget.state is not None and widget.state.ready_plane == (t,)
             and widget.store is not None)
        ids = [i for i in np.unique(truth[t]) if i]
        widget.layers.boxes.add_rectangles([cell_box(t, i) for i in ids[:3]])
        if t == 1:
            grab("annotator_prompts.png")
        widget.commit()
        spin(lambda: not widget.jobs.busy)
    viewer.dims.set_current_step(0, 2)
    spin(lambda: widget.state.ready_plane == (2,))
    rr, cc = np.nonzero(truth[2] == 1)
    widget.layers.points.add([2, rr.mean(), cc.mean()])
    widget.toggle_point_kind()
    rr, cc = np.nonzero(truth[2] == 2)
    widget.layers.points.add([2, rr.mean(), cc.mean()])
    widget.toggle_point_kind()
    viewer.dims.set_current_step(0, 1)
    spin(lambda: widget.state.ready_plane == (1,))
    grab("annotator_committed.png")
    viewer.dims.set_current_step(0, 2)
    spin(lambda: widget.state.ready_plane == (2,))
    grab("annotator_points.png")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
