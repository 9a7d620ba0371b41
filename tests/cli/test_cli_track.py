"""`devosam track` through the CLI's main(), with a tiny checkpoint (no quality claims)."""

import csv

import numpy as np
import pytest
import tifffile

import napari_devosam.models.loading as model_loading
from napari_devosam.cli import main
from napari_devosam.synthetic.lineage import make_lineage_timelapse


@pytest.fixture
def env(tmp_path, tiny_checkpoint):
    ckpt = tiny_checkpoint
    stack, labels, _ = make_lineage_timelapse(4, (96, 96), 3, seed=2)
    tifffile.imwrite(tmp_path / "movie.tif", stack)
    tifffile.imwrite(tmp_path / "seeds.tif", labels[0].astype(np.uint16))
    tifffile.imwrite(tmp_path / "all.tif", labels.astype(np.uint16))
    return tmp_path, str(ckpt)


def test_track_writes_ctc_and_csv(env, capsys):
    tmp, ckpt = env
    out = tmp / "out"
    rc = main(["track", str(tmp / "movie.tif"), "--seed-labels", str(tmp / "seeds.tif"),
               "--model", ckpt, "--device", "cpu", "--out", str(out)])
    assert rc == 0
    assert sorted(p.name for p in out.glob("mask*.tif")) == [f"mask{i:03d}.tif" for i in range(4)]
    first = tifffile.imread(out / "mask000.tif")
    assert first.dtype == np.uint16 and set(np.unique(first)) == {0, 1, 2, 3}
    tracks = (out / "res_track.txt").read_text().split("\n")
    assert tracks[0].split()[:2] == ["1", "0"]
    rows = list(csv.DictReader((out / "tracks.csv").open()))
    assert {r["frame"] for r in rows} >= {"0"}
    assert (out / "review.csv").is_file()
    said = capsys.readouterr().out
    ids = {r["track_id"] for r in rows}  # the count said is tracks.csv's (a new-user trial:
    assert f"wrote {len(ids)} track" in said  # it was the CTC rows, 25 for 21 tracks)
    pieces = len([line for line in tracks if line.strip()])
    assert (f"{pieces} CTC tracks" in said) == (pieces != len(ids))


def test_track_seed_plane_from_stack_labels(env):
    tmp, ckpt = env
    rc = main(["track", str(tmp / "movie.tif"), "--seed-labels", str(tmp / "all.tif"),
               "--seed-plane", "3", "--direction", "backward", "--model", ckpt,
               "--device", "cpu", "--out", str(tmp / "o2")])
    assert rc == 0
    assert set(np.unique(tifffile.imread(tmp / "o2" / "mask003.tif"))) - {0}


@pytest.mark.parametrize("make, extra, message", [
    (lambda t: np.zeros((4, 96, 96), np.uint16), [], "no objects"),
    (lambda t: np.ones((50, 50), np.uint16), [], "fit neither"),
    (None, ["--seed-plane", "9"], "outside"),
    (None, ["--last", "4"], "--last 4 is outside the axis of length 4"),
    (None, ["--last", "-5"], "outside"),
    (None, ["--seed-plane", "2", "--last", "1"], "nothing to propagate forward"),
])
def test_bad_input_is_one_line(env, capsys, make, extra, message):
    tmp, ckpt = env
    seeds = tmp / "seeds.tif"
    if make is not None:
        seeds = tmp / "bad.tif"
        tifffile.imwrite(seeds, make(tmp))
    rc = main(["track", str(tmp / "movie.tif"), "--seed-labels", str(seeds), *extra,
               "--model", ckpt, "--out", str(tmp / "x")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and message in err and len(err.splitlines()) == 1


def test_stack_without_axis_and_axis_of_length_one(env, capsys):
    tmp, ckpt = env
    tifffile.imwrite(tmp / "plane.tif", np.zeros((96, 96), np.uint16))
    tifffile.imwrite(tmp / "one.tif", np.zeros((1, 96, 96), np.uint16))
    for image, message in (("plane.tif", "no T or Z"), ("one.tif", "length 1")):
        rc = main(["track", str(tmp / image), "--seed-labels", str(tmp / "seeds.tif"),
                   "--model", ckpt, "--out", str(tmp / "x")])
        err = capsys.readouterr().err.strip()
        assert rc == 1 and message in err and len(err.splitlines()) == 1


def test_review_uses_the_exported_ids_and_a_rerun_leaves_no_stale_frames(env):
    from napari_devosam.tracking.records import PropagationResult, Seed, TrackedObject
    from napari_devosam.tracking.result_files import real_track_ids

    tmp, ckpt = env
    out = tmp / "out"
    args = ["--seed-labels", str(tmp / "seeds.tif"), "--model", ckpt, "--device", "cpu",
            "--out", str(out)]
    assert main(["track", str(tmp / "movie.tif"), *args]) == 0
    tracks = {r["track_id"] for r in csv.DictReader((out / "tracks.csv").open())}
    review = list(csv.DictReader((out / "review.csv").open()))
    assert all(int(r["track_id"]) > 0 and r["track_id"] in tracks for r in review)
    short = tifffile.imread(tmp / "movie.tif")[:2]
    tifffile.imwrite(tmp / "short.tif", short)
    assert main(["track", str(tmp / "short.tif"), *args]) == 0
    assert sorted(p.name for p in out.glob("mask*.tif")) == ["mask000.tif", "mask001.tif"]
    # placeholders become ids above the seeds, in order of appearance, parents included
    mask = np.ones((4, 4), bool)
    seeds = [Seed(5, (0,), mask)]
    result = PropagationResult()
    result.objects += [TrackedObject(-2, (1,), None, 1.0, 1.0, 5, division=True),
                       TrackedObject(-3, (1,), None, 1.0, 1.0, 5, division=True)]
    assert real_track_ids(seeds, result) == {5: 5, -2: 6, -3: 7}


def test_export_only_writes_the_store_tracks_as_annotated(env, capsys, monkeypatch):
    from napari_devosam.annotation.store import AnnotationStore

    tmp, ckpt = env
    monkeypatch.setattr(model_loading, "load_model",
                        lambda *a, **k: pytest.fail("--export-only must not load a model"))
    movie = tmp / "movie.tif"
    stack = tifffile.imread(movie)
    _, labels, _ = make_lineage_timelapse(4, (96, 96), 3, seed=2)
    store = AnnotationStore.for_image(movie, stack)
    for f in range(4):  # the truth, committed plane by plane (as a user's corrections)
        ids = [int(t) for t in np.unique(labels[f])[1:]]
        store.commit((f,), [labels[f] == t for t in ids])
    out = tmp / "exported"
    rc = main(["track", str(movie), "--annotations", "--export-only", "--out", str(out)])
    assert rc == 0 and "as annotated" in capsys.readouterr().out
    frames = [tifffile.imread(out / f"mask{f:03d}.tif") for f in range(4)]
    for f in range(4):
        assert np.array_equal(frames[f] > 0, labels[f] > 0)
    assert (out / "tracks.csv").is_file() and not (out / "review.csv").exists()
    assert main(["track", str(movie), "--seed-labels", str(tmp / "seeds.tif"),
                 "--export-only", "--out", str(out)]) == 1
    assert "add --annotations" in capsys.readouterr().err


def test_track_refuses_a_folder_of_the_users_mask_files(env, capsys):
    tmp, ckpt = env
    out = tmp / "mine"
    out.mkdir()
    (out / "mask12.tif").write_bytes(b"the user's own")
    rc = main(["track", str(tmp / "movie.tif"), "--seed-labels", str(tmp / "seeds.tif"),
               "--model", ckpt, "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "not an earlier tracking result" in err and err.count("\n") == 1
    assert [f.name for f in out.iterdir()] == ["mask12.tif"]
    assert (out / "mask12.tif").read_bytes() == b"the user's own"


def test_review_csv_quotes_reasons_and_names_blank_planes(env, capsys):
    tmp, ckpt = env
    movie = tifffile.imread(tmp / "movie.tif")
    movie[1] = 0  # a frame the microscope did not record
    tifffile.imwrite(tmp / "gap.tif", movie)
    out = tmp / "gap"
    assert main(["track", str(tmp / "gap.tif"), "--seed-labels", str(tmp / "seeds.tif"),
                 "--model", ckpt, "--device", "cpu", "--out", str(out)]) == 0
    assert "warning: 1 blank plane (no finite value, or constant) skipped" in \
        capsys.readouterr().err  # on stderr too, as devosam segment warns
    with (out / "review.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["frame", "track_id", "ctc_label", "reason", "confidence"]
    assert all(len(r) == 5 for r in rows)
    [blank] = [r for r in rows[1:] if r[0] == "1" and r[3].startswith("blank")]
    assert blank[1] == "" and blank[2] == "" and "," in blank[3]  # a whole plane; commas
    # the gap splits tracks in the CTC result: events name the label the masks show
    ctc = {int(line.split()[0]) for line in (out / "res_track.txt").read_text().splitlines()}
    labelled = [r for r in rows[1:] if r[1]]
    assert labelled and all(int(r[2]) in ctc for r in labelled)




@pytest.fixture
def seen_params(monkeypatch):
    """The ``PropagationParams`` every ``propagate`` call of the CLI gets."""
    import importlib

    # the package re-exports the function under the module's name: import the module itself
    module = importlib.import_module("napari_devosam.tracking.propagate")
    seen, real = [], module.propagate

    def spy(*args, params=None, **kw):
        seen.append(params)
        return real(*args, params=params, **kw)

    monkeypatch.setattr(module, "propagate", spy)
    return seen


def _track_args(tmp, ckpt):
    return ["track", str(tmp / "movie.tif"), "--seed-labels", str(tmp / "seeds.tif"),
            "--model", ckpt, "--device", "cpu", "--out", str(tmp / "out")]


@pytest.mark.parametrize("flag, windows", [([], True), (["--whole-embedding"], False)])
def test_whole_embedding_flag_reaches_propagation(env, seen_params, flag, windows):
    assert main([*_track_args(*env), *flag]) == 0
    assert [p.decode_window for p in seen_params] == [windows]


def test_window_context_options_reach_propagation_and_bad_ones_are_one_line(env, seen_params,
                                                                               capsys):
    base = _track_args(*env)
    assert main([*base, "--window-context", "0.5", "--window-context-cells", "5"]) == 0
    assert (seen_params[0].window_context, seen_params[0].window_context_cells) == (0.5, 5)
    capsys.readouterr()
    assert main([*base, "--window-context", "nan"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "window_context" in err[0]


def _other_values():
    """A valid value other than the default for every ``PropagationParams`` field."""
    from napari_devosam.tracking.params import PropagationParams
    from napari_devosam.utils.params import specs

    out = {}
    for name, value in PropagationParams().to_dict().items():
        spec = specs(PropagationParams)[name]
        if spec.kind is bool:
            out[name] = not value
        elif spec.choices:
            out[name] = next(c for c in spec.choices if c != value)
        elif spec.kind is int:
            out[name] = value + 1
        else:
            out[name] = value + 1.0 if spec.high is None else round((value + spec.high) / 2, 3)
    return out


def test_params_file_sets_every_field_and_the_flags_override_it(env, seen_params, tmp_path):
    import json

    from napari_devosam.tracking.params import PropagationParams

    values = _other_values()
    path = tmp_path / "params.json"
    path.write_text(json.dumps(values))
    assert main([*_track_args(*env), "--params", str(path)]) == 0
    assert seen_params[-1] == PropagationParams(**values)
    path.write_text(json.dumps({"decoding": {"window_context_cells": 7, "window_context": 0.2},
                                "divisions": {"division_min_area": 12}}))
    assert main([*_track_args(*env), "--params", str(path), "--window-context-cells", "5",
                 "--no-divisions", "--stain", "nuclei"]) == 0
    p = seen_params[-1]
    assert (p.window_context_cells, p.window_context, p.division_min_area) == (5, 0.2, 12)
    assert p.detect_divisions is False and p.decode_window is True and p.stain == "nuclei"


@pytest.mark.parametrize("text, message", [
    ('{"min_aera": 3}', "params.json: unknown propagation parameter(s): min_aera"),
    ('{"min_iou_prev": 1.5}', "params.json: min_iou_prev must be within [0, 1], got 1.5"),
    ('{"min_area": "many"}', "params.json: min_area must be a whole number"),
    ("not json", "cannot read the parameter file"),
])
def test_a_bad_params_file_is_one_line(env, seen_params, tmp_path, capsys, text, message):
    path = tmp_path / "params.json"
    path.write_text(text)
    assert main([*_track_args(*env), "--params", str(path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and seen_params == []


def test_track_says_its_stain_and_warns_of_a_wrong_one(env, capsys):
    """The run's stain is printed as ``devosam segment`` prints it; a ``--stain`` the movie
    does not read as is a warning on stderr (a new-user trial forced the wrong one unwarned)."""
    assert main(_track_args(*env)) == 0
    out, err = capsys.readouterr()
    assert "stain: nuclei (decided for the whole stack on all 4 planes: 4 nuclei" in out
    assert "warning: stain" not in err
    assert main([*_track_args(*env), "--stain", "membrane"]) == 0
    out, err = capsys.readouterr()
    note = ("stain: membrane (given with --stain, but the stack reads as nuclei: all 4 planes: "
            "4 nuclei; check --stain)")
    assert f"devosam track: warning: {note}" in err.splitlines()
    assert "stain:" not in out  # said once
    assert main([*_track_args(*env)]) == 0
    lines = capsys.readouterr().out.splitlines()  # the stain before the summary, as segment
    assert lines.index(next(x for x in lines if x.startswith("stain: "))) < \
        lines.index(next(x for x in lines if x.startswith("wrote ")))
    assert main([*_track_args(*env), "--stain", "nuclei"]) == 0
    out, err = capsys.readouterr()
    assert "stain: nuclei (given with --stain)" in out.splitlines()
    assert "warning: stain" not in err
