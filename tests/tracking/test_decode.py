"""tracking.decode.BatchDecoder: windowed decoding on a real plane of the shipped model
follows the whole-embedding decode inside each object's box, and propagation uses it by
default (``PropagationParams.decode_window``)."""

import numpy as np
import pytest

from napari_devosam.synthetic.lineage import make_lineage_timelapse
from napari_devosam.tracking import PropagationParams, Seed, propagate
from napari_devosam.tracking.decode import BatchDecoder
from napari_devosam.tracking.prompts import bbox, crop_iou, grown_box, interior_point
from napari_devosam.tracking.records import Crop
from napari_devosam.utils.progress import drain


@pytest.fixture(scope="module")
def sam(one_torch_thread):
    from napari_devosam import load_model

    return load_model("embryo_tiny", device="cpu", progress=False)


@pytest.fixture(scope="module")
def movie():
    return make_lineage_timelapse(6, (192, 192), 5, seed=10_000_321, kind="membrane")


def _prompts(labels):
    crops = [Crop.from_mask(labels == t) for t in np.unique(labels)[1:]]
    boxes = np.array([grown_box(bbox(c), 0.15, 3.0) for c in crops])
    return boxes, np.array([interior_point(c) for c in crops], float)


def test_windows_follow_the_whole_embedding_inside_each_box(sam, movie):
    from napari_devosam.engine.embeddings import embed_plane

    stack, labels, _ = movie
    boxes, points = _prompts(labels[1])
    whole, windowed = BatchDecoder(sam), BatchDecoder(sam, (0.0, 2), region_margin_px=6.0)
    emb = embed_plane(sam, stack[1])
    for d in (whole, windowed):
        d.set_embedding(emb)
    ref, ref_low, ref_iou = whole.decode(boxes, points, [None] * len(boxes))
    out, low, iou = windowed.decode(boxes, points, list(ref_low))  # with mask inputs too
    ref2, _, _ = whole.decode(boxes, points, list(ref_low))
    assert out.shape == ref.shape and low.shape == ref_low.shape and iou.shape == ref_iou.shape
    h, w = labels.shape[-2:]
    for i, (r0, c0, r1, c1) in enumerate(boxes.round().astype(int)):
        box = (slice(max(r0 - 6, 0), min(r1 + 7, h)), slice(max(c0 - 6, 0), min(c1 + 7, w)))
        a, b = ref2[i][box] > 0, out[i][box] > 0
        assert a.sum() > 0
        assert (a & b).sum() / (a | b).sum() >= 0.9


def test_propagation_decodes_on_windows_by_default_and_whole_on_request(sam, movie):
    stack, labels, _ = movie
    seeds = [Seed(int(t), (0,), labels[0] == t) for t in np.unique(labels[0])[1:]]
    assert PropagationParams().decode_window
    runs = {}
    for windowed in (True, False):
        params = PropagationParams(decode_window=windowed, detect_divisions=False)
        runs[windowed] = drain(propagate(sam, stack, seeds, params=params))
    objects = {w: {(o.track, o.plane): o.crop for o in r.objects} for w, r in runs.items()}
    assert objects[True].keys() == objects[False].keys()
    ious = [crop_iou(objects[True][k], objects[False][k]) for k in objects[True]]
    # measured when written: 25 objects, lowest IoU 0.950, mean 0.986
    assert min(ious) >= 0.8 and np.mean(ious) >= 0.95, ious


def test_window_parameters_are_checked():
    with pytest.raises(ValueError, match="window_context"):
        PropagationParams(window_context=-0.5)
    with pytest.raises(ValueError, match="window_context_cells"):
        PropagationParams(window_context_cells=-1)


def test_the_stain_is_decided_once_per_run(sam, movie, monkeypatch):
    """The stain is decided once, on a sample of the planes the run visits
    (``automatic.stack_stain``); the planes' own analyses reuse it (they skip the decision)."""
    import napari_devosam.automatic.seeds as seeds_module
    from napari_devosam.automatic.stack_stain import SAMPLE

    stack, labels, _ = movie
    decided = []
    real = seeds_module.decide_stain
    monkeypatch.setattr(seeds_module, "decide_stain",
                        lambda *a, **k: decided.append(real(*a, **k)) or decided[-1])
    seeds = [Seed(int(t), (0,), labels[0] == t) for t in np.unique(labels[0])[1:]]
    result = drain(propagate(sam, stack, seeds))
    assert decided == ["membrane"] * min(SAMPLE, len(stack))
    assert len({o.plane for o in result.objects}) == len(stack) - 1
