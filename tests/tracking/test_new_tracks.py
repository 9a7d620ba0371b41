"""New tracks for cells that enter the plane (tracking.new_cells), on synthetic movies.

The decoder is the ground-truth oracle (tests/tracking/tracking_oracle.py); the detector
stands in for automatic segmentation: it labels the connected parts of the plane brighter
than a threshold, so a cell fading in from Z is found once it is bright enough.
"""

import numpy as np
import pytest
from scipy import ndimage
from tracking_oracle import OracleDecoder

from napari_devosam.annotation.store import AnnotationStore
from napari_devosam.synthetic.lineage import make_lineage_timelapse
from napari_devosam.tracking import PropagationParams, Seed, propagate
from napari_devosam.tracking.new_cells import sam_detector, untracked_cells
from napari_devosam.tracking.records import Crop
from napari_devosam.tracking.review_events import group_events, review_events
from napari_devosam.tracking.store_tracks import apply_plan, propagate_in_store
from napari_devosam.utils.progress import drain

T, SIZE, R = 9, 96, 9
EDGE_FROM, FADE_FROM, FADE_BRIGHT = 3, 3, 5  # the fading cell is bright enough from 5 on


def _disc(centre):
    rr, cc = np.mgrid[:SIZE, :SIZE]
    return (rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= R ** 2


def _movie():
    """(pixels (T, H, W) float32, labels (T, H, W) int32): cells 1 and 2 all along; cell 3
    comes in over the right edge from frame 3; cell 4 fades in from Z in free space (dim on
    frames 3-4, bright from 5)."""
    pixels = np.full((T, SIZE, SIZE), 10.0, np.float32)
    labels = np.zeros((T, SIZE, SIZE), np.int32)
    for t in range(T):
        cells = {1: ((25, 20 + t), 200.0), 2: ((70, 25), 200.0)}
        if t >= EDGE_FROM:
            cells[3] = ((25, SIZE + 2 - 6 * (t - EDGE_FROM + 1)), 200.0)
        if t >= FADE_FROM:
            cells[4] = ((68, 68), (40.0, 80.0, 200.0, 200.0, 200.0, 200.0)[t - FADE_FROM])
        for label, (centre, value) in cells.items():
            disc = _disc(centre)
            labels[t][disc] = label
            pixels[t][disc] = value
    return pixels, labels


def _threshold_detector(calls=None, threshold=100.0):
    def detect(pixels, embedding, stain, diameter):
        if calls is not None:
            calls.append((embedding.plane, stain, diameter))
        lab, n = ndimage.label(np.asarray(pixels) > threshold)
        return lab, {i: 0.9 for i in range(1, n + 1)}
    return detect


def _run(pixels, labels, seeds, params, detector):
    oracle = OracleDecoder(labels)
    return drain(propagate(None, pixels, seeds, decoder=oracle,
                           embedding_for=oracle.embedding_for, params=params,
                           detector=detector))


def _first_planes(result):
    first = {}
    for o in result.objects:
        first.setdefault(o.track, o.plane[0])
    return first


def test_cells_entering_from_the_edge_and_from_z_get_new_tracks_without_parent():
    pixels, labels = _movie()
    seeds = [Seed(t, (0,), labels[0] == t) for t in (1, 2)]
    result = _run(pixels, labels, seeds, PropagationParams(), _threshold_detector())
    first = _first_planes(result)
    assert len(result.started) == 2 and not result.divisions
    starts = {track: plane[0] for track, plane in result.started}
    by_cell = {}
    for o in result.objects:  # which ground-truth cell each new track follows
        if o.track in starts and o.plane[0] == starts[o.track]:
            by_cell[int(np.bincount(labels[o.plane][o.mask]).argmax())] = o.track
    assert set(by_cell) == {3, 4}
    assert starts[by_cell[3]] == EDGE_FROM and starts[by_cell[4]] == FADE_BRIGHT
    for track in starts:
        objs = [o for o in result.objects if o.track == track]
        assert all(o.parent is None for o in objs)
        assert objs[0].start and not objs[0].division
        assert first[track] == starts[track] and objs[-1].plane == (T - 1,)  # to the end
    for cell in (1, 2):  # the seeds' tracks are not disturbed
        assert [o.plane[0] for o in result.objects if o.track == cell] == list(range(1, T))
    events = group_events(review_events(result))
    assert len(events["new cell"]) == 2 and "division" not in events
    assert {e.frame for e in events["new cell"]} == {EDGE_FROM, FADE_BRIGHT}


def test_switch_off_restores_todays_behaviour():
    pixels, labels = _movie()
    seeds = [Seed(t, (0,), labels[0] == t) for t in (1, 2)]
    calls = []
    off = _run(pixels, labels, seeds, PropagationParams(new_tracks=False),
               _threshold_detector(calls))
    plain = _run(pixels, labels, seeds, PropagationParams(new_tracks=False), None)
    assert calls == [] and off.started == []
    assert [(o.track, o.plane) for o in off.objects] == [(o.track, o.plane)
                                                          for o in plain.objects]
    assert {o.track for o in off.objects} == {1, 2}
    assert not any(r.reason == "new cell" for r in off.review)


def test_the_detector_gets_the_runs_embedding_and_stain():
    pixels, labels = _movie()
    seeds = [Seed(t, (0,), labels[0] == t) for t in (1, 2)]
    calls = []
    _run(pixels, labels, seeds, PropagationParams(), _threshold_detector(calls))
    assert [plane for plane, _, _ in calls] == [(t,) for t in range(1, T)]
    assert len({stain for _, stain, _ in calls}) == 1  # decided once for the run
    # the cells' size is the tracked objects' (two discs of radius R): not estimated
    assert all(abs(d - 2 * R) < 2 for _, _, d in calls)
    decided = calls[0][1]
    given = "membrane" if decided == "nuclei" else "nuclei"
    calls.clear()  # the run's stain when given (PropagationParams.stain, devosam track --stain)
    _run(pixels, labels, seeds, PropagationParams(stain=given), _threshold_detector(calls))
    assert {stain for _, stain, _ in calls} == {given}


def test_the_default_detector_is_seeded_automatic_segmentation(monkeypatch):
    from napari_devosam.automatic import core

    seen = {}

    def fake(source, model, **kw):
        seen.update(kw, model=model)
        return core.AutoResult(np.zeros((40, 40), np.int32))

    monkeypatch.setattr(core, "segment_all", fake)
    labels, scores = sam_detector("SAM")(np.zeros((40, 40)), "EMB", "membrane", 30.0)
    assert seen == {"mode": "seeded", "stain": "membrane", "embedding": "EMB", "model": "SAM",
                    "diameter": 30.0, "second_round": True}
    assert not labels.any() and scores == {}


def _cells(labels, result, track, plane):
    """The ground-truth cell under ``track``'s object on ``plane``."""
    obj = next(o for o in result.objects if o.track == track and o.plane == plane)
    return int(np.bincount(labels[plane][obj.mask]).argmax())


@pytest.mark.parametrize("seed", [1, 3])
def test_a_division_is_not_turned_into_a_new_track(seed):
    """A perfect detector (every ground-truth cell of the plane) finds each daughter, but the
    daughters of a division propagation finds are covered by it: the same divisions as with
    the switch off, and new tracks only for cells no track of that run covered (seed 3: a
    daughter whose division propagation missed, which is listed as a new cell)."""
    stack, labels, parents = make_lineage_timelapse(10, (128, 128), 3, seed=seed)

    def truth(pixels, embedding, stain, diameter):
        lab = labels[embedding.plane]
        return lab, {int(i): 1.0 for i in np.unique(lab) if i}

    seeds = [Seed(int(t), (0,), labels[0] == t) for t in np.unique(labels[0])[1:]]
    # snapping to the detections changes the masks, hence the divisions (its own tests:
    # test_detections.py); here only the new tracks are compared
    params = PropagationParams(new_track_min_area_fraction=0.0, snap_to_detections=False)
    on = _run(labels, labels, seeds, params, truth)
    off = _run(labels, labels, seeds, PropagationParams(new_tracks=False), truth)

    def divisions(result):
        return sorted((p, sorted(_cells(labels, result, d, p) for d in (a, b)))
                      for _, p, a, b in result.divisions)

    assert off.divisions and divisions(on) == divisions(off)
    daughters = {_cells(labels, on, d, p) for _, p, a, b in on.divisions for d in (a, b)}
    for track, plane in on.started:
        cell = _cells(labels, on, track, plane)
        assert cell not in daughters
        assert all(_cells(labels, off, o.track, plane) != cell
                   for o in off.objects if o.plane == plane)
        assert all(o.parent is None for o in on.objects if o.track == track)
    if seed == 1:
        assert on.started == []


def test_untracked_cells_rules():
    shape = (60, 60)
    labels = np.zeros(shape, np.int32)
    labels[5:25, 5:25] = 1  # free: new
    labels[5:25, 35:55] = 2  # half on a tracked object: not new
    labels[35:55, 5:25] = 3  # holds a whole tracked object (outlined bigger): not new
    labels[40:44, 40:44] = 4  # too small
    covered = np.zeros(shape, bool)
    covered[5:25, 45:55] = True
    inner = np.zeros(shape, bool)
    inner[40:50, 10:20] = True
    tracked = [Crop.from_mask(inner)]
    p = PropagationParams()
    found = untracked_cells(labels, {1: 0.8, 2: 0.9, 3: 0.9, 4: 0.9}, covered, tracked,
                            400.0, None, p)
    assert len(found) == 1 and found[0][1] == 0.8 and found[0][0].area == 400
    outside = np.zeros(shape, bool)  # the embryo: nowhere near cell 1
    outside[30:, 30:] = True
    assert untracked_cells(labels, {1: 0.8}, covered, tracked, 400.0, outside, p) == []
    with pytest.raises(ValueError, match="shape"):
        untracked_cells(labels, {}, covered[:10], tracked, 400.0, None, p)


def test_new_cells_reach_the_store_and_its_review_list(tmp_path):
    pixels, labels = _movie()
    store = AnnotationStore(tmp_path / "s.devosam", pixels.shape)
    store.commit((0,), [labels[0] == t for t in (1, 2)])
    oracle = OracleDecoder(labels)
    plan = drain(propagate_in_store(None, pixels, store, (0,), decoder=oracle,
                                    embedding_for=oracle.embedding_for,
                                    detector=_threshold_detector()))
    assert len(plan.result.started) == 2
    apply_plan(store, plan)
    events = group_events(review_events(store))
    assert sorted(e.frame for e in events["new cell"]) == [EDGE_FROM, FADE_BRIGHT]


def test_a_plane_too_small_for_automatic_segmentation_has_no_new_cell():
    """``segment_all`` refuses planes under ``limits.MIN_SIDE`` px a side; new-cell detection
    on such a movie finds nothing instead of stopping the run (a new-user trial: ``devosam
    track`` on a 19 px stack failed with an automatic-segmentation message)."""
    from napari_devosam.automatic.limits import MIN_SIDE
    from napari_devosam.tracking.new_cells import sam_detector

    labels, scores = sam_detector(object())(np.ones((MIN_SIDE - 1, 300)), None, "auto", None)
    assert labels.shape == (MIN_SIDE - 1, 300) and not labels.any() and scores == {}


@pytest.mark.parametrize("second", [True, False])
def test_the_detections_second_round_follows_its_parameter(monkeypatch, second):
    from napari_devosam.automatic import core

    seen = []

    def fake(source, model, **kw):
        seen.append(kw["second_round"])
        return core.AutoResult(np.zeros((40, 40), np.int32))

    monkeypatch.setattr(core, "segment_all", fake)
    params = PropagationParams(detection_second_round=second)
    sam_detector("SAM", params.detection_second_round)(np.zeros((40, 40)), "EMB", "nuclei", 9.0)
    assert seen == [second]


def test_a_dim_patch_against_a_bright_tracked_nucleus_starts_no_track():
    from napari_devosam.automatic.seeds import analyse_plane

    shape = (80, 120)
    rows, cols = np.ogrid[:shape[0], :shape[1]]

    def disc(r, c, radius=10):
        return (rows - r) ** 2 + (cols - c) ** 2 <= radius ** 2

    img = 100.0 + np.random.default_rng(0).normal(0, 5, shape)
    img[disc(40, 30)] = 1000.0  # a tracked nucleus
    img[disc(40, 51)] = 250.0  # its cytoplasm, touching it
    img[disc(40, 95)] = 250.0  # a dim nucleus of its own, far from it
    analysis = analyse_plane(img.astype(np.float32), "nuclei")
    labels = np.zeros(shape, np.int32)
    labels[disc(40, 51)] = 1
    labels[disc(40, 95)] = 2
    tracked = [Crop.from_mask(disc(40, 30))]
    covered = tracked[0].full()
    p = PropagationParams()
    found = untracked_cells(labels, {1: 0.9, 2: 0.8}, covered, tracked, 300.0, None, p,
                            analysis)
    assert [round(s, 1) for _, s in found] == [0.8]  # the far one only
    off = PropagationParams(new_track_min_brightness=0)
    assert len(untracked_cells(labels, {1: 0.9, 2: 0.8}, covered, tracked, 300.0, None, off,
                               analysis)) == 2
    # beside, not touching: 4 px apart along a diagonal (6 city-block steps), within a
    # quarter of the cells' diameter (5 px): still its cytoplasm (a new-user trial)
    img2 = 100.0 + np.random.default_rng(1).normal(0, 5, shape)
    img2[disc(30, 30)] = 1000.0
    img2[disc(47, 47)] = 250.0
    labels2 = np.zeros(shape, np.int32)
    labels2[disc(47, 47)] = 1
    tracked2 = [Crop.from_mask(disc(30, 30))]
    diagonal = untracked_cells(labels2, {1: 0.9}, tracked2[0].full(), tracked2, 300.0, None,
                               p, analyse_plane(img2.astype(np.float32), "nuclei"))
    assert diagonal == []
