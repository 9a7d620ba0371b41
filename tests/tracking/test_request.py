"""One run described once: seeds from labels, the route, results written, a run on a store."""

import csv

import numpy as np
import pytest
import tifffile
from tracking_oracle import OracleDecoder

from napari_devosam.annotation.store import AnnotationStore
from napari_devosam.synthetic.lineage import make_lineage_timelapse
from napari_devosam.tracking import PropagationParams, TrackingRequest, run_tracking
from napari_devosam.tracking.request import seeds_from_labels
from napari_devosam.tracking.route import Route
from napari_devosam.tracking.store_run import (
    apply_and_review,
    prepare_store_run,
    run_in_store,
)
from napari_devosam.tracking.store_tracks import track_table
from napari_devosam.utils.progress import drain


@pytest.fixture(scope="module")
def movie():
    stack, labels, _ = make_lineage_timelapse(6, (128, 128), 3, seed=1)
    return stack, labels


def test_seeds_from_a_plane_or_the_stack_and_one_check_of_labels(movie):
    stack, labels = movie
    from_plane = seeds_from_labels(labels[2], stack.shape, (2,))
    from_stack = seeds_from_labels(labels, stack.shape, (2,))
    assert [s.track for s in from_plane] == [s.track for s in from_stack] == \
        [int(t) for t in np.unique(labels[2])[1:]]
    for a, b in zip(from_plane, from_stack, strict=True):
        assert a.plane == b.plane == (2,) and np.array_equal(a.mask, b.mask)
        assert np.array_equal(a.mask, labels[2] == a.track)
    for bad, message in ((np.ones((5, 5), np.uint16), "fit neither"),
                         (labels[0].astype(np.float32), "non-negative integers"),
                         (-labels[0], "non-negative integers"),
                         (np.zeros_like(labels[0]), "no objects")):
        with pytest.raises(ValueError, match=message):
            seeds_from_labels(bad, stack.shape, (0,))


def test_route_is_the_plane_order_of_a_run():
    route = Route.through((9, 4), (3, 2), 0, "both", (1, 6))
    assert route.legs == ((4, 5, 6), (2, 1))
    assert route.planes == [(4, 2), (5, 2), (6, 2), (2, 2), (1, 2)] and route.total == 5
    assert Route.through((9, 4), (3, 2), 1, "backward").planes == [(3, 1), (3, 0)]
    request = TrackingRequest((9, 4, 8, 8), (3, 2), direction="both", bounds=(1, 6))
    assert request.route is request.route and request.route == route
    with pytest.raises(ValueError, match="direction"):
        Route.through((9,), (0,), 0, "sideways")


def test_run_tracking_writes_the_result_folder(movie, tmp_path):
    stack, labels = movie
    oracle = OracleDecoder(labels)
    request = TrackingRequest.from_labels(labels[0], stack.shape, (0,), out=tmp_path / "out",
                                          params=PropagationParams(detect_divisions=True))
    progress = []
    gen = run_tracking(None, stack, request, decoder=oracle, embedding_for=oracle.embedding_for)
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as stop:
            done = stop.value
            break
    assert [p.plane for p in progress if p.done] == request.route.planes
    assert done.result.objects and done.tracks
    out = tmp_path / "out"
    masks = sorted(p.name for p in out.glob("mask*.tif"))
    assert masks == [f"mask{i:03d}.tif" for i in range(6)]
    first = tifffile.imread(out / "mask000.tif")
    assert set(np.unique(first)) == set(np.unique(labels[0]))
    assert len((out / "res_track.txt").read_text().splitlines()) == len(done.tracks)
    with (out / "review.csv").open() as f:
        assert next(csv.reader(f)) == ["frame", "track_id", "ctc_label", "reason", "confidence"]
    quiet = TrackingRequest.from_labels(labels[0], stack.shape, (0,), review=False)
    rows, csv_rows = quiet.write(done.result, tmp_path / "quiet")
    assert csv_rows == done.csv_rows
    assert rows == done.tracks and not (tmp_path / "quiet" / "review.csv").exists()


def test_run_tracking_refuses_a_request_without_seeds(movie):
    stack, _ = movie
    with pytest.raises(ValueError, match="no seeds"):
        drain(run_tracking(None, stack, TrackingRequest(stack.shape, (0,))))


class _Embeddings:
    def __init__(self, oracle):
        self.oracle, self.closed = oracle, False

    def __call__(self, plane):
        return self.oracle.embedding_for(plane)

    def close(self):
        self.closed = True


def test_a_store_run_reads_a_snapshot_and_applies_one_undo_step(movie, tmp_path):
    stack, labels = movie
    store = AnnotationStore(tmp_path / "s.devosam", stack.shape)
    store.commit((0,), [labels[0] == t for t in np.unique(labels[0])[1:]])
    request = TrackingRequest(stack.shape, (0,), bounds=(0, 3))
    run = prepare_store_run(store, request)
    assert run.order == [(1,), (2,), (3,)] == run.request.route.planes
    assert np.array_equal(run.snapshot.labels[(0,)], store.labels[0])
    oracle = OracleDecoder(labels)
    embeddings = _Embeddings(oracle)
    plan = drain(run_in_store(None, labels, run, embeddings, decoder=oracle))
    assert embeddings.closed and not store.labels[1:].any()  # nothing written by the worker
    ids, entries, stepped = apply_and_review(store, run, plan, {})
    assert stepped and all(ids) and store.can_undo
    table = track_table(store.objects)
    for e in entries:  # review entries name the store's tracks and objects
        assert e.track in table and e.object_id in (0, *table[e.track]["planes"].values())
    with pytest.raises(RuntimeError, match="changed"):
        apply_and_review(AnnotationStore(tmp_path / "t.devosam", stack.shape), run, plan, {})
    with pytest.raises(ValueError, match="outside the range"):
        prepare_store_run(store, TrackingRequest(stack.shape, (2,), bounds=(3, 5)))
    with pytest.raises(ValueError, match="no longer exists"):
        prepare_store_run(store, TrackingRequest(stack.shape, (0,), bounds=(0, 5),
                                                 selected=10_000))
