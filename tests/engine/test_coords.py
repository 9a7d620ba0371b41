"""napari (row, col) <-> SAM (x, y), and checking prompts against a plane."""

import numpy as np
import pytest

from napari_devosam.engine.coords import (
    box_rc_to_xyxy,
    boxes_to_input,
    clip_box,
    input_size,
    normalise_box,
    points_rc_to_xy,
    points_to_input,
    resize_image,
    validate_points,
)

SHAPE = (50, 80)  # rows, cols


def test_points_become_x_y():
    xy = points_rc_to_xy([(10, 70), (3.5, 1)])
    np.testing.assert_array_equal(xy, [[70, 10], [1, 3.5]])
    assert xy.dtype == np.float64
    assert points_rc_to_xy((2, 9)).shape == (1, 2)
    assert points_rc_to_xy(np.zeros((0, 2))).shape == (0, 2)


def test_points_conversion_does_not_alias_input():
    pts = np.array([[1.0, 2.0]])
    xy = points_rc_to_xy(pts)
    xy[0, 0] = 99
    assert pts[0, 0] == 1.0


def test_boxes_become_xyxy():
    np.testing.assert_array_equal(box_rc_to_xyxy((1, 2, 30, 40)), [2, 1, 40, 30])
    batch = box_rc_to_xyxy([(1, 2, 30, 40), (5, 6, 7, 8)])
    np.testing.assert_array_equal(batch, [[2, 1, 40, 30], [6, 5, 8, 7]])


def test_validate_points_defaults_and_types():
    pts, lab = validate_points([(0, 0), (49, 79)], None, SHAPE)
    assert pts.dtype == np.float64 and lab.dtype == np.int64
    np.testing.assert_array_equal(lab, [1, 1])
    _, lab = validate_points([(1, 1), (2, 2)], np.array([True, False]), SHAPE)
    np.testing.assert_array_equal(lab, [1, 0])


def test_points_within_half_a_pixel_of_the_border_are_inside():
    pts, _ = validate_points([(-0.5, 79.4), (49.5, -0.2)], [1, 0], SHAPE)
    np.testing.assert_array_equal(pts, [[0, 79], [49, 0]])


@pytest.mark.parametrize(
    "points, labels, message",
    [
        ([(50.6, 5)], None, "outside"),
        ([(5, -0.6)], None, "outside"),
        ([(5, 80.5)], None, "outside"),
        ([(np.nan, 5)], None, "finite"),
        ([(5, 5)], [2], "labels"),
        ([(5, 5)], [-1], "labels"),
        ([(5, 5), (6, 6)], [1], "2 points but 1"),
        ([1, 2, 3], None, "pairs"),
        (np.zeros((2, 3)), None, "pairs"),
    ],
)
def test_bad_points(points, labels, message):
    with pytest.raises(ValueError, match=message):
        validate_points(points, labels, SHAPE)


def test_clip_box_inside_and_partly_outside():
    import warnings

    from napari_devosam.engine.coords import BoxClippedWarning, usable_prompts

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inside, or drawn up to the edge: no warning
        np.testing.assert_array_equal(clip_box((1, 2, 30, 40), SHAPE), [1, 2, 30, 40])
        np.testing.assert_array_equal(clip_box(np.array([[0, 0, 49, 79]]), SHAPE),
                                      [0, 0, 49, 79])
        np.testing.assert_array_equal(clip_box((-0.5, 0, 50, 80), SHAPE), [0, 0, 49, 79])
    with pytest.warns(BoxClippedWarning, match=r"reaches outside the 50x80 image: clipped to "
                                               r"\(0, 0, 30, 79\)"):
        np.testing.assert_array_equal(clip_box((-10, -5, 30, 200), SHAPE), [0, 0, 30, 79])
    keep_boxes, _, notes = usable_prompts([(-10, -5, 30, 200), (60, 0, 70, 10)], [], SHAPE)
    assert keep_boxes.tolist() == [True, False]
    assert "clipped to" in notes[0] and "entirely outside" in notes[1]


@pytest.mark.parametrize(
    "box, message",
    [
        ((60, 0, 70, 10), "entirely outside"),
        ((0, 90, 10, 100), "entirely outside"),
        ((-20, -20, -1, -1), "entirely outside"),
        ((10, 10, 10, 30), "zero area"),
        ((-5, 10, 0, 30), "zero area"),  # only its edge touches the plane
        ((30, 10, 10, 30), "inverted"),
        ((10, 30, 20, 10), "inverted"),
        ((np.nan, 0, 10, 10), "finite"),
        ((0, 0, np.inf, 10), "finite"),
        ((1, 2, 3), "4 numbers"),
    ],
)
def test_bad_boxes(box, message):
    with pytest.raises(ValueError, match=message):
        clip_box(box, SHAPE)


def test_normalise_box_from_any_two_corners():
    np.testing.assert_array_equal(normalise_box([(30, 5), (10, 40)]), [10, 5, 30, 40])
    corners = [(10, 5), (10, 40), (30, 40), (30, 5)]  # a napari rectangle's 4 vertices
    np.testing.assert_array_equal(normalise_box(corners), [10, 5, 30, 40])


def test_box_rule_is_the_same_for_api_cli_and_annotator(tmp_path, monkeypatch):
    """The kind: every path from a box prompt to a mask drops pixels beyond the box margin."""
    import tifffile

    import napari_devosam.models.loading as loading
    from napari_devosam.cli import main
    from napari_devosam.engine.coords import BOX_MARGIN
    from napari_devosam.engine.predictor import Predictor
    from napari_devosam.testing import tiny_sam

    rng = np.random.default_rng(3)
    plane = (rng.random((96, 128)) * 255).astype(np.uint8)
    box = (30.0, 40.0, 50.0, 70.0)
    grown = np.zeros(plane.shape, bool)
    grown[30 - BOX_MARGIN:51 + BOX_MARGIN, 40 - BOX_MARGIN:71 + BOX_MARGIN] = True
    sam = tiny_sam()
    predictor = Predictor(sam)
    predictor.set_image(plane)
    api = predictor.predict(box=box)[0][0]
    batched = predictor.predict_boxes([box])[0][0]
    monkeypatch.setattr(loading, "load_model", lambda *a, **k: sam)
    tifffile.imwrite(tmp_path / "p.tif", plane)
    out = tmp_path / "l.tif"
    assert main(["segment", str(tmp_path / "p.tif"), "--box", "30,40,50,70",
                 "--out", str(out), "--cache-dir", str(tmp_path / "c")]) == 0
    cli = tifffile.imread(out) > 0
    for mask in (api, batched, cli):
        assert not (mask & ~grown).any()
    np.testing.assert_array_equal(api, cli)
    np.testing.assert_array_equal(api, batched)


@pytest.mark.parametrize("shape", [(50, 80), (80, 50), (333, 1000), (1, 700), (1024, 1024)])
@pytest.mark.parametrize("img_size", [1024, 256])
def test_input_frame_is_sams_resize_longest_side(shape, img_size):
    from segment_anything.utils.transforms import ResizeLongestSide

    stock = ResizeLongestSide(img_size)
    assert input_size(shape, img_size) == stock.get_preprocess_shape(*shape, img_size)
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, max(shape), size=(3, 4, 2))
    want = stock.apply_coords(points_rc_to_xy(pts), shape).reshape(3, 4, 2)
    np.testing.assert_array_equal(points_to_input(pts, shape, img_size), want)
    boxes = rng.uniform(0, max(shape), size=(5, 4))
    want = stock.apply_boxes(box_rc_to_xyxy(boxes), shape)
    np.testing.assert_array_equal(boxes_to_input(boxes, shape, img_size), want)


def test_image_resize_is_sams():
    from segment_anything.utils.transforms import ResizeLongestSide

    rgb = np.random.default_rng(1).integers(0, 256, size=(37, 90, 3), dtype=np.uint8)
    out = resize_image(rgb, 256)
    assert out.shape == (*input_size((37, 90), 256), 3)
    np.testing.assert_array_equal(out, ResizeLongestSide(256).apply_image(rgb))
