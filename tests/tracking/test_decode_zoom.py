"""Tracking's batch decoder with zoomed views: small objects decode in their view (as the
Predictor does), large ones on the whole plane, and every returned low-res map is in the whole
plane's frame so it can be fed back as ``mask_input``."""

import numpy as np
import pytest
import torch

from napari_devosam.engine import zoom as Z
from napari_devosam.engine.decoding import Decoder
from napari_devosam.engine.embeddings import embed_plane
from napari_devosam.engine.predictor import Predictor
from napari_devosam.testing import tiny_sam
from napari_devosam.tracking.decode import BatchDecoder

SHAPE = (300, 420)


def _plane():
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    img = rng.integers(0, 400, size=SHAPE).astype(np.float64)
    for r, c in [(40, 60), (200, 330)]:
        img += ((yy - r) ** 2 + (xx - c) ** 2 < 8**2) * 3000
    img += ((yy - 150) ** 2 + (xx - 300) ** 2 < 60**2) * 1500
    return img.astype(np.uint16)


BOXES = np.array([(90, 240, 210, 360), (32, 52, 48, 68), (192, 322, 208, 338)], float)


@pytest.fixture(scope="module")
def sam():
    return tiny_sam(seed=4)


def test_small_objects_decode_in_their_view(sam):
    plane = _plane()
    emb = embed_plane(sam, plane)
    dec = BatchDecoder(sam, zoom=True)
    dec.set_embedding(emb, plane)
    logits, low_res, iou = dec.decode(BOXES, (BOXES[:, :2] + BOXES[:, 2:]) / 2, [None] * 3)
    assert logits.shape == (3, *SHAPE) and iou.shape == (3,)
    assert low_res.shape == (3, 1, *emb.features.shape[-2:] * np.array(4))
    whole, views = Z.plan_views(BOXES, SHAPE, sam.image_encoder.img_size)
    assert whole == [0] and sorted(i for v in views for i in v.members) == [1, 2]
    flat = BatchDecoder(sam, zoom=False)
    flat.set_embedding(emb, plane)
    ref_logits, _, ref_iou = flat.decode(BOXES[:1], (BOXES[:1, :2] + BOXES[:1, 2:]) / 2, [None])
    torch.testing.assert_close(logits[0], ref_logits[0])
    for view in views:
        ref = Predictor(sam, cache_dir=None, zoom=False)
        ref.set_image(Z.crop(plane, view.window))
        for i in view.members:
            shift = np.array(view.window[:2], float)
            box = BOXES[i] - np.tile(shift, 2)
            m, s, _ = ref.predict(box=box, points=[(box[:2] + box[2:]) / 2])
            got = (logits[i] > 0).numpy()
            r0, c0, r1, c1 = view.window
            inside = got[r0:r1, c0:c1]
            # Predictor also drops pixels beyond 2 px outside the box; tracking clips later
            assert np.array_equal(inside & m[0], m[0])
            assert not got.any() or got[r0:r1, c0:c1].sum() == got.sum()
            np.testing.assert_allclose(iou[i], s[0], rtol=1e-4, atol=1e-4)


def test_low_res_maps_come_back_in_the_whole_frame(sam):
    """A smooth object's plane logits -> whole-frame low-res -> SAM's upscale: the same
    object (a wrong scale, offset or padding would move or shrink it)."""
    plane = _plane()
    door = Decoder(sam)
    door.set_embedding(embed_plane(sam, plane))
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    discs = [(40, 60, 12), (200, 330, 30), (150, 300, 60)]
    field = torch.tensor(np.stack([r - np.hypot(yy - cr, xx - cc) for cr, cc, r in discs]),
                         dtype=torch.float32)
    side = 4 * door.embedding.features.shape[-1]
    back = Z.whole_frame_low_res(field, sam.image_encoder.img_size, side)
    assert back.shape == (3, 1, side, side)
    again = door.upscale(back)[:, 0]
    for a, b in zip((field > 0).numpy(), (again > 0).numpy(), strict=True):
        assert (a & b).sum() / (a | b).sum() >= 0.9
