"""Tracked masks matched to the plane's automatic detections (tracking.detections), and masks
held to the embryo on membrane planes (clip_to_embryo).

The decoder is the ground-truth oracle (tests/tracking/tracking_oracle.py) made to leak:
every mask it returns for a cell also holds pixels beside that cell, as SAM's propagated
masks creep over neighbours or background. The detector is the ground truth.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from napari_devosam.synthetic.phantoms import make_embryo
from napari_devosam.tracking import PropagationParams, Seed, propagate
from napari_devosam.tracking.detections import iou_with_labels, match, snap_parts
from napari_devosam.tracking.plane_checks import clipped
from napari_devosam.tracking.records import Crop
from napari_devosam.utils.progress import drain

sys.path.insert(0, str(Path(__file__).parent))
from tracking_oracle import OracleDecoder  # noqa: E402


def _box(shape, r0, r1, c0, c1):
    m = np.zeros(shape, bool)
    m[r0:r1, c0:c1] = True
    return m


def test_the_assignment_is_one_to_one_and_maximises_the_summed_iou():
    shape = (40, 60)
    labels = np.zeros(shape, np.int32)
    labels[0:10, 0:10] = 3  # detection 3
    labels[0:10, 12:20] = 7  # detection 7
    a = Crop.from_mask(_box(shape, 0, 10, 2, 16))  # overlaps 3 more than 7
    b = Crop.from_mask(_box(shape, 0, 10, 0, 9))  # overlaps only 3
    table, ids = iou_with_labels([a, b], labels)
    assert list(ids) == [3, 7]
    assert np.isclose(table[0, 0], 80 / 160) and np.isclose(table[0, 1], 40 / 180)
    assert np.isclose(table[1, 0], 0.9) and table[1, 1] == 0
    # greedy would give a detection 3 and leave b unmatched; the assignment swaps them
    assert match(table, 0.2) == {0: 1, 1: 0}
    assert match(table, 0.3) == {1: 0}  # a's pair is too weak: a matches nothing
    assert match(np.zeros((0, 2)), 0.3) == {}


def test_snap_takes_the_detections_mask_and_keeps_locked_and_taken_pixels_out():
    shape = (40, 60)
    labels = np.zeros(shape, np.int32)
    labels[5:15, 5:15] = 1
    labels[5:15, 30:40] = 2
    leaky = Crop.from_mask(_box(shape, 5, 15, 5, 22))
    lone = Crop.from_mask(_box(shape, 20, 30, 5, 15))
    over = Crop.from_mask(_box(shape, 12, 22, 5, 15))
    locked = _box(shape, 5, 7, 5, 15)
    p = PropagationParams()
    out = snap_parts([[leaky], [lone], [over]], labels, locked, None, p)
    assert set(out) == {0, 2}  # lone matched nothing and overlaps nothing snapped: as it was
    (snapped,), keep_logits, matched = out[0]
    assert np.array_equal(snapped.full(), (labels == 1) & ~locked) and not keep_logits
    assert matched and not out[2][2]  # over matched nothing: only trimmed
    assert np.array_equal(out[2][0][0].full(), _box(shape, 15, 22, 5, 15))  # less taken


def test_a_part_under_another_tracks_detection_is_no_object():
    """An unmatched part whose every pixel went to another track's detection has nothing
    left: it is dropped (it was kept whole, hidden under the other in the written labels:
    a daughter track without pixels and a division with one daughter, trial 16)."""
    shape = (40, 60)
    labels = np.zeros(shape, np.int32)
    labels[5:20, 5:20] = 1
    matched = Crop.from_mask(_box(shape, 5, 20, 5, 20))
    inside = Crop.from_mask(_box(shape, 8, 14, 8, 14))  # a daughter inside the detection
    beside = Crop.from_mask(_box(shape, 25, 35, 5, 15))  # its sister, on no detection
    p = PropagationParams()
    out = snap_parts([[matched], [inside, beside]], labels, None, None, p)
    parts, keep_logits, hit = out[1]
    assert [c.area for c in parts] == [100] and not hit and not keep_logits  # no division
    assert np.array_equal(parts[0].full(), beside.full())
    out = snap_parts([[matched], [inside]], labels, None, None, p)
    assert out[1] == ([], False, False)  # the track has nothing on this plane
    from napari_devosam.tracking.divisions.steps import end_reason

    assert end_reason(out[1][0], 36, inside, p)[0] == "vanished"


def test_two_daughters_stand_only_when_each_matches_a_detection():
    shape = (40, 60)
    labels = np.zeros(shape, np.int32)
    labels[5:15, 5:15] = 1
    labels[5:15, 20:30] = 2
    a = Crop.from_mask(_box(shape, 5, 15, 4, 15))
    b = Crop.from_mask(_box(shape, 5, 15, 19, 31))
    p = PropagationParams()
    both = snap_parts([[a, b]], labels, None, None, p)[0][0]
    assert [c.area for c in both] == [100, 100]
    stray = Crop.from_mask(_box(shape, 25, 35, 40, 50))  # on no detection
    one = snap_parts([[a, stray]], labels, None, None, p)[0][0]
    assert len(one) == 1 and np.array_equal(one[0].full(), labels == 1)
    # with only: other tracks' parts compete for the detections but keep their masks
    out = snap_parts([[a, stray], [b]], labels, None, None, p, only={0})
    assert set(out) == {0}


class LeakyOracle(OracleDecoder):
    """The oracle's masks, each grown by ``leak`` pixels (8-connected dilation)."""

    def __init__(self, labels, leak):
        super().__init__(labels)
        self.leak = leak

    def decode(self, boxes, points, mask_inputs):
        logits, low, iou = super().decode(boxes, points, mask_inputs)
        grown = [ndimage.binary_dilation(m.numpy() > 0, iterations=self.leak) for m in logits]
        return torch.where(torch.as_tensor(np.array(grown)), 10.0, -10.0), low, iou


def _crowd(n=6, shape=(96, 96)):
    """Four touching square "nuclei" in a 2 x 2 block, still, on a dark plane."""
    labels = np.zeros((n, *shape), np.int32)
    for k, (r, c) in enumerate([(20, 20), (20, 41), (41, 20), (41, 41)]):
        labels[:, r:r + 20, c:c + 20] = k + 1
    pixels = np.where(labels > 0, 200.0, 10.0).astype(np.float32)
    return pixels, labels


def _truth(labels):
    def detect(pixels, embedding, stain, diameter):
        lab = labels[embedding.plane]
        return lab, {int(i): 0.9 for i in np.unique(lab) if i}
    return detect


def test_snapped_tracks_stay_on_their_nucleus_in_a_crowd():
    pixels, labels = _crowd()
    seeds = [Seed(t, (0,), labels[0] == t) for t in (1, 2, 3, 4)]
    quiet = dict(detect_divisions=False, membrane_grow_px=0, max_growth=0.0,
                 min_iou_prev=0.0, min_pred_iou=0.0, max_missed_planes=0)
    runs = {}
    for on in (True, False):
        oracle = LeakyOracle(labels, leak=3)
        params = PropagationParams(snap_to_detections=on, **quiet)
        runs[on] = drain(propagate(None, pixels, seeds, decoder=oracle,
                                   embedding_for=oracle.embedding_for, params=params,
                                   detector=_truth(labels)))
    on, off = runs[True], runs[False]
    assert not on.started and not on.ended  # four tracks, every frame, no new ones
    for o in on.objects:
        assert np.array_equal(o.mask, labels[o.plane] == o.track)
    # without snapping the leak stays in every mask (the same run otherwise)
    assert all(o.crop.area > (labels[o.plane] == o.track).sum() for o in off.objects
               if not o.start)


class PointOracle(OracleDecoder):
    """The oracle's object under each prompt's point (one object per prompt)."""

    def decode(self, boxes, points, mask_inputs):
        lab = self.labels[self.embedding.plane]
        out = torch.full((len(boxes), *lab.shape), -10.0)
        for i, (r, c) in enumerate(np.round(points).astype(int)):
            if lab[r, c]:
                out[i][torch.as_tensor(lab == lab[r, c])] = 10.0
        return out, torch.zeros((len(boxes), 1, 16, 16)), np.ones(len(boxes), np.float32)


def _leaking_cell(n=4):
    """A membrane embryo plane, still; the oracle's masks of one cell on the embryo's rim
    also hold a band of the background beside it (as the tracks of the real DevoLearn
    membrane movie did by frame 60)."""
    image, truth = make_embryo((160, 160), n_cells=6, seed=2, kind="membrane")
    away = ndimage.distance_transform_edt(truth == 0)
    rim = ndimage.binary_dilation(truth == 0, iterations=2) & (truth > 0)
    cell = int(np.bincount(truth[rim]).argmax())
    far = away > 6
    leak = ndimage.binary_dilation(truth == cell, iterations=12) & (truth == 0) & (away <= 12)
    oracle_labels = truth.copy()
    oracle_labels[leak] = cell
    stack = np.repeat(image[None].astype(np.float32), n, axis=0)
    return stack, np.repeat(truth[None], n, 0), np.repeat(oracle_labels[None], n, 0), cell, far


def test_membrane_masks_are_clipped_to_the_embryo():
    stack, truth, oracle_labels, cell, far = _leaking_cell()
    seeds = [Seed(int(t), (0,), truth[0] == t) for t in np.unique(truth[0])[1:]]
    quiet = dict(detect_divisions=False, new_tracks=False, max_growth=0.0,
                 min_iou_prev=0.0, max_missed_planes=0, min_embryo_fraction=0.0)
    out = {}
    for clip in (True, False):
        oracle = PointOracle(oracle_labels)
        params = PropagationParams(clip_to_embryo=clip, **quiet)
        out[clip] = drain(propagate(None, stack, seeds, decoder=oracle,
                                    embedding_for=oracle.embedding_for, params=params))
    for clip, result in out.items():
        objs = [o for o in result.objects if o.track == cell]
        assert len(objs) == len(stack) - 1  # followed on every plane, either way
        outside = [int((o.mask & far).sum()) for o in objs]
        assert (max(outside) == 0) if clip else (min(outside) > 50)


def test_clipped_keeps_parts_with_nothing_inside_whole():
    embryo = _box((30, 30), 0, 15, 0, 30)
    half = Crop.from_mask(_box((30, 30), 10, 20, 0, 10))
    away = Crop.from_mask(_box((30, 30), 20, 30, 20, 30))
    a, b = clipped([half, away], embryo)
    assert np.array_equal(a.full(), _box((30, 30), 10, 15, 0, 10))
    assert b is away


def test_snapping_is_for_nuclear_stains_with_a_detector():
    from napari_devosam.tracking.detections import snapping
    from napari_devosam.tracking.records import PropagationResult
    from napari_devosam.tracking.run_state import RunContext

    ctx = RunContext(None, PropagationParams(), None, None, None, None, PropagationResult(),
                     -1, stain="nuclei", detector=_truth(np.zeros((1, 4, 4), np.int32)))
    assert snapping(ctx)
    ctx.stain = "membrane"
    assert not snapping(ctx)
    ctx.stain, ctx.params = "nuclei", PropagationParams(snap_to_detections=False)
    assert not snapping(ctx)
    ctx.params, ctx.detector = PropagationParams(), None
    assert not snapping(ctx)



class DoubtfulOracle(OracleDecoder):
    """The oracle's masks, each with a predicted IoU of 0.1 (SAM unsure of every mask)."""

    def decode(self, boxes, points, mask_inputs):
        logits, low, iou = super().decode(boxes, points, mask_inputs)
        return logits, low, np.full(len(boxes), 0.1, np.float32)


def test_a_track_matched_to_a_detection_goes_on_whatever_its_end_checks_say():
    pixels, labels = _crowd(n=4)
    seeds = [Seed(t, (0,), labels[0] == t) for t in (1, 2, 3, 4)]
    shown = labels.copy()
    shown[1:][shown[1:] == 4] = 0  # the detector misses nucleus 4 after the first plane
    quiet = dict(detect_divisions=False, membrane_grow_px=0, max_missed_planes=0,
                 redetect_lost=False)
    oracle = DoubtfulOracle(labels)  # every propagated mask fails min_pred_iou (0.3)
    out = drain(propagate(None, pixels, seeds, decoder=oracle,
                          embedding_for=oracle.embedding_for, params=PropagationParams(**quiet),
                          detector=_truth(shown)))
    # tracks 1-3 match their detections: they go on, and no nucleus comes back as a new track
    assert not out.started and set(out.ended) == {4}
    assert out.ended[4][1].startswith("predicted IoU")  # the unmatched one is judged
    for t in (1, 2, 3):
        assert sorted(o.plane for o in out.objects if o.track == t) == [(1,), (2,), (3,)]


def test_an_unmatched_track_is_matched_again_from_its_shifted_previous_mask():
    shape = (60, 60)
    labels = np.zeros(shape, np.int32)
    labels[10:22, 10:22] = 1  # the track's nucleus
    labels[10:22, 40:52] = 2  # a free detection beyond one radius of it
    shrunk = Crop.from_mask(_box(shape, 10, 14, 10, 14))  # IoU 16/144 with detection 1
    previous = Crop.from_mask(_box(shape, 11, 23, 11, 23))  # shifted previous mask
    far = Crop.from_mask(_box(shape, 10, 22, 27, 39))  # 5 px off detection 2's edge
    p = PropagationParams()
    assert not snap_parts([[shrunk]], labels, None, None, p)  # the first round alone
    out = snap_parts([[shrunk], [far]], labels, None, None, p, previous=[previous, far])
    (snapped,), keep_logits, matched = out[0]
    assert matched and not keep_logits and np.array_equal(snapped.full(), labels == 1)
    assert 1 not in out  # detection 2 is free but its centroid lies beyond one radius
    # a track that vanished (no parts) is matched again too; a detection taken in the
    # first round is not offered twice
    taker = Crop.from_mask(labels == 1)
    out = snap_parts([[], [taker]], labels, None, None, p, previous=[previous, taker])
    assert set(out) == {1}
    out = snap_parts([[]], labels, None, None, p, previous=[previous])
    assert out[0][2] and np.array_equal(out[0][0][0].full(), labels == 1)
    # only: the second round changes the tracks it names alone
    assert not snap_parts([[shrunk]], labels, None, None, p, only=set(), previous=[previous])


class ShrinkingOracle(OracleDecoder):
    """The oracle's masks cut to their top-left corner (a tenth of the area) on planes past
    the first: SAM's propagated mask shrank off its nucleus."""

    def decode(self, boxes, points, mask_inputs):
        logits, low, iou = super().decode(boxes, points, mask_inputs)
        if self.embedding.plane[0] > 0:
            cut = torch.full_like(logits, -10.0)
            for k, m in enumerate(logits):
                rr, cc = np.nonzero(m.numpy() > 0)
                if rr.size:
                    r0, c0 = rr.min(), cc.min()
                    cut[k, r0:r0 + 6, c0:c0 + 6] = m[r0:r0 + 6, c0:c0 + 6]
            logits = cut
        return logits, low, iou


def test_a_shrunken_track_goes_on_as_its_detection_instead_of_a_new_track():
    pixels, labels = _crowd(n=4)
    seeds = [Seed(t, (0,), labels[0] == t) for t in (1, 2, 3, 4)]
    quiet = dict(detect_divisions=False, membrane_grow_px=0, redetect_lost=False,
                 max_missed_planes=0)
    out = {}
    for on in (True, False):
        oracle = ShrinkingOracle(labels)
        params = PropagationParams(snap_previous=on, **quiet)
        out[on] = drain(propagate(None, pixels, seeds, decoder=oracle,
                                  embedding_for=oracle.embedding_for, params=params,
                                  detector=_truth(labels)))
    assert not out[True].started and not out[True].ended
    for o in out[True].objects:
        assert np.array_equal(o.mask, labels[o.plane] == o.track)
    # without the second round every track shrank, ended, and came back as a new track
    off = out[False]
    assert all(off.ended[t] == ((1,), "shrank") for t in (1, 2, 3, 4))
    assert [plane for _, plane in off.started][:4] == [(1,)] * 4


def test_a_detection_far_larger_than_the_tracks_previous_mask_is_not_snapped_to():
    shape = (60, 60)
    labels = np.zeros(shape, np.int32)
    labels[10:40, 10:40] = 1  # 900 px: a merged detection of several nuclei
    leaky = Crop.from_mask(_box(shape, 10, 30, 10, 40))  # IoU 600/900 with it
    previous = Crop.from_mask(_box(shape, 10, 25, 10, 25))  # 225 px: one nucleus
    p = PropagationParams()
    assert snap_parts([[leaky]], labels, None, None, p)[0][2]  # no previous: snapped
    assert not snap_parts([[leaky]], labels, None, None, p, previous=[previous])
    off = PropagationParams(snap_max_growth=0.0)
    assert snap_parts([[leaky]], labels, None, None, off, previous=[previous])[0][2]
    # nor in the second round
    assert not snap_parts([[]], labels, None, None, p, previous=[previous])


def test_an_unmatched_mask_of_more_than_max_growth_typical_nuclei_ends():
    shape = (160, 160)
    labels = np.zeros((3, *shape), np.int32)
    labels[:, 20:50, 20:50] = 1  # 900 px: a blob of several nuclei, as one object
    for k, (r, c) in enumerate([(24, 110), (110, 24), (110, 110), (70, 130)]):
        labels[:, r:r + 14, c:c + 14] = k + 2  # 196 px nuclei: the typical area
    pixels = np.where(labels > 0, 200.0, 10.0).astype(np.float32)
    shown = labels.copy()
    shown[1:][shown[1:] == 1] = 0  # the detector does not find the blob: it is unmatched
    seeds = [Seed(t, (0,), labels[0] == t) for t in range(1, 6)]
    quiet = dict(detect_divisions=False, membrane_grow_px=0, redetect_lost=False,
                 max_missed_planes=0)
    oracle = OracleDecoder(labels)
    out = drain(propagate(None, pixels, seeds, decoder=oracle,
                          embedding_for=oracle.embedding_for, params=PropagationParams(**quiet),
                          detector=_truth(shown)))
    # 900 px > max_growth (3) x 196: no one nucleus; it never grew against its own start
    assert set(out.ended) == {1} and out.ended[1][0] == (1,)
    assert out.ended[1][1] == "grew to 4.6x the typical area"


def test_a_track_without_a_detection_for_too_many_planes_ends():
    """``max_unmatched_planes``: the detector stops finding nucleus 1 from frame 2 on; with
    1, its track ends on the second plane without a detection; off (0), it goes on."""
    pixels, labels = _crowd(n=6)
    shown = labels.copy()
    shown[2:][shown[2:] == 1] = 0
    seeds = [Seed(t, (0,), labels[0] == t) for t in (1, 2, 3, 4)]
    quiet = dict(detect_divisions=False, membrane_grow_px=0, redetect_lost=False,
                 max_missed_planes=0, new_tracks=True)
    runs = {}
    for k in (0, 1):
        oracle = OracleDecoder(labels)
        runs[k] = drain(propagate(None, pixels, seeds, decoder=oracle,
                                  embedding_for=oracle.embedding_for,
                                  params=PropagationParams(max_unmatched_planes=k, **quiet),
                                  detector=_truth(shown)))
    assert 1 not in runs[0].ended
    assert runs[1].ended[1] == ((3,), "no detection for 2 planes")
    assert set(runs[1].ended) == {1}
