"""Predictor: parity with segment_anything.SamPredictor, napari coordinates, bad prompts."""

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

from napari_devosam.engine.embeddings import EmbeddingCache, PlaneEmbedding
from napari_devosam.engine.image import to_rgb
from napari_devosam.engine.predictor import Predictor
from napari_devosam.testing import random_sam, tiny_sam

SHAPE = (90, 130)  # deliberately not square: catches swapped row/col


def _plane(seed=0, shape=SHAPE):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    blob = ((yy - 40) ** 2 + (xx - 70) ** 2 < 25**2) * 3000
    return (blob + rng.integers(0, 500, size=shape)).astype(np.uint16)


def _iou(a, b):
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else np.logical_and(a, b).sum() / union


def _stock_from(sam, emb: PlaneEmbedding):
    stock = SamPredictor(sam)
    stock.features = emb.features
    stock.original_size = emb.original_size
    stock.input_size = emb.input_size
    stock.is_image_set = True
    return stock


@pytest.fixture(scope="module")
def tiny():
    sam = tiny_sam()
    pred = Predictor(sam, zoom=False)  # stock SAM's results (zoomed views: test_zoom.py)
    pred.set_image(_plane())
    stock = SamPredictor(sam)
    stock.set_image(to_rgb(_plane()))
    return pred, stock


def _stock_predict(stock, box=None, points=None, labels=None, mask=None, multimask=False):
    """SamPredictor with our (row, col) prompts converted by hand to its (x, y)."""
    kw = {"multimask_output": multimask}
    if box is not None:
        r0, c0, r1, c1 = box
        kw["box"] = np.array([c0, r0, c1, r1], dtype=np.float64)
    if points is not None:
        kw["point_coords"] = np.array([[c, r] for r, c in points], dtype=np.float64)
        kw["point_labels"] = np.array(labels)
    if mask is not None:
        kw["mask_input"] = mask[None]
    masks, scores, logits = stock.predict(**kw)
    if box is not None:  # our documented box rule: nothing beyond 2 px outside the box
        masks = masks & _box_window(masks.shape[-2:], box)
    return masks, scores, logits


def _box_window(shape, box, margin=2):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    r0, c0, r1, c1 = box
    return ((rows >= np.floor(r0) - margin) & (rows <= np.ceil(r1) + margin)
            & (cols >= np.floor(c0) - margin) & (cols <= np.ceil(c1) + margin))


CASES = {
    "box": dict(box=(10, 30, 70, 110)),
    "points": dict(points=[(40, 70), (5, 5)], labels=[1, 0]),
    "box+points": dict(box=(10, 30, 70, 110), points=[(40, 70), (60, 100)], labels=[1, 0]),
    "one point": dict(points=[(40, 70)], labels=[1]),
}


@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_sampredictor_tiny(tiny, case, multimask):
    pred, stock = tiny
    kw = CASES[case]
    masks, scores, logits = pred.predict(
        box=kw.get("box"), points=kw.get("points"), point_labels=kw.get("labels"),
        multimask=multimask,
    )
    ref_masks, ref_scores, ref_logits = _stock_predict(stock, multimask=multimask, **kw)
    C = 3 if multimask else 1
    assert masks.shape == (C, *SHAPE) and masks.dtype == bool
    assert scores.shape == (C,) and scores.dtype == np.float32
    assert logits.shape == (C, 64, 64) and logits.dtype == np.float32
    for m, r in zip(masks, ref_masks, strict=True):
        assert _iou(m, r) >= 0.99
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-3, atol=1e-3)


def test_alternating_one_and_three_mask_clicks_give_fresh_results(tiny):
    pred, _ = tiny
    box, pts = CASES["box+points"]["box"], CASES["box+points"]["points"]
    three = pred.predict(box=box, multimask=True)
    one = pred.predict(points=pts, point_labels=[1, 0])
    three_again = pred.predict(box=box, multimask=True)
    one_again = pred.predict(points=pts, point_labels=[1, 0])
    for a, b in ((three, three_again), (one, one_again)):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    assert three[0].shape[0] == 3 and one[0].shape[0] == 1
    assert not np.shares_memory(three[0], one[0])


def test_refinement_with_previous_logits(tiny):
    pred, stock = tiny
    box, pts = (10, 30, 70, 110), [(40, 70)]
    _, _, logits = pred.predict(box=box)
    masks, scores, _ = pred.predict(box=box, points=pts, point_labels=[1], mask_input=logits)
    _, _, ref_logits = _stock_predict(stock, box=box)
    ref_masks, ref_scores, _ = _stock_predict(stock, box=box, points=pts, labels=[1],
                                              mask=ref_logits[0])
    assert _iou(masks[0], ref_masks[0]) >= 0.99
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-4, atol=1e-4)
    # (4h, 4w) and (1, 4h, 4w) are both accepted
    again, _, _ = pred.predict(box=box, points=pts, point_labels=[1], mask_input=logits[0])
    np.testing.assert_array_equal(again, masks)


def test_predict_boxes_matches_single_predictions(tiny):
    pred, _ = tiny
    boxes = np.array([(10, 30, 70, 110), (0, 0, 40, 40), (50, 60, 89, 129)] * 7, dtype=float)
    masks, scores = pred.predict_boxes(boxes)  # 21 boxes: more than one chunk
    assert masks.shape == (21, *SHAPE) and scores.shape == (21,)
    for box, m, s in zip(boxes, masks, scores, strict=True):
        single, single_score, _ = pred.predict(box=box)
        assert _iou(m, single[0]) >= 0.99
        np.testing.assert_allclose(s, single_score[0], rtol=1e-4, atol=1e-4)
    empty_masks, empty_scores = pred.predict_boxes(np.zeros((0, 4)))
    assert empty_masks.shape == (0, *SHAPE) and empty_scores.shape == (0,)


def test_box_partly_outside_is_clipped(tiny):
    pred, _ = tiny
    outside, _, _ = pred.predict(box=(-20, 100, 50, 400))
    clipped, _, _ = pred.predict(box=(0, 100, 50, SHAPE[1] - 1))
    np.testing.assert_array_equal(outside, clipped)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(), "no prompt"),
        (dict(points=np.zeros((0, 2))), "no prompt"),
        (dict(box=(100, 0, 200, 50)), "outside"),
        (dict(box=(-30, -30, -1, -1)), "outside"),
        (dict(box=(10, 10, 10, 50)), "zero area"),
        (dict(box=(50, 10, 10, 50)), "inverted"),
        (dict(box=(np.nan, 10, 20, 50)), "finite"),
        (dict(box=(1, 2, 3)), "4 numbers"),
        (dict(points=[(90, 5)]), "outside"),
        (dict(points=[(5, -1)]), "outside"),
        (dict(points=[(5, 5)], point_labels=[2]), "labels"),
        (dict(points=[(5, 5), (6, 6)], point_labels=[1]), "labels"),
        (dict(box=(10, 30, 70, 110), mask_input=np.zeros((32, 32))), "mask_input"),
    ],
)
def test_bad_prompts_raise_value_error(tiny, kwargs, message):
    pred, _ = tiny
    with pytest.raises(ValueError, match=message):
        pred.predict(**kwargs)


def test_bad_batch_boxes_raise_before_decoding(tiny):
    pred, _ = tiny
    with pytest.raises(ValueError, match="outside"):
        pred.predict_boxes([(10, 30, 70, 110), (200, 200, 300, 300)])
    with pytest.raises(ValueError, match="shape"):
        pred.predict_boxes(np.zeros((2, 3)))


def test_predict_before_set_image():
    pred = Predictor(tiny_sam())
    assert not pred.is_image_set and pred.original_size is None and pred.embedding is None
    with pytest.raises(RuntimeError, match="set_image"):
        pred.predict(box=(0, 0, 10, 10))
    with pytest.raises(RuntimeError, match="set_image"):
        pred.predict_boxes([(0, 0, 10, 10)])


def test_set_image_uses_cache_and_to_rgb(tmp_path):
    sam = tiny_sam()
    calls = []
    sam.image_encoder.register_forward_hook(lambda m, i, o: calls.append(1))
    plane = _plane()
    pred = Predictor(sam, cache_dir=tmp_path)
    pred.set_image(plane)
    assert pred.is_image_set and pred.original_size == SHAPE
    pred.set_image(plane.copy())
    assert len(calls) == 1
    Predictor(sam, cache_dir=tmp_path).set_image(plane)  # a new session: from disk
    assert len(calls) == 1
    rgb_pred = Predictor(sam, cache=EmbeddingCache(max_items=0))
    rgb_pred.set_image(to_rgb(plane))  # the uint8 RGB the plane becomes
    torch.testing.assert_close(rgb_pred.embedding.features, pred.embedding.features)


def test_set_embedding_checks_shape():
    pred = Predictor(tiny_sam())
    bad = PlaneEmbedding(torch.zeros(1, 256, 64, 64), (256, 256), (256, 256))
    with pytest.raises(ValueError, match="does not fit"):
        pred.set_embedding(bad)


def test_decoder_changed_uses_new_weights_and_keeps_embedding():
    sam, other = tiny_sam(), tiny_sam(seed=3)
    other.image_encoder.load_state_dict(sam.image_encoder.state_dict())
    pred = Predictor(sam)
    pred.set_image(_plane())
    emb = pred.embedding
    box = (10, 30, 70, 110)
    before = pred.predict(box=box)[2]
    sam.mask_decoder.load_state_dict(other.mask_decoder.state_dict())
    sam.prompt_encoder.load_state_dict(other.prompt_encoder.state_dict())
    pred.decoder_changed()
    after = pred.predict(box=box)[2]
    assert pred.embedding is emb
    ref = Predictor(other)
    ref.set_embedding(emb)
    np.testing.assert_allclose(after, ref.predict(box=box)[2], rtol=1e-4, atol=1e-4)
    assert not np.allclose(before, after)


def test_model_name_goes_through_load_model(monkeypatch):
    import napari_devosam.models.loading as model_loading

    seen = {}

    def fake_load(model, device="auto", decoder=None, precision="auto"):
        seen.update(model=model, device=device, precision=precision)
        return tiny_sam()

    monkeypatch.setattr(model_loading, "load_model", fake_load)
    pred = Predictor("vit_b", device="cpu", precision="bf16")
    assert seen == {"model": "vit_b", "device": "cpu", "precision": "bf16"}
    assert pred.sam.image_encoder.img_size == 256


@pytest.fixture(scope="module")
def vit_b():
    sam = random_sam("vit_b")
    g = torch.Generator().manual_seed(0)
    features = torch.randn(1, 256, 64, 64, generator=g)
    emb = PlaneEmbedding(features, (697, 1024), (512, 752))
    pred = Predictor(sam)
    pred.set_embedding(emb)
    return pred, _stock_from(sam, emb)


VIT_CASES = {
    "box": dict(box=(100, 150, 400, 600)),
    "points": dict(points=[(250, 380), (20, 20)], labels=[1, 0]),
    "box+points": dict(box=(100, 150, 400, 600), points=[(250, 380), (390, 590)], labels=[1, 0]),
}


@pytest.mark.slow
@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("case", list(VIT_CASES))
def test_parity_vit_b(vit_b, case, multimask):
    pred, stock = vit_b
    kw = VIT_CASES[case]
    masks, scores, logits = pred.predict(
        box=kw.get("box"), points=kw.get("points"), point_labels=kw.get("labels"),
        multimask=multimask,
    )
    ref_masks, ref_scores, _ = _stock_predict(stock, multimask=multimask, **kw)
    assert masks.shape == ref_masks.shape == ((3 if multimask else 1), 512, 752)
    assert logits.shape[-2:] == (256, 256)
    for m, r in zip(masks, ref_masks, strict=True):
        assert _iou(m, r) >= 0.99
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-3, atol=1e-3)


@pytest.mark.slow
def test_parity_vit_b_refinement_and_batch(vit_b):
    pred, stock = vit_b
    box, pts = (100, 150, 400, 600), [(250, 380)]
    _, _, logits = pred.predict(box=box)
    masks, scores, _ = pred.predict(box=box, points=pts, point_labels=[1], mask_input=logits)
    _, _, ref_logits = _stock_predict(stock, box=box)
    ref_masks, ref_scores, _ = _stock_predict(stock, box=box, points=pts, labels=[1],
                                              mask=ref_logits[0])
    assert _iou(masks[0], ref_masks[0]) >= 0.99
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-3, atol=1e-3)
    boxes = [(100, 150, 400, 600), (0, 0, 200, 300), (300, 400, 511, 751)]
    bmasks, bscores = pred.predict_boxes(boxes)
    for box, m, s in zip(boxes, bmasks, bscores, strict=True):
        ref_m, ref_s, _ = _stock_predict(stock, box=box)
        assert _iou(m, ref_m[0]) >= 0.99
        np.testing.assert_allclose(s, ref_s[0], rtol=1e-3, atol=1e-3)
