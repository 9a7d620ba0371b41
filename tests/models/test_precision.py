"""Encoder precision: bf16 is opt-in, reaches the encoder, keeps masks within IoU 0.98 of fp32's,
and is cached apart from fp32."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import napari_devosam as ds
from napari_devosam.engine.embedding_cache import signature
from napari_devosam.engine.embeddings import compute_embedding
from napari_devosam.models import precision as prec
from napari_devosam.synthetic.phantoms import make_embryo
from napari_devosam.testing import tiny_sam

MASK_IOU_FLOOR = 0.98  # the parity bar; measured 0.992-0.999 per object


def _box_masks(sam, plane, boxes, precision):
    prec.set_precision(sam, precision)
    predictor = ds.Predictor(sam, cache_dir=None)
    predictor.set_image(plane)
    return predictor.predict_boxes(boxes)[0]


def _cell_boxes(labels):
    boxes = []
    for i in np.unique(labels)[1:]:
        r, c = np.nonzero(labels == i)
        boxes.append((r.min(), c.min(), r.max(), c.max()))
    return np.array(boxes)


@pytest.mark.parametrize("model", ["embryo_tiny", "random tiny"])
@pytest.mark.parametrize("kind,dtype,seed", [("membrane", np.uint16, 10_000_201),
                                             ("nuclei", np.uint8, 10_000_202)])
def test_bf16_masks_match_fp32(model, kind, dtype, seed):
    if model == "embryo_tiny":
        sam = ds.load_model("embryo_tiny", device="cpu", progress=False)
    else:
        sam = tiny_sam(seed=0).eval()
    plane, labels = make_embryo((300, 380), 10, seed=seed, dtype=dtype, kind=kind)
    boxes = _cell_boxes(labels)
    fp32 = _box_masks(sam, plane, boxes, "fp32")
    bf16 = _box_masks(sam, plane, boxes, "bf16")
    ious = [(a & b).sum() / max(1, (a | b).sum()) for a, b in zip(fp32, bf16, strict=True)]
    assert min(ious) >= MASK_IOU_FLOOR, ious
    assert all(m.sum() > 50 for m in fp32)  # real objects, not empty masks agreeing


def test_bf16_runs_the_encoder_in_bf16_and_returns_fp32_features():
    sam = tiny_sam(seed=0).eval()
    seen = []
    qkv = sam.image_encoder.blocks[0].attn.qkv
    hook = qkv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    rgb = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    prec.set_precision(sam, "bf16")
    emb = compute_embedding(sam, rgb)
    prec.set_precision(sam, "fp32")
    compute_embedding(sam, rgb)
    hook.remove()
    assert seen == [torch.bfloat16, torch.float32]
    assert emb.features.dtype == torch.float32


def test_precisions_have_their_own_cache_keys():
    sam = tiny_sam(seed=0)
    plane = np.arange(64 * 80, dtype=np.uint16).reshape(64, 80)
    before = signature(plane, sam)
    prec.set_precision(sam, "fp32")
    assert signature(plane, sam) == before  # fp32 keys are unchanged from earlier versions
    prec.set_precision(sam, "bf16")
    assert signature(plane, sam) != before


def test_auto_is_fp32_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv(prec.PRECISION_ENV, raising=False)
    assert prec.resolve_precision("auto") == prec.resolve_precision(None) == "fp32"
    monkeypatch.setenv(prec.PRECISION_ENV, "BF16")
    assert prec.resolve_precision("auto") == "bf16"
    assert prec.resolve_precision("fp32") == "fp32"  # an explicit choice wins
    monkeypatch.setenv(prec.PRECISION_ENV, "int8")
    with pytest.raises(ValueError, match="int8.*DEVOSAM_PRECISION.*fp32, bf16"):
        prec.resolve_precision("auto")


def test_unknown_precision_is_refused_by_name():
    with pytest.raises(ValueError, match="'fp16'.*auto, fp32, bf16"):
        ds.load_model("embryo_tiny", device="cpu", progress=False, precision="fp16")


def test_load_model_sets_the_precision_and_warns_without_bf16_hardware(monkeypatch):
    sam = ds.load_model("embryo_tiny", device="cpu", progress=False, precision="bf16")
    assert prec.precision_of(sam) == "bf16"
    assert prec.precision_of(ds.load_model("embryo_tiny", device="cpu", progress=False)) == "fp32"
    monkeypatch.setattr(prec, "cpu_has_fast_bf16", lambda: False)
    with pytest.warns(RuntimeWarning, match="no bf16 hardware"):
        ds.load_model("embryo_tiny", device="cpu", progress=False, precision="bf16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds.load_model("embryo_tiny", device="cpu", progress=False, precision="fp32")


def test_bf16_is_refused_where_it_cannot_run():
    with pytest.raises(ValueError, match="not on mps"):
        prec.check_supported("bf16", torch.device("mps"))
    assert prec.check_supported("fp32", torch.device("mps")) is None
