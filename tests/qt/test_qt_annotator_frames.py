"""Prompts in the image's own frame, whatever its transform; unusable prompts dropped alone.

Clicks go through napari's own mouse bindings at a *world* position, as a user's do.
Run under a display: ``xvfb-run -a python -m pytest tests/qt/test_qt_annotator_frames.py``.
"""

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

import segment_anything  # noqa: E402, F401 - before any viewer: see napari_devosam._qt
from napari.utils._proxies import ReadOnlyWrapper  # noqa: E402
from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks  # noqa: E402

from napari_devosam._qt.annotator_widget import AnnotatorWidget  # noqa: E402

TIMEOUT = 20_000
TRANSFORMS = {
    "rotate+shear+scale": {"scale": (2.0, 0.5, 1.5), "translate": (0, 10, -5), "rotate": 30,
                           "shear": [0, 0, 0.3]},
    "affine": {"affine": np.array([[1, 0, 0, 0], [0, 0.8, -0.6, 3], [0, 0.6, 0.8, 1],
                                   [0, 0, 0, 1]], float)},
}


def click(viewer, layer, world):
    """A left click (press + release, no move) at ``world`` on ``layer``."""
    for i, value in enumerate(world[:-2]):
        viewer.dims.set_point(i, value)
    fields = dict(is_dragging=False, modifiers=[], position=tuple(world), button=1,
                  view_direction=None, up_direction=None, pos=np.zeros(2), handled=False,
                  dims_displayed=[len(world) - 2, len(world) - 1])
    for kind, callbacks in (("mouse_press", mouse_press_callbacks),
                            ("mouse_release", mouse_release_callbacks)):
        event = ReadOnlyWrapper(SimpleNamespace(type=kind, **fields), exceptions=("handled",))
        callbacks(layer, event)


def open_annotator(make_napari_viewer, qtbot, data, sam, **geo):
    viewer = make_napari_viewer()
    image = viewer.add_image(data, name="embryo", **geo)
    viewer.dims.set_current_step(0, 0)
    widget = AnnotatorWidget(viewer, sam=sam)
    viewer.window.add_dock_widget(widget, name="SAM annotator")
    qtbot.waitUntil(lambda: widget.store is not None, timeout=TIMEOUT)
    return viewer, image, widget


def capture(monkeypatch, *names):
    said = []
    for module in ("annotator_widget", "annotator_prompts"):
        for name in names:
            target = f"napari_devosam._qt.{module}.{name}"
            monkeypatch.setattr(target, said.append, raising=False)
    return said


@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_a_click_is_read_in_the_image_pixel_frame(make_napari_viewer, qtbot, stack, sam,
                                                  transform):
    viewer, image, w = open_annotator(make_napari_viewer, qtbot, stack, sam,
                                      **TRANSFORMS[transform])
    pixel = np.array([2.0, 40.0, 70.0])
    viewer.layers.selection.active = w.layers.points
    w.layers.points.mode = "add"
    click(viewer, w.layers.points, np.asarray(image.data_to_world(pixel)))
    assert w.current_plane == (2,)
    np.testing.assert_allclose(w.layers.points.data, [pixel], atol=1e-6)
    qtbot.waitUntil(lambda: w.state.result((2,)) is not None, timeout=TIMEOUT)
    np.testing.assert_allclose(w.state.result((2,)).prompts[0]["points"], [pixel[1:]],
                               atol=1e-6)
    # the image's transform changes later: the prompt layers follow it
    image.rotate = 75
    for layer in w.layers.all():
        np.testing.assert_allclose(layer.data_to_world(pixel), image.data_to_world(pixel))


def test_a_transform_across_planes_is_refused_with_a_message(make_napari_viewer, qtbot, stack,
                                                             sam, monkeypatch):
    errors = capture(monkeypatch, "show_error")
    c, s = np.cos(0.3), np.sin(0.3)
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="embryo", rotate=[[c, 0, -s], [0, 1, 0], [s, 0, c]])
    w = AnnotatorWidget(viewer, sam=sam)
    assert w.layers is None and [ly.name for ly in viewer.layers] == ["embryo"]
    assert len(errors) == 1 and "oblique" in errors[0]


def test_an_image_without_pixels_is_refused_with_a_message(make_napari_viewer, sam, stack,
                                                           monkeypatch):
    """Trial 17: a (0, 64, 64) layer gave napari's label controls an IndexError and a status
    line on "plane (-1,)"."""
    errors = capture(monkeypatch, "show_error")
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((0, 64, 64), np.uint8), name="empty")
    w = AnnotatorWidget(viewer, sam=sam)
    assert w.layers is None and [ly.name for ly in viewer.layers] == ["empty"]
    assert len(errors) == 1 and "has no pixels (shape (0, 64, 64)" in errors[0]
    # trial 18: each later layer repeated the first one's refusal; a refused layer is not
    # picked again by itself, the next layer is judged on its own
    viewer.add_image(np.zeros((3, 0, 64, 64), np.uint8), name="empty 4d")
    assert len(errors) == 2 and "'empty 4d' has no pixels" in errors[1]
    viewer.add_image(stack, name="embryo")
    assert w.image_layer is viewer.layers["embryo"] and len(errors) == 2


def test_an_unusable_prompt_is_dropped_once_and_the_others_answered(
        make_napari_viewer, qtbot, stack, sam, monkeypatch):
    viewer, image, w = open_annotator(make_napari_viewer, qtbot, stack, sam)
    qtbot.waitUntil(lambda: w.state.ready_plane == (0,), timeout=TIMEOUT)
    warnings = capture(monkeypatch, "show_warning")
    boxes, points = w.layers.boxes, w.layers.points
    boxes.add_rectangles(np.array([[0, 20, 30], [0, 20, 90], [0, 70, 90], [0, 70, 30]], float))
    points.add([0, -40, -40])  # outside the plane
    boxes.add_rectangles(np.array([[0, 50, 50], [0, 50, 60], [0, 50, 60], [0, 50, 50]], float))
    points.add([5, 10, 10])  # on a plane the 3-plane stack does not have
    result = w.state.result((0,))
    assert result is not None and len(result.masks) == 1  # the good box is answered
    assert w.layers.current.data[0].any()
    assert len(warnings) == 3  # one message per new unusable prompt, none repeated
    assert "point dropped" in warnings[0] and "zero area" in warnings[1]
    assert "plane 5" in warnings[2]
    points.add([0, 48, 64])  # a later good prompt: no repeated warnings
    assert len(warnings) == 3
    assert not w.state.is_pending((0,))
    assert "computing" not in w.status_label.text()


def test_commit_without_model_says_so(make_napari_viewer, qtbot, stack, monkeypatch):
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="embryo")
    viewer.dims.set_current_step(0, 0)
    w = AnnotatorWidget(viewer, autoload=False)
    qtbot.waitUntil(lambda: w.store is not None, timeout=TIMEOUT)
    infos = capture(monkeypatch, "show_info")
    w.layers.points.add([0, 48, 64])
    w.commit()
    assert len(infos) == 1 and "No model" in infos[0] and "computing" not in infos[0]
    assert "computing" not in w.status_label.text()
