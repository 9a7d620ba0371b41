"""Object-scale views: which boxes get a view, the windows, and the Predictor's use of them.

The Predictor's zoomed results are checked against the same decode done by hand on the
window's pixels with a Predictor that never zooms (a swapped row/col, a missing offset or a
wrong frame for ``mask_input`` would all differ). Quality on real nuclei is held by
tests/test_real_data.py.
"""

import numpy as np
import pytest

from napari_devosam.engine import zoom as Z
from napari_devosam.engine.predictor import Predictor
from napari_devosam.testing import tiny_sam

SHAPE = (300, 420)  # not square: catches swapped row/col
INPUT = 256  # tiny_sam's input frame


def _plane(seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    img = rng.integers(0, 400, size=SHAPE).astype(np.float64)
    for r, c in [(40, 60), (42, 68), (200, 330), (150, 200)]:
        img += ((yy - r) ** 2 + (xx - c) ** 2 < 8**2) * 3000
    img += ((yy - 150) ** 2 + (xx - 300) ** 2 < 60**2) * 1500
    return img.astype(np.uint16)


SMALL = [(32, 52, 48, 68), (34, 60, 50, 76), (192, 322, 208, 338)]
LARGE = (90, 240, 210, 360)


@pytest.fixture(scope="module")
def sam():
    return tiny_sam(seed=3)


def _by_hand(sam, plane, window, **prompt):
    """Decode ``prompt`` (plane coordinates) on the window's pixels, pasted into the plane."""
    ref = Predictor(sam, cache_dir=None, zoom=False)
    ref.set_image(Z.crop(plane, window))
    shift = np.array(window[:2], dtype=float)
    kw = dict(prompt)
    if kw.get("box") is not None:
        kw["box"] = np.asarray(kw["box"], float) - np.tile(shift, 2)
    if kw.get("points") is not None:
        kw["points"] = np.asarray(kw["points"], float) - shift
    masks, scores, logits = ref.predict(**kw)
    return Z.paste(masks, window, plane.shape), scores, logits


def test_large_boxes_use_the_whole_plane_small_ones_get_views():
    whole, views = Z.plan_views(np.array([LARGE, *SMALL], float), SHAPE, INPUT)
    assert whole == [0]
    members = sorted(i for v in views for i in v.members)
    assert members == [1, 2, 3]
    # the two neighbours share one view; the far one has its own
    assert sorted(len(v.members) for v in views) == [1, 2]


def test_windows_are_square_inside_the_plane_and_hold_their_boxes():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 280, size=(40, 2))
    sides = rng.uniform(4, 20, size=(40, 1))
    boxes = np.concatenate([corners, corners + sides], axis=1)
    boxes[:, [1, 3]] *= 1.4
    whole, views = Z.plan_views(boxes, SHAPE, INPUT)
    assert not whole
    seen = [i for v in views for i in v.members]
    assert sorted(seen) == list(range(40))
    for v in views:
        r0, c0, r1, c1 = v.window
        assert 0 <= r0 < r1 <= SHAPE[0] and 0 <= c0 < c1 <= SHAPE[1]
        assert r1 - r0 == c1 - c0
        for i in v.members:
            b = boxes[i]
            assert r0 <= b[0] and b[2] < r1 and c0 <= b[1] and b[3] < c1


def test_window_is_shifted_into_the_plane_not_cut():
    assert Z.window_at((5, 410), 64, SHAPE) == (0, 356, 64, 420)
    assert Z.window_at((150, 200), 1000, SHAPE) == (0, 0, 300, 420)


def test_box_side_sets_the_window_side():
    # a 16 px box in a 420 px plane spans ~10 px of a 256 px input: window 16 * 256 / 96
    assert Z.ideal_window_side((0, 0, 15, 15), SHAPE, INPUT) == round(16 * INPUT / Z.TARGET)
    assert Z.ideal_window_side(LARGE, SHAPE, INPUT) is None
    assert Z.ideal_window_side((0, 0, 1, 1), SHAPE, INPUT) == Z.MIN_WINDOW


def test_zoomed_box_equals_the_decode_on_its_window(sam):
    plane = _plane()
    pred = Predictor(sam, cache_dir=None, zoom=True)
    pred.set_image(plane)
    box = np.array(SMALL[2], float)
    masks, scores, logits = pred.predict(box=box, multimask=True)
    side = Z.ideal_window_side(box, SHAPE, INPUT)
    window = Z.window_at(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), side, SHAPE)
    ref_masks, ref_scores, ref_logits = _by_hand(sam, plane, window, box=box, multimask=True)
    np.testing.assert_array_equal(masks, ref_masks)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-5)


def test_logits_are_in_the_whole_frame_whatever_came_between(sam):
    """A view's logits come back in the whole plane's frame: fed back after prompts on other
    objects (another frame), the refinement is the same as straight after."""
    plane = _plane()
    pred = Predictor(sam, cache_dir=None, zoom=True)
    pred.set_image(plane)
    box = np.array(SMALL[2], float)
    masks, _, logits = pred.predict(box=box)
    side = Z.ideal_window_side(box, SHAPE, INPUT)
    window = Z.window_at(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), side, SHAPE)
    _, _, ref_logits = _by_hand(sam, plane, window, box=box)
    pts = np.array([[200.0, 330.0]])
    straight, s1, _ = pred.predict(box=box, points=pts, point_labels=[1], mask_input=logits[0])
    pred.predict(box=LARGE)  # the whole plane's frame
    pred.predict(box=SMALL[0])  # another view
    after, s2, _ = pred.predict(box=box, points=pts, point_labels=[1], mask_input=logits[0])
    np.testing.assert_array_equal(straight, after)
    np.testing.assert_allclose(s1, s2)
    # and it is the refinement with the view's own logits (nothing lost on the way)
    ref, _, _ = _by_hand(sam, plane, window, box=box, points=pts, point_labels=[1],
                         mask_input=ref_logits[0])
    np.testing.assert_array_equal(straight, ref)
    # a click-only refinement is decoded in the view around the previous mask
    again, _, _ = pred.predict(points=pts, point_labels=[1], mask_input=logits[0])
    assert again.shape == (1, *SHAPE)


def test_a_click_is_inside_its_best_mask_or_ranked_last(sam):
    plane = _plane()
    pred = Predictor(sam, cache_dir=None, zoom=True)
    pred.set_image(plane)
    for click in [(40, 60), (200, 330), (150, 300), (5, 5), (290, 410)]:
        masks, scores, _ = pred.predict(points=[click], multimask=True)
        best = int(np.argmax(scores))
        holds = masks[:, click[0], click[1]]
        if holds.any():
            assert holds[best]
        else:
            assert (scores < 0.5).all()  # every candidate ranked 1 lower


def test_predict_boxes_decodes_each_group_in_its_view(sam):
    plane = _plane(1)
    pred = Predictor(sam, cache_dir=None, zoom=True)
    pred.set_image(plane)
    boxes = np.array([LARGE, *SMALL], float)
    masks, scores = pred.predict_boxes(boxes)
    whole, views = Z.plan_views(boxes, SHAPE, INPUT)
    flat = Predictor(sam, cache_dir=None, zoom=False)
    flat.set_image(plane)
    big, big_score, _ = flat.predict(box=boxes[0])
    np.testing.assert_array_equal(masks[0], big[0])
    for v in views:
        for i in v.members:
            ref, ref_score, _ = _by_hand(sam, plane, v.window, box=boxes[i])
            np.testing.assert_array_equal(masks[i], ref[0])
            np.testing.assert_allclose(scores[i], ref_score[0], rtol=1e-5, atol=1e-5)


def test_without_the_planes_pixels_nothing_zooms(sam):
    plane = _plane()
    pred = Predictor(sam, cache_dir=None, zoom=True)
    emb = pred.set_image(plane)
    flat = Predictor(sam, cache_dir=None, zoom=False)
    flat.set_image(plane)
    pred.set_embedding(emb)  # pixels not given
    got, _ = pred.predict_boxes(np.array(SMALL, float))
    ref, _ = flat.predict_boxes(np.array(SMALL, float))
    np.testing.assert_array_equal(got, ref)
    with pytest.raises(ValueError, match="does not match"):
        pred.set_embedding(emb, plane[:10])


def test_zoom_auto_follows_the_encoder_size(sam):
    assert Predictor(sam, cache_dir=None).zoom is True
    assert Z.wanted(object()) is False
    with pytest.raises(ValueError, match="zoom must be"):
        Predictor(sam, cache_dir=None, zoom="yes")


def test_seeded_views_give_proposals_in_plane_coordinates(sam):
    from napari_devosam.automatic.decoding import PromptDecoder
    from napari_devosam.automatic.seeded import seeded_in_views, seeded_proposals
    from napari_devosam.automatic.seeds import Seeds
    from napari_devosam.engine.embeddings import embed_plane

    plane = _plane()
    boxes = np.array([LARGE, *SMALL], float)
    points = (boxes[:, :2] + boxes[:, 2:]) / 2
    seeds = Seeds(points, boxes, ["test"] * 4)
    dec = PromptDecoder(sam, embed_plane(sam, plane))
    zoomed = seeded_in_views(dec, plane, None, seeds)
    flat = seeded_proposals(dec, seeds)
    by_point = {tuple(p.prompt["point"]): p for p in zoomed}
    assert set(by_point) <= {tuple(p) for p in points}
    for p in zoomed:
        r0, c0, r1, c1 = p.box
        assert 0 <= r0 < r1 <= SHAPE[0] and 0 <= c0 < c1 <= SHAPE[1]
        assert p.mask.shape == (r1 - r0, c1 - c0)
    # the large seed is decoded on the whole plane, exactly as without views
    big = [p for p in flat if p.prompt["box"] == [float(v) for v in LARGE]]
    big_z = [p for p in zoomed if p.prompt["box"] == [float(v) for v in LARGE]]
    assert len(big) == len(big_z)
    for a, b in zip(big, big_z, strict=True):
        assert a.box == b.box and np.array_equal(a.mask, b.mask)


def _dense_boxes(n=120, seed=0):
    """``n`` small boxes scattered over ``SHAPE`` (sides 6-14 px)."""
    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, [SHAPE[0] - 15, SHAPE[1] - 15], size=(n, 2))
    sides = rng.uniform(6, 14, size=(n, 1))
    return np.concatenate([corners, corners + sides], axis=1)


def test_packed_views_hold_every_small_box_once_under_the_sharing_rule():
    boxes = np.concatenate([[LARGE], _dense_boxes()])
    whole, views = Z.pack_views(boxes, SHAPE, INPUT)
    ref_whole, ref_views = Z.plan_views(boxes, SHAPE, INPUT)
    assert whole == ref_whole == [0]
    seen = sorted(i for v in views for i in v.members)
    assert seen == list(range(1, len(boxes)))
    assert len(views) < len(ref_views)  # the point of packing
    for v in views:
        r0, c0, r1, c1 = v.window
        side = r1 - r0
        assert 0 <= r0 < r1 <= SHAPE[0] and 0 <= c0 < c1 <= SHAPE[1] and c1 - c0 == side
        pad = Z.PACK_MARGIN * side
        for i in v.members:
            b = boxes[i]
            ideal = Z.ideal_window_side(b, SHAPE, INPUT)
            if len(v.members) > 1:
                assert 1 / Z.SIZE_RATIO <= ideal / side <= Z.SIZE_RATIO
                assert (b[0] >= r0 + pad or r0 == 0) and (b[1] >= c0 + pad or c0 == 0)
                assert (b[2] + 1 <= r1 - pad or r1 == SHAPE[0])
                assert (b[3] + 1 <= c1 - pad or c1 == SHAPE[1])
            assert r0 <= b[0] and b[2] < r1 and c0 <= b[1] and b[3] < c1


def test_packing_is_deterministic_and_handles_no_small_boxes():
    boxes = _dense_boxes(40, seed=2)
    a = Z.pack_views(boxes, SHAPE, INPUT)
    b = Z.pack_views(boxes.copy(), SHAPE, INPUT)
    assert a[0] == b[0] and [(v.window, v.members) for v in a[1]] == [
        (v.window, v.members) for v in b[1]]
    assert Z.pack_views(np.array([LARGE], float), SHAPE, INPUT) == ([0], [])
    assert Z.pack_views(np.zeros((0, 4)), SHAPE, INPUT) == ([], [])


def test_views_embedded_in_batches_equal_one_by_one(sam):
    plane = _plane()
    windows = [(0, 0, 64, 64), (100, 200, 180, 280), (10, 300, 74, 364), (250, 0, 300, 90)]
    got = Z.embed_views(sam, plane, windows, batch=2)
    for w, emb in zip(windows, got, strict=True):
        ref = Z.embed_view(sam, plane, w)
        assert emb.original_size == ref.original_size == (w[2] - w[0], w[3] - w[1])
        assert emb.input_size == ref.input_size
        np.testing.assert_allclose(emb.features, ref.features, rtol=1e-4, atol=1e-4)


def test_views_go_one_per_pass_on_a_cpu(sam):
    assert Z.view_batch(sam) == 1  # batching measured no gain with one CPU thread


def test_a_batch_of_images_must_share_the_input_frame(sam):
    from napari_devosam.engine.embeddings import compute_embeddings

    rgbs = [np.zeros((40, 40, 3), np.uint8), np.zeros((90, 90, 3), np.uint8)]
    embs = compute_embeddings(sam, rgbs)
    assert [e.original_size for e in embs] == [(40, 40), (90, 90)]
    with pytest.raises(ValueError, match="same input size"):
        compute_embeddings(sam, [rgbs[0], np.zeros((40, 80, 3), np.uint8)])


def test_seeded_views_equal_the_decode_in_each_packed_view(sam):
    from napari_devosam.automatic.decoding import PromptDecoder
    from napari_devosam.automatic.seeded import _subset, seeded_in_views, seeded_proposals
    from napari_devosam.automatic.seeds import Seeds
    from napari_devosam.engine.embeddings import embed_plane

    plane = _plane()
    boxes = np.array(SMALL, float)
    seeds = Seeds((boxes[:, :2] + boxes[:, 2:]) / 2, boxes, ["test"] * len(boxes))
    dec = PromptDecoder(sam, embed_plane(sam, plane))
    got = {tuple(p.prompt["point"]): p for p in seeded_in_views(dec, plane, None, seeds)}
    _, views = Z.pack_views(boxes, SHAPE, INPUT)
    assert views and max(len(v.members) for v in views) == 2  # the neighbours share one
    for v in views:
        view_dec = PromptDecoder(sam, Z.embed_view(sam, plane, v.window))
        for p in seeded_proposals(view_dec, _subset(seeds, v.members, v.offset)):
            dr, dc = (int(x) for x in v.offset)
            key = (p.prompt["point"][0] + dr, p.prompt["point"][1] + dc)
            q = got[key]
            assert q.box == (p.box[0] + dr, p.box[1] + dc, p.box[2] + dr, p.box[3] + dc)
            np.testing.assert_array_equal(q.mask, p.mask)
