"""CTC result format, tracks CSV, GEFF, and the lineage phantom."""

import csv

import numpy as np
import pytest
import tifffile

from napari_devosam.synthetic.lineage import make_lineage_timelapse
from napari_devosam.tracking import track_files as export


def test_lineage_phantom_keeps_ids_and_names_mothers():
    stack, labels, parents = make_lineage_timelapse(10, (128, 128), 3, seed=1)
    again = make_lineage_timelapse(10, (128, 128), 3, seed=1)
    assert np.array_equal(stack, again[0]) and parents == again[2]
    assert stack.shape == labels.shape == (10, 128, 128) and labels.dtype == np.int32
    assert parents
    for daughter, mother in parents.items():
        born = min(f for f in range(10) if (labels[f] == daughter).any())
        assert (labels[born - 1] == mother).any() and not (labels[born] == mother).any()
    first = set(np.unique(labels[0])) - {0}
    assert first == {1, 2, 3} and not first & set(parents)


def test_ctc_files(tmp_path):
    _, labels, parents = make_lineage_timelapse(8, (96, 96), 3, seed=2)
    rows = export.write_ctc(tmp_path, labels, parents)
    masks = sorted(tmp_path.glob("mask*.tif"))
    assert [m.name for m in masks] == [f"mask{f:03d}.tif" for f in range(8)]
    first = tifffile.imread(masks[0])
    assert first.dtype == np.uint16 and np.array_equal(first, labels[0])
    lines = (tmp_path / "res_track.txt").read_text().splitlines()
    assert len(lines) == len(rows) == len(np.unique(labels)) - 1
    for line in lines:
        lab, b, e, p = map(int, line.split())
        present = [f for f in range(8) if (labels[f] == lab).any()]
        assert (b, e) == (present[0], present[-1]) and p == parents.get(lab, 0)


def test_ctc_splits_gaps_and_renumbers_big_ids():
    lab = np.zeros((4, 3, 3), np.int64)
    lab[[0, 1, 3], 0, 0] = 70000
    lab[2, 1, 1] = 5
    out, rows = export.ctc_tracks(lab, {})
    assert out.dtype == np.uint16 and out.max() <= 3
    assert len(rows) == 3
    later = [r for r in rows if r[1] == 3][0]
    assert later[3] == out[0, 0, 0]  # the later piece names the earlier one as parent
    with pytest.raises(ValueError):
        export.ctc_tracks(-np.ones((1, 2, 2), int), {})


def test_csv_rows(tmp_path):
    lab = np.zeros((2, 10, 10), int)
    lab[0, 2:4, 2:6] = 3
    lab[1, 6:8, 6:8] = 4
    rows = export.track_rows(lab, {4: 3}, z_of_frame=lambda f: 7)
    export.write_csv(tmp_path / "t.csv", rows)
    got = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert [r["track_id"] for r in got] == ["3", "4"]
    assert got[0]["area"] == "8" and float(got[0]["centroid_row"]) == 2.5
    assert got[1]["parent_id"] == "3" and got[1]["z"] == "7"


def test_the_csv_names_each_rows_ctc_label(tmp_path):
    lab = np.zeros((4, 6, 6), np.int64)
    lab[[0, 1, 3], 0, 0] = 70000  # gapped and too big for uint16: split and renumbered
    lab[[0, 1, 2, 3], 4, 4] = 9
    rows, csv_rows = export.write_track_results(tmp_path, lab, {}, geff=False)
    got = list(csv.DictReader((tmp_path / "tracks.csv").open()))
    assert len(got) == len(csv_rows) == 7 and [r["track_id"] for r in got].count("70000") == 3
    for r in got:
        mask = tifffile.imread(tmp_path / f"mask{int(r['frame']):03d}.tif")
        original = lab[int(r["frame"])] == int(r["track_id"])
        assert set(np.unique(mask[original])) == {int(r["ctc_label"])}
    ctc_of_big = {r["frame"]: r["ctc_label"] for r in got if r["track_id"] == "70000"}
    assert ctc_of_big["0"] == ctc_of_big["1"] != ctc_of_big["3"]  # two CTC tracks
    assert {int(r[0]) for r in rows} == {int(r["ctc_label"]) for r in got}


def test_geff(tmp_path):
    pytest.importorskip("geff", reason="GEFF export needs the optional 'geff' package")
    _, labels, parents = make_lineage_timelapse(6, (96, 96), 3, seed=2)
    rows = export.track_rows(labels, parents)
    export.write_geff(tmp_path / "t.geff", rows)
    import geff

    graph, _ = geff.read(str(tmp_path / "t.geff"))
    assert graph.number_of_nodes() == len(rows)


def test_geff_missing_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_geff(name, *a, **k):
        if name == "geff":
            raise ImportError("no geff")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_geff)
    with pytest.raises(RuntimeError, match="pip install geff"):
        export.write_geff(tmp_path / "t.geff", [])


def test_a_folder_with_the_users_mask_files_is_refused_and_left_alone(tmp_path):
    labels = np.zeros((3, 8, 8), np.int64)
    labels[:, 2:5, 2:5] = 1
    mine = {"mask7.tif": b"user 7", "mask0042.tif": b"user 42"}
    for name, data in mine.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(ValueError, match="not an earlier tracking result"):
        export.write_ctc(tmp_path, labels, {})
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == mine


def test_a_shorter_result_replaces_an_earlier_one_but_not_the_users_files(tmp_path):
    labels = np.zeros((5, 8, 8), np.int64)
    labels[:, 2:5, 2:5] = 1
    export.write_track_results(tmp_path, labels, {})  # an earlier, longer result
    (tmp_path / "mask7.tif").write_bytes(b"user 7")  # the user's, not a result frame
    export.write_track_results(tmp_path, labels[:3], {})
    names = sorted(f.name for f in tmp_path.glob("mask*.tif"))
    assert names == ["mask000.tif", "mask001.tif", "mask002.tif", "mask7.tif"]


def test_another_tools_result_is_refused_and_left_alone(tmp_path):
    """A new-user trial exported curated tracks into the folder of the result they came from:
    it was overwritten and cut to the new movie's frames. A CTC result devosam did not write
    (no tracks.csv) is now refused."""
    labels = np.zeros((5, 8, 8), np.int64)
    labels[:, 2:5, 2:5] = 1
    export.write_ctc(tmp_path, labels, {})  # as another tool writes it: masks + res_track
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    with pytest.raises(ValueError, match="a tracking result devosam did not write"):
        export.write_track_results(tmp_path, labels[:3], {})
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == before


def test_a_new_result_leaves_no_file_of_the_earlier_one(tmp_path):
    """The trial's second finding: review.csv and tracks.geff of an earlier run stayed beside
    a new result's masks."""
    labels = np.zeros((3, 8, 8), np.int64)
    labels[:, 2:5, 2:5] = 1
    export.write_track_results(tmp_path, labels, {})
    (tmp_path / "review.csv").write_text("frame,track_id,reason,confidence\n9,1,x,0.1\n")
    (tmp_path / "tracks.geff").mkdir()
    (tmp_path / "tracks.geff" / "zarr.json").write_text("{}")
    export.write_track_results(tmp_path, labels, {})
    assert not (tmp_path / "review.csv").exists() and not (tmp_path / "tracks.geff").exists()


def test_a_hidden_object_leaves_no_track_review_row_or_division_behind(tmp_path):
    """An object wholly under another of its plane has no pixels in the written labels: its
    track, its review events and its division are not counted or listed (trial 16: a daughter
    with no rows in tracks.csv, listed in review.csv, its mother counted as dividing)."""
    from napari_devosam.tracking.records import (
        Crop,
        PropagationResult,
        ReviewItem,
        Seed,
        TrackedObject,
        division_count,
    )
    from napari_devosam.tracking.result_files import write_results

    shape = (32, 32)
    mother = np.zeros(shape, bool)
    mother[4:14, 4:14] = True
    big, inside = np.zeros(shape, bool), np.zeros(shape, bool)
    big[2:16, 2:16] = True
    inside[6:10, 6:10] = True
    result = PropagationResult()
    result.divisions.append((1, (1,), -1, -2))
    result.ended[1] = ((1,), "divided")
    for track, mask in ((-1, big), (-2, inside)):  # -2 lies wholly under -1
        result.objects.append(TrackedObject(track, (1,), Crop.from_mask(mask), 0.9, 0.9, 1,
                                            division=True))
        result.review.append(ReviewItem((1,), track, "division", 0.9))
    result.ended[-2] = ((2,), "vanished")
    rows, csv_rows = write_results(tmp_path, [Seed(1, (0,), mother)], result, axis=0,
                                   n_frames=3, plane_shape=shape)
    assert {r["track_id"] for r in csv_rows} == {1, 2}  # the hidden daughter (3) is not
    assert division_count({r["track_id"]: r["parent_id"] for r in csv_rows
                           if r["parent_id"]}) == 0
    with (tmp_path / "review.csv").open() as f:
        listed = {r["track_id"] for r in csv.DictReader(f)}
    assert listed == {"1"}  # its division; the hidden daughter's end is not listed
