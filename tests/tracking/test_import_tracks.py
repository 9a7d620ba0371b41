"""Tracks from other tools: CTC results and GEFF graphs into the store, and back out.

The HeLa result is the one in traccuracy's source archive (a Cell Tracking Challenge-derived
result, Fluo-N2DL-HeLa 01_RES): fetched with pip at test time into pytest's cache, never
committed; without the registry that test skips with one line.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from tracking_oracle import OracleDecoder

from napari_devosam.annotation.store import AnnotationStore
from napari_devosam.synthetic.lineage import make_lineage_timelapse
from napari_devosam.tracking.import_tracks import (
    TrackImportError,
    import_ctc,
    import_geff,
    store_tracks_from_labels,
)
from napari_devosam.tracking.lineage import delete_track, lineage, object_of, split_track
from napari_devosam.tracking.store_tracks import (
    apply_plan,
    export_store_tracks,
    propagate_in_store,
)
from napari_devosam.tracking.track_files import write_ctc
from napari_devosam.utils.progress import drain

TRACCURACY = "traccuracy==0.4.3"
HELA = "examples/sample-data/Fluo-N2DL-HeLa/01_RES"


@pytest.fixture
def phantom(tmp_path):
    stack, labels, parents = make_lineage_timelapse(8, (128, 128), 3, seed=1,
                                                    steady_brightness=False)
    write_ctc(tmp_path / "res", labels, parents)
    return stack, labels, parents, tmp_path / "res"


def _same_result(a: Path, b: Path) -> None:
    assert (a / "res_track.txt").read_text() == (b / "res_track.txt").read_text()
    masks = sorted(p.name for p in a.glob("mask*.tif"))
    assert masks == sorted(p.name for p in b.glob("mask*.tif"))
    for name in masks:
        assert np.array_equal(tifffile.imread(a / name), tifffile.imread(b / name)), name


def test_ctc_round_trip_reproduces_pixels_and_parents(phantom, tmp_path):
    stack, labels, parents, res = phantom
    store = AnnotationStore(tmp_path / "s.devosam", stack.shape)
    steps = []
    summary = _drive(import_ctc(store, res), steps)
    assert steps[-1] == (9, 9) and [s[0] for s in steps] == list(range(1, 10))
    assert summary.tracks == len(np.unique(labels)) - 1 and summary.frames == 8
    assert summary.divisions == len(set(parents.values()))
    assert all(r["source"] == "import" for r in store.objects.values())
    assert min(store.objects) > labels.max()  # object ids never collide with track ids
    export_store_tracks(tmp_path / "out", store, (0,), 0)
    _same_result(res, tmp_path / "out")
    store.undo()  # the import is one undo step
    assert not store.objects and not store.labels.any()


def test_ctc_tracking_truth_imports_like_a_result(phantom, tmp_path):
    """A new-user trial: a CTC ground-truth folder (``man_trackNNN.tif`` + ``man_track.txt``)
    was refused as holding "no maskNNN.tif files"."""
    import shutil

    stack, _, _, res = phantom
    truth = tmp_path / "01_GT" / "TRA"
    truth.mkdir(parents=True)
    for path in res.glob("mask*.tif"):
        shutil.copy(path, truth / path.name.replace("mask", "man_track"))
    shutil.copy(res / "res_track.txt", truth / "man_track.txt")
    a = AnnotationStore(tmp_path / "a.devosam", stack.shape)
    b = AnnotationStore(tmp_path / "b.devosam", stack.shape)
    assert drain(import_ctc(a, res)) == drain(import_ctc(b, truth))
    assert lineage(a) == lineage(b) and np.array_equal(a.labels, b.labels)
    (truth / "man_track.txt").write_text("1 0 99 0\n")
    with pytest.raises(TrackImportError, match="^man_track.txt: track 1 ends on frame 99"):
        drain(import_ctc(AnnotationStore(tmp_path / "c.devosam", stack.shape), truth))


def test_a_gap_in_a_ctc_result_is_one_track_not_a_division(tmp_path):
    """CTC writes a gap as a mother with one late daughter: one cell, one track."""
    labels = np.zeros((6, 32, 32), np.uint16)
    for f in (0, 1, 2, 4, 5):  # track 1, missing on frame 3
        labels[f, 4:10, 4:10] = 1
    labels[:, 20:26, 20:26] = 2  # another cell, the whole movie
    write_ctc(tmp_path / "res", labels, {})
    rows = (tmp_path / "res" / "res_track.txt").read_text().split()
    assert rows[-4:] == ["3", "4", "5", "1"]  # the gap's piece: label 3, mother 1
    store = AnnotationStore(tmp_path / "s.devosam", labels.shape)
    summary = _drive(import_ctc(store, tmp_path / "res"), [])
    assert (summary.tracks, summary.divisions) == (2, 0)
    assert sorted(lineage(store)) == [1, 2] and lineage(store)[1].parent is None
    export_store_tracks(tmp_path / "out", store, (0,), 0)
    _same_result(tmp_path / "res", tmp_path / "out")


def _drive(gen, steps):
    while True:
        try:
            steps.append(next(gen))
        except StopIteration as stop:
            return stop.value


def test_imported_tracks_propagate_from_a_fixed_frame_and_take_edits(phantom, tmp_path):
    stack, labels, parents, res = phantom
    store = AnnotationStore(tmp_path / "s.devosam", stack.shape)
    drain(import_ctc(store, res))
    track = next(t for t in lineage(store) if lineage(store)[t].last == 7
                 and lineage(store)[t].first == 0)
    delete_track(store, track, 4)  # a track lost after frame 3 ...
    plane, oid = object_of(store, track, 3)
    oracle = OracleDecoder(labels)
    plan = drain(propagate_in_store(None, labels, store, plane, object_ids=[oid], redo=True,
                                    decoder=oracle, embedding_for=oracle.embedding_for))
    apply_plan(store, plan)  # ... propagated again from frame 3 keeps its id
    assert lineage(store)[track].last == 7
    assert np.array_equal(store.labels[7] == object_of(store, track, 7)[1],
                          labels[7] == track)
    new = split_track(store, track, 5)
    assert lineage(store)[new].first == 5


def test_geff_with_masks_imports_the_same_tracks(phantom, tmp_path):
    pytest.importorskip("geff")
    stack, _, _, res = phantom
    first = AnnotationStore(tmp_path / "a.devosam", stack.shape)
    drain(import_ctc(first, res))
    export_store_tracks(tmp_path / "out", first, (0,), 0, geff=True)
    second = AnnotationStore(tmp_path / "b.devosam", stack.shape)
    summary = drain(import_geff(second, tmp_path / "out" / "tracks.geff", res))
    assert summary.tracks == len(lineage(first))
    assert lineage(second) == lineage(first)
    assert np.array_equal(second.labels > 0, first.labels > 0)
    export_store_tracks(tmp_path / "again", second, (0,), 0)
    _same_result(res, tmp_path / "again")


def test_a_crescent_shaped_object_comes_back_from_our_own_geff(tmp_path):
    """A new-user trial: devosam's GEFF of a nuclear run could not be imported ("node ...
    lies on the masks' background"): a crescent's centroid is off the object. Nodes now name
    their object (``seg_id``)."""
    pytest.importorskip("geff")
    from napari_devosam.tracking.track_files import write_track_results

    yy, xx = np.mgrid[:48, :48]
    disk = (yy - 24) ** 2 + (xx - 24) ** 2 <= 14 ** 2
    ring = disk & ((yy - 24) ** 2 + (xx - 30) ** 2 > 11 ** 2)
    labels = np.zeros((3, 48, 48), np.int64)
    labels[:, ring] = 5
    labels[:, 2:6, 2:6] = 9
    cy, cx = np.round(np.argwhere(ring).mean(axis=0)).astype(int)
    assert labels[0, cy, cx] == 0  # the crescent's centroid is on the background
    write_track_results(tmp_path / "out", labels, {}, geff=True)
    store = AnnotationStore(tmp_path / "s.devosam", labels.shape)
    summary = drain(import_geff(store, tmp_path / "out" / "tracks.geff", tmp_path / "out"))
    assert summary.tracks == 2
    assert np.array_equal(store.labels > 0, labels > 0)


def _edit_res_track(res: Path, old: str, new: str) -> None:
    text = (res / "res_track.txt").read_text()
    assert old in text
    (res / "res_track.txt").write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("damage, message", [
    ("missing", "mask003.tif lacks track 1"),
    ("parent", "the mother 99 of track"),
    ("unlisted", "holds label 7, which res_track.txt puts on no frame (not listed)"),
    ("shape", "has shape (64, 64), the movie's frames (128, 128)"),
    ("frames", "the masks cover 7 frames, the movie has 8"),
    ("text", "expected 'L B E P'"),
    ("negative", "mask002.tif holds negative labels (down to -3)"),
    ("self", "names itself as its mother"),
    ("twice", "is listed twice"),
    ("backwards", "starts on frame 5, after it ends on frame 0"),
    ("empty", "lists no track (it is empty)"),
])
def test_bad_results_are_refused_with_one_line_and_nothing_written(phantom, tmp_path,
                                                                   damage, message):
    stack, labels, _, res = phantom
    first_line = (res / "res_track.txt").read_text().splitlines()[0]
    label, b, e, p = first_line.split()
    if damage == "missing":
        frame = tifffile.imread(res / "mask003.tif")
        frame[frame == int(label)] = 0
        tifffile.imwrite(res / "mask003.tif", frame)
    elif damage == "parent":
        last = (res / "res_track.txt").read_text().splitlines()[-1]
        _edit_res_track(res, last, " ".join(last.split()[:3] + ["99"]))
    elif damage == "unlisted":  # a daughter without daughters of her own
        lines = (res / "res_track.txt").read_text().splitlines(keepends=True)
        (res / "res_track.txt").write_text("".join(x for x in lines if x.split()[0] != "7"))
    elif damage == "shape":
        tifffile.imwrite(res / "mask000.tif", np.zeros((64, 64), np.uint16))
    elif damage == "frames":
        (res / "mask007.tif").unlink()
    elif damage == "negative":
        frame = tifffile.imread(res / "mask002.tif").astype(np.int32)
        frame[0, 0] = -3
        tifffile.imwrite(res / "mask002.tif", frame)
    elif damage == "self":
        _edit_res_track(res, first_line, " ".join([label, b, e, label]))
    elif damage == "twice":
        _edit_res_track(res, first_line, first_line + "\n" + first_line)
    elif damage == "backwards":
        _edit_res_track(res, first_line, " ".join([label, "5", "0", p]))
    elif damage == "empty":  # new-user trial 19: all-zero masks and an empty listing
        (res / "res_track.txt").write_text("\n")
        for path in res.glob("mask*.tif"):
            tifffile.imwrite(path, np.zeros((128, 128), np.uint16))
    else:
        _edit_res_track(res, first_line, "1 2 x")
    store = AnnotationStore(tmp_path / "s.devosam", stack.shape)
    with pytest.raises(TrackImportError) as info:
        drain(import_ctc(store, res))
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not store.objects and not (store.folder / "store.json").exists()


def test_labels_without_objects_are_not_imported(phantom, tmp_path):
    """``--replace`` with nothing would have emptied the store."""
    stack, *_ = phantom
    store = AnnotationStore(tmp_path / "s.devosam", stack.shape)
    store.commit((0,), [np.ones((128, 128), bool)])
    with pytest.raises(TrackImportError, match="the masks hold no object"):
        store_tracks_from_labels(store, np.zeros(stack.shape, np.uint32), {}, replace=True)
    assert len(store.objects) == 1


def test_a_mother_with_three_daughters_is_imported_and_named(tmp_path):
    """Another tool's error is kept to be curated, from CTC as from GEFF (new-user trial 19:
    the CTC import took it silently while GEFF refused it)."""
    res = tmp_path / "res"
    res.mkdir()
    frames = np.zeros((3, 32, 32), np.uint16)
    frames[0, 10:20, 10:20] = 1
    for label, col in ((2, 2), (3, 12), (4, 22)):
        frames[1:, 10:18, col:col + 8] = label
    for f, frame in enumerate(frames):
        tifffile.imwrite(res / f"mask{f:03d}.tif", frame)
    (res / "res_track.txt").write_text("1 0 0 0\n2 1 2 1\n3 1 2 1\n4 1 2 1\n")
    store = AnnotationStore(tmp_path / "s.devosam", frames.shape)
    summary = drain(import_ctc(store, res))
    assert summary.many_daughters == {1: [2, 3, 4]} and summary.tracks == 4
    assert "check in the lineage: track 1 has 3 daughters (2, 3, 4)" in summary.text()


def test_existing_objects_are_refused_unless_replace(phantom, tmp_path):
    stack, labels, _, res = phantom
    store = AnnotationStore(tmp_path / "s.devosam", stack.shape)
    store.commit((0,), [np.ones((128, 128), bool)])
    with pytest.raises(TrackImportError, match="already holds 1 objects.*replace") as info:
        drain(import_ctc(store, res))
    assert info.value.needs_replace and "--replace" not in str(info.value)  # CLI wording
    assert len(store.objects) == 1
    summary = drain(import_ctc(store, res, replace=True))
    assert summary.replaced == 1 and len(store.objects) == summary.objects
    store.undo()  # one step: the user's object is back, the import gone
    assert len(store.objects) == 1 and store.labels[0].all()


@pytest.fixture(scope="module")
def hela(request, tmp_path_factory):
    """The HeLa ``01_RES`` folder of traccuracy's sdist, fetched once into pytest's cache."""
    cache = getattr(request.config, "cache", None)
    root = Path(cache.mkdir("traccuracy_sdist")) if cache else tmp_path_factory.mktemp("tr")
    folder = root / "Fluo-N2DL-HeLa" / "01_RES"
    if not (folder / "res_track.txt").is_file():
        try:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                            ":all:", TRACCURACY, "-d", str(root), "-q"], check=True,
                           capture_output=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            pytest.skip(f"traccuracy's source archive cannot be fetched ({type(exc).__name__})")
        archive = next(root.glob("traccuracy-*.tar.gz"))
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if f"/{HELA}/" in m.name and m.isfile()]
            folder.mkdir(parents=True, exist_ok=True)
            for m in members:
                (folder / Path(m.name).name).write_bytes(tar.extractfile(m).read())
    return folder


def test_hela_result_of_another_tool_imports_and_exports_identically(hela, tmp_path):
    traccuracy = pytest.importorskip("traccuracy.loaders")
    n = len(list(hela.glob("mask*.tif")))
    shape = tifffile.imread(hela / "mask000.tif").shape
    store = AnnotationStore(tmp_path / "hela.devosam", (n, *shape))
    summary = drain(import_ctc(store, hela))
    assert (summary.tracks, summary.frames) == (285, 92)
    export_store_tracks(tmp_path / "out", store, (0,), 0)
    _same_result(hela, tmp_path / "out")
    graph = traccuracy.load_ctc_data(str(tmp_path / "out"),
                                     str(tmp_path / "out" / "res_track.txt"))
    assert graph.graph.number_of_nodes() == summary.objects


@pytest.mark.parametrize("fault, message", [
    ("background", "lies on the masks' background"),
    ("merge", "has 2 predecessors (cells merging)"),
    ("backwards", "goes from frame 1 to frame 0: edges must go forward in time"),
])
def test_bad_geff_graphs_are_refused_with_one_line(phantom, tmp_path, fault, message):
    geff = pytest.importorskip("geff")
    import networkx as nx

    stack, labels, _, res = phantom
    ys, xs = np.nonzero(labels[0] == 1)
    graph = nx.DiGraph()
    graph.add_node(0, t=0, y=float(ys[0]), x=float(xs[0]))
    graph.add_node(1, t=1, y=0.0, x=0.0)  # the corner: background
    graph.add_edge(0, 1)
    if fault == "merge":
        graph.nodes[1].update(y=float(ys[0]), x=float(xs[0]))
        graph.add_node(2, t=0, y=float(ys[-1]), x=float(xs[-1]))
        graph.add_edge(2, 1)
    if fault == "backwards":
        graph.nodes[1].update(y=float(ys[0]), x=float(xs[0]))
        graph.add_edge(1, 0)
    geff.write(graph, str(tmp_path / "g.geff"), axis_names=["t", "y", "x"],
               axis_types=["time", "space", "space"])
    store = AnnotationStore(tmp_path / "s.devosam", stack.shape)
    with pytest.raises(TrackImportError) as info:
        drain(import_geff(store, tmp_path / "g.geff", res))
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not store.objects
