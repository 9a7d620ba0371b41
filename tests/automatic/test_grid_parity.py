"""Grid mode against ``segment_anything.SamAutomaticMaskGenerator`` with the same parameters.

A tiny random SAM (``napari_devosam.testing.tiny_sam``) gives logits of ~0.1 and checkerboard
masks that no stability threshold keeps. For the comparison its hypernetwork output is scaled
x30 and its upscaling transposed convolutions share one tap (smooth masks), so that tens of
masks pass the filters. Both generators use this same model and the same image embedding.
Random-weight masks are large (most of the plane), so the comparison is made per prompt
point (each stock mask must be matched by one of ours from the same grid point) with box NMS
off (``box_nms_thresh=1``: every filtered mask is compared), then once with stock NMS.
"""

import numpy as np
import pytest
import torch

from napari_devosam.automatic.decoding import PromptDecoder
from napari_devosam.automatic.grid import GridParams, grid_proposals, point_grid_rc
from napari_devosam.engine.embeddings import embed_plane
from napari_devosam.engine.image import to_rgb
from napari_devosam.synthetic.phantoms import make_embryo
from napari_devosam.testing import tiny_sam

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def sam():
    sam = tiny_sam(seed=0)
    with torch.no_grad():
        for mlp in sam.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(30.0)
            mlp.layers[-1].bias.mul_(30.0)
        for m in sam.mask_decoder.output_upscaling:
            if isinstance(m, torch.nn.ConvTranspose2d):
                m.weight.copy_(m.weight[:, :, :1, :1].expand_as(m.weight))
    return sam


@pytest.fixture(scope="module")
def plane():
    return make_embryo((96, 128), 5, seed=4)[0]


def stock_masks(sam, plane, **params):
    from segment_anything import SamAutomaticMaskGenerator

    gen = SamAutomaticMaskGenerator(sam, crop_n_layers=0, **params)
    return gen.generate(to_rgb(plane))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from pycocotools import mask as mask_utils

    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    enc = [mask_utils.encode(np.asfortranarray(np.moveaxis(m, 0, -1).astype(np.uint8)))
           for m in (a, b)]
    return np.asarray(mask_utils.iou(enc[0], enc[1], [0] * len(b)))


@pytest.mark.parametrize("pred_iou, stability, nms", [(0.0, 0.8, 1.0), (0.0, 0.9, 1.0),
                                                      (0.0, 0.8, 0.7)])
def test_grid_masks_match_stock(sam, plane, pred_iou, stability, nms):
    params = dict(points_per_side=8, pred_iou_thresh=pred_iou, stability_score_thresh=stability,
                  stability_score_offset=1.0, box_nms_thresh=nms)
    stock = stock_masks(sam, plane, points_per_batch=64, **params)
    ours = grid_proposals(PromptDecoder(sam, embed_plane(sam, plane)),
                          GridParams(points_per_batch=16, **params))
    assert len(stock) >= (1 if nms < 1 else 5), "the test model must give masks to compare"
    a = np.stack([m["segmentation"] for m in stock])
    b = np.stack([q.full_mask(plane.shape) for q in ours]) if ours else np.zeros((0, *a.shape[1:]))
    ious = iou_matrix(a, b)
    if nms == 1.0:  # compare only masks from the same prompt point
        sp = np.array([m["point_coords"][0][::-1] for m in stock])  # (x, y) -> (row, col)
        op = np.array([q.prompt["point"] for q in ours])
        same = np.all(np.isclose(sp[:, None], op[None], atol=1e-6), axis=-1)
        ious = np.where(same, ious, 0.0)
    matched = ious.max(axis=1) >= 0.9
    assert matched.all(), f"{(~matched).sum()} of {len(stock)} stock masks unmatched"
    # the low-res stability filter may flip masks at the threshold; counts stay close
    assert abs(len(ours) - len(stock)) <= max(2, 0.15 * len(stock))


def test_point_grid_is_stock_grid():
    from segment_anything.utils.amg import build_point_grid

    xy = build_point_grid(7) * np.array([[130, 90]])  # (x, y) on a 90 x 130 plane
    np.testing.assert_allclose(point_grid_rc(7, (90, 130)), xy[:, ::-1])
