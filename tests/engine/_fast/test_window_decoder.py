"""engine._fast.window_decoder: whole-grid windows are SAM's decoder; smaller windows follow it on
real cells of the shipped model and cost less; geometry of ``window_for``."""

import numpy as np
import pytest
import torch

from napari_devosam.engine._fast.decoder import FastDecoder
from napari_devosam.engine._fast.window_decoder import SIZE_STEP, WindowDecoder, window_for


@pytest.fixture(scope="module")
def sam(one_torch_thread):
    from napari_devosam import load_model

    return load_model("embryo_tiny", device="cpu", progress=False)


@pytest.fixture(scope="module")
def plane(sam):
    """A real phantom plane (membranes, 8 cells) embedded by the model, and its cells' boxes
    in SAM's input frame (x0, y0, x1, y1)."""
    from segment_anything.utils.transforms import ResizeLongestSide

    from napari_devosam.engine.embeddings import embed_plane
    from napari_devosam.synthetic.phantoms import make_embryo

    image, labels = make_embryo((256, 256), 8, seed=10_000_123)
    emb = embed_plane(sam, image)
    boxes = []
    for t in range(1, labels.max() + 1):
        rows, cols = np.nonzero(labels == t)
        boxes.append([cols.min(), rows.min(), cols.max(), rows.max()])
    boxes = ResizeLongestSide(sam.image_encoder.img_size).apply_boxes(np.array(boxes, float),
                                                                       labels.shape)
    return emb.features, torch.as_tensor(boxes, dtype=torch.float32)


def _decoders(sam, features, fast=True):
    full, win = FastDecoder(sam, fast=False), WindowDecoder(sam, fast=fast)
    full.set_image_embedding(features)
    win.set_image_embedding(features)
    return full, win


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
def test_whole_grid_window_is_sams_decoder(sam, plane, multimask, with_mask, fast):
    """Both paths (the fast kernels on crops, the stock modules with fused attention)."""
    features, boxes = plane
    full, win = _decoders(sam, features, fast)
    h, w = features.shape[-2:]
    mask_in = torch.randn((len(boxes), 1, 4 * h, 4 * w), generator=torch.Generator().manual_seed(3))
    mask_in = mask_in if with_mask else None
    points = ((boxes[:, :2] + boxes[:, 2:]) / 2)[:, None]
    labels = torch.ones((len(boxes), 1), dtype=torch.int32)
    ref, ref_iou = full.decode(points, labels, boxes, mask_in, multimask)
    windows = np.tile([0, 0, h], (len(boxes), 1))
    out, iou = win.decode(points, labels, boxes, mask_in, windows, multimask)
    assert out.shape == ref.shape and iou.shape == ref_iou.shape
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-4)
    torch.testing.assert_close(iou, ref_iou, rtol=0, atol=1e-5)


def _iou(a, b):
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)


@pytest.mark.parametrize("context", [0.0, 0.25])
@pytest.mark.parametrize("fast", [True, False])
def test_windowed_masks_follow_sams_on_real_cells(sam, plane, context, fast):
    """Box prompts on the 8 cells of a real embedded plane: inside each box grown by two
    cells, the windowed mask agrees with the whole-grid mask (IoU >= 0.9 for every cell,
    measured 0.945-0.998 with context 0 and 0.25); outside its window no pixel is foreground."""
    features, boxes = plane
    full, win = _decoders(sam, features, fast)
    h = features.shape[-1]
    windows = window_for(boxes.numpy(), (h, h), win.cell, context, min_cells=2)
    assert (windows[:, 2] < h).all()  # the windows really are smaller than the grid
    ref, _ = full.decode(None, None, boxes, None, False)
    out, _ = win.decode(None, None, boxes, None, windows)
    for i, (r, c, s) in enumerate(windows):
        inside = torch.zeros((4 * h, 4 * h), dtype=torch.bool)
        inside[4 * r:4 * (r + s), 4 * c:4 * (c + s)] = True
        assert not (out[i, 0][~inside] > sam.mask_threshold).any()
        x0, y0, x1, y1 = (boxes[i] / win.cell * 4).round().int().tolist()
        region = (slice(max(y0 - 8, 0), y1 + 8), slice(max(x0 - 8, 0), x1 + 8))
        a, b = ref[i, 0][region] > sam.mask_threshold, out[i, 0][region] > sam.mask_threshold
        assert a.sum() > 0
        assert _iou(a, b) >= 0.9, (i, _iou(a, b))


def test_window_for_holds_the_region_inside_the_grid():
    cell = 16.0
    regions = np.array([[0, 0, 40, 30], [900, 950, 1020, 1023], [400, 300, 560, 420],
                        [10, 500, 1000, 520]], float)
    for context in (0.0, 0.25, 1.0):
        win = window_for(regions, (64, 64), cell, context)
        assert win.dtype == np.int64 and win.shape == (4, 3)
        for (x0, y0, x1, y1), (r, c, s) in zip(regions / cell, win, strict=True):
            assert s % SIZE_STEP == 0 or s == 64
            assert r >= 0 and r + s <= 64 and c >= 0 and c + s <= 64
            assert r <= y0 and c <= x0 and r + s >= min(y1, 64) and c + s >= min(x1, 64)
    small = window_for(regions[2:3], (64, 64), cell, 0.0)[0, 2]
    big = window_for(regions[2:3], (64, 64), cell, 1.0)[0, 2]
    assert small < big <= 64
    # a region as long as the grid gets the whole grid
    assert window_for(regions[3:], (64, 64), cell, 0.0)[0].tolist() == [0, 0, 64]
    with pytest.raises(ValueError, match="context"):
        window_for(regions, (64, 64), cell, -0.1)


def test_bad_features_and_no_embedding(sam):
    win = WindowDecoder(sam)
    with pytest.raises(RuntimeError, match="no image embedding"):
        win.decode(None, None, torch.zeros((1, 4)), None, np.array([[0, 0, 4]]))
    with pytest.raises(ValueError, match="shape"):
        win.set_image_embedding(torch.zeros((2, 128, 32, 32)))
    with pytest.raises(ValueError, match="grid"):
        win.set_image_embedding(torch.zeros((1, 128, 16, 16)))
