"""Long CLI work says how long it will take before its planes are processed (issue 25):
``devosam track`` and ``devosam batch`` (``embed`` and ``segment --auto``:
test_cli_segment.py; ``finetune``: test_cli_finetune_stop.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tifffile

import napari_devosam.models.loading as model_loading
from napari_devosam.cli import main
from napari_devosam.synthetic.lineage import make_lineage_timelapse


@pytest.fixture
def movie(tmp_path, tiny_checkpoint):
    """A 5-frame movie, seeds on frame 0, a tiny checkpoint."""
    stack, labels, _ = make_lineage_timelapse(5, (96, 96), 3, seed=2)
    tifffile.imwrite(tmp_path / "movie.tif", stack)
    tifffile.imwrite(tmp_path / "seeds.tif", labels[0].astype(np.uint16))
    return tmp_path, tiny_checkpoint


def _track(tmp, ckpt, out, *extra):
    return main(["track", str(tmp / "movie.tif"), "--seed-labels", str(tmp / "seeds.tif"),
                 "--model", ckpt, "--device", "cpu", "--out", str(tmp / out), *extra])


def test_track_says_how_long_before_propagating(movie, capsys):
    tmp, ckpt = movie
    assert _track(tmp, ckpt, "o1") == 0
    err = capsys.readouterr().err
    # nothing recorded: the first plane's whole step (embedding + propagation) is timed
    assert ("devosam track: 4 planes to track; no time recorded for propagation and new-cell "
            "detection here yet: timing the first plane") in err
    line = next(x for x in err.splitlines() if "measured on the first" in x)
    assert re.search(r"about .+ left for 3 planes \([\d.]+ s per plane, measured on the "
                     r"first\)$", line), line
    # the next run: the whole work from the times recorded by this one, before any work
    assert _track(tmp, ckpt, "o2", "--cache-dir", str(tmp / "other")) == 0
    err = capsys.readouterr().err
    assert "timing" not in err
    line = next(x for x in err.splitlines() if "to track" in x)
    assert re.fullmatch(r"devosam track: about .+ for 4 planes to track \(embedding 5 planes "
                        r"at [\d.]+ s each, recorded on an earlier run here; propagation of 3 "
                        r"objects at [\d.]+ s per object-plane and new-cell detection [\d.]+ s "
                        r"per plane, recorded on an earlier run here; more if new cells start "
                        r"tracks\)", line), line
    assert err.index(line) < err.index("propagating")  # before the first plane is tracked
    # every plane cached (by devosam embed): the propagation is still counted
    cache = str(tmp / "filled")
    assert main(["embed", str(tmp / "movie.tif"), "--model", ckpt, "--device", "cpu",
                 "--cache-dir", cache, "--no-progress"]) == 0
    capsys.readouterr()
    assert _track(tmp, ckpt, "o3", "--cache-dir", cache) == 0
    err = capsys.readouterr().err
    assert re.search(r"devosam track: about .+ for 4 planes to track \(no embedding: every "
                     r"plane is in the cache; propagation of 3 objects", err), err


def test_track_estimate_counts_the_recorded_propagation_time(movie, capsys):
    """Fails with an encoder-only estimate: 4 planes x 7 s of recorded propagation."""
    from napari_devosam.utils.estimate import record_key, record_seconds

    tmp, ckpt = movie
    record_seconds("track|" + record_key(ckpt, "cpu", "fp32"), 7.0)
    record_seconds(record_key(ckpt, "cpu", "fp32"), 0.5)
    assert _track(tmp, ckpt, "o1") == 0
    line = next(x for x in capsys.readouterr().err.splitlines() if "to track" in x)
    assert line == ("devosam track: about 30 s for 4 planes to track (embedding 5 planes at "
                    "0.5 s each, recorded on an earlier run here; propagation and new-cell "
                    "detection 7 s per plane, recorded on an earlier run here)")


def test_track_estimate_grows_with_the_seeds_per_object_plane(movie, capsys):
    """Issue 25: propagation is estimated per seed and plane from the recorded per-object
    time (a per-plane record beside it is not used); fails with a per-plane estimate."""
    from napari_devosam.utils.estimate import (
        forget_seconds,
        object_key,
        plane_part_key,
        record_key,
        record_seconds,
    )

    tmp, ckpt = movie
    key = record_key(ckpt, "cpu", "fp32")
    record_seconds("track|" + key, 7.0)
    record_seconds(object_key("track", key), 2.0)
    record_seconds(key, 0.25)
    assert _track(tmp, ckpt, "dense") == 0  # 3 seeds: 4 x 3 x 2 s + 5 x 0.25 s
    line = next(x for x in capsys.readouterr().err.splitlines() if "to track" in x)
    assert line == ("devosam track: about 25 s for 4 planes to track (embedding 5 planes at "
                    "0.25 s each, recorded on an earlier run here; propagation of 3 objects "
                    "at 2 s per object-plane, recorded on an earlier run here; more if new "
                    "cells start tracks)")
    seeds = tifffile.imread(tmp / "seeds.tif")
    first = np.unique(seeds)[1]
    tifffile.imwrite(tmp / "seeds.tif", np.where(seeds == first, seeds, 0).astype(np.uint16))
    sized = key + "|128px"  # the dense run recorded its own times for its planes' size
    record_seconds(object_key("track", sized), 2.0)
    record_seconds(key, 0.25)
    forget_seconds(plane_part_key("track", sized))  # and its new-cell detection time
    # 1 seed, nothing cached: 4 x 1 x 2 s + 5 x 0.25 s
    assert _track(tmp, ckpt, "sparse", "--cache-dir", str(tmp / "other")) == 0
    line = next(x for x in capsys.readouterr().err.splitlines() if "to track" in x)
    assert line.startswith("devosam track: about 9 s for 4 planes to track (")
    assert "propagation of 1 object at 2 s per object-plane" in line


def test_a_track_run_records_its_time_per_object_plane(movie, capsys):
    """The run's propagation time over the object-planes it visited (tracks going summed
    over its planes) is kept beside the per-plane time."""
    from napari_devosam.utils.estimate import (
        object_key,
        record_key,
        recorded_seconds,
        size_class,
    )

    tmp, ckpt = movie
    key = record_key(ckpt, "cpu", "fp32") + "|" + size_class((96, 96))  # the planes' class
    assert recorded_seconds(object_key("track", key)) is None
    assert _track(tmp, ckpt, "o1", "--params", str(_wide_open(tmp))) == 0
    capsys.readouterr()
    per_plane = recorded_seconds("track|" + key)
    per_object = recorded_seconds(object_key("track", key))
    assert per_plane is not None and per_object is not None
    # no track ends with these thresholds: 3 tracks on each of the 4 planes
    assert per_object == pytest.approx(per_plane / 3, rel=0.01)


def _wide_open(tmp):
    """Thresholds under which no track of the random tiny SAM ends (no new tracks)."""
    import json

    path = tmp / "wide.json"
    path.write_text(json.dumps({"min_area": 1, "min_area_fraction": 0.0,
                                "min_inside_fraction": 0.0, "min_iou_prev": 0.0,
                                "min_pred_iou": 0.0, "review_below": 1.0, "max_growth": 0.0,
                                "min_embryo_fraction": 0.0, "min_stained_fraction": 0.0,
                                "new_tracks": False}))
    return path


def test_auto_estimate_counts_the_recorded_segmentation_time(movie, capsys):
    """Fails with an encoder-only estimate (the trial's "about 8 s", for 90 s of work)."""
    from napari_devosam.utils.estimate import record_key, record_seconds

    tmp, ckpt = movie
    record_seconds("auto|" + record_key(ckpt, "cpu", "fp32"), 4.0)
    record_seconds(record_key(ckpt, "cpu", "fp32"), 0.2)
    assert main(["segment", str(tmp / "movie.tif"), "--auto", "--model", ckpt, "--device",
                 "cpu", "--out", str(tmp / "auto.tif")]) == 0
    line = next(x for x in capsys.readouterr().err.splitlines() if "to segment" in x)
    assert line == ("devosam segment: about 21 s for 5 planes to segment (embedding 5 planes "
                    "at 0.2 s each, recorded on an earlier run here; automatic segmentation "
                    "4 s per plane, recorded on an earlier run here)")


def test_batch_says_how_long_before_any_task(tmp_path, capsys):
    pytest.importorskip("distributed")
    (tmp_path / "in").mkdir()
    for i in range(2):
        tifffile.imwrite(tmp_path / "in" / f"m{i}.tif",
                         np.random.default_rng(i).integers(0, 255, (3, 64, 64), np.uint8))
    out = tmp_path / "out"
    argv = ["batch", str(tmp_path / "in"), "--out", str(out), "--format", "tif",
            "--workers", "1", "--model", "embryo_tiny", "--steps", "embed", "--no-progress"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    err = captured.err
    assert "devosam batch: 6 planes to embed in 2 files; timing the encoder here" in err
    line = next(x for x in err.splitlines() if "left to embed" in x)
    assert re.fullmatch(r"devosam batch: about .+ for 5 planes left to embed "
                        r"\([\d.]+ s per plane, measured here, warm\) in 2 files "
                        r"\(encoder time, shared by the workers\)", line), line
    assert "2 files, 6 planes" in captured.out  # the report comes after
    # rerun: every step is done: said so, without starting a cluster
    import napari_devosam.batch.cluster as cluster

    def no_cluster(*args, **kwargs):
        raise AssertionError("no cluster is started when nothing is left to do")

    real_open, cluster.open_client = cluster.open_client, no_cluster
    try:
        assert main(argv) == 0
    finally:
        cluster.open_client = real_open
    captured = capsys.readouterr()
    assert "to embed" not in captured.err
    assert captured.out.strip() == (f"devosam batch: all 2 images are already done (manifest "
                                    f"{out.resolve() / 'manifest.json'}); nothing to do")


def test_batch_reads_the_recorded_time_without_loading_a_model(tmp_path, monkeypatch, capsys):
    from napari_devosam.batch.runner import BatchOptions
    from napari_devosam.cli.batch_estimate import say_before_batch
    from napari_devosam.utils.estimate import record_key, record_seconds

    tifffile.imwrite(tmp_path / "a.tif", np.zeros((4, 32, 32), np.uint8))
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((32, 32), np.uint8))
    record_seconds(record_key("embryo_tiny", "cpu", "fp32"), 2.5)

    def no_load(*args, **kwargs):
        raise AssertionError("no model is loaded when a time is recorded")

    monkeypatch.setattr(model_loading, "load_model", no_load)
    files = [tmp_path / "a.tif", tmp_path / "b.tif"]
    opts = BatchOptions(model="embryo_tiny", device="cpu", precision="fp32", fmt="tif",
                        steps=("embed",))
    line = say_before_batch(files, tmp_path / "out", opts)
    assert line == ("about 12 s for 5 planes to embed (2.5 s per plane, recorded on an "
                    "earlier run here) in 2 files (encoder time, shared by the workers)")
    assert capsys.readouterr().err.strip() == f"devosam batch: {line}"


def test_batch_estimate_counts_the_recorded_automatic_time(tmp_path, monkeypatch, capsys):
    """Fails with an encoder-only estimate (the trial's "about 0.7 s" for 104 s of work)."""
    from napari_devosam.batch.runner import BatchOptions
    from napari_devosam.cli.batch_estimate import say_before_batch
    from napari_devosam.utils.estimate import record_key, record_seconds

    tifffile.imwrite(tmp_path / "a.tif", np.zeros((4, 32, 32), np.uint8))
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((32, 32), np.uint8))
    record_seconds(record_key("embryo_tiny", "cpu", "fp32"), 0.5)
    record_seconds("auto|" + record_key("embryo_tiny", "cpu", "fp32"), 3.5)

    def no_load(*args, **kwargs):
        raise AssertionError("no model is loaded when the times are recorded")

    monkeypatch.setattr(model_loading, "load_model", no_load)
    opts = BatchOptions(model="embryo_tiny", device="cpu", precision="fp32", fmt="tif")
    line = say_before_batch([tmp_path / "a.tif", tmp_path / "b.tif"], tmp_path / "out", opts)
    assert line == ("about 20 s for 5 planes in 2 files (embedding 5 planes at 0.5 s each, "
                    "recorded on an earlier run here; automatic segmentation 3.5 s per plane, "
                    "recorded on an earlier run here); the workers share this work")


def test_an_alias_reads_the_time_recorded_under_its_model(tmp_path, monkeypatch, capsys):
    """``--model demo`` and the panel's ``embryo_tiny`` share one record."""
    from napari_devosam.batch.runner import BatchOptions
    from napari_devosam.cli.batch_estimate import say_before_batch
    from napari_devosam.models.registry import canonical_name
    from napari_devosam.utils.estimate import record_key, record_seconds

    tifffile.imwrite(tmp_path / "a.tif", np.zeros((32, 32), np.uint8))
    record_seconds(record_key(canonical_name("demo"), "cpu", "fp32"), 2.5)
    monkeypatch.setattr(model_loading, "load_model", lambda *a, **k: 1 / 0)
    opts = BatchOptions(model="demo", device="cpu", precision="fp32", fmt="tif",
                        steps=("embed",))
    line = say_before_batch([tmp_path / "a.tif"], tmp_path / "out", opts)
    assert "2.5 s per plane, recorded on an earlier run here" in line


def test_track_estimate_has_no_detection_part_when_new_tracks_is_off(movie, capsys):
    """A new-user trial: with ``new_tracks`` off the estimate still added the recorded
    new-cell detection time per plane and said new cells would add to it."""
    import json

    from napari_devosam.utils.estimate import (
        object_key,
        plane_part_key,
        record_key,
        record_seconds,
    )

    tmp, ckpt = movie
    key = record_key(ckpt, "cpu", "fp32")
    record_seconds(object_key("track", key), 2.0)
    record_seconds(plane_part_key("track", key), 1.0)
    record_seconds(key, 0.25)
    off = tmp / "off.json"
    off.write_text(json.dumps({"new_tracks": False}))
    assert _track(tmp, ckpt, "no_new", "--params", str(off)) == 0
    line = next(x for x in capsys.readouterr().err.splitlines() if "to track" in x)
    assert line.endswith("propagation of 3 objects at 2 s per object-plane, recorded on an "
                         "earlier run here)")
    assert "about 25 s" in line  # 4 x 3 x 2 s + 5 x 0.25 s, no 4 x 1 s of detection


def test_step_times_are_kept_per_plane_size(movie, capsys):
    """New-user trial 20: 40 x 40 crops recorded 1.1 s a plane, and the estimate said so of
    472 x 512 planes, which took 5.3 s. A time recorded on planes of another size class is
    not used: the first plane is timed instead."""
    from napari_devosam.utils.estimate import (
        record_key,
        record_seconds,
        recorded_step,
        size_class,
    )

    tmp, ckpt = movie
    key = record_key(ckpt, "cpu", "fp32")
    assert size_class((40, 40)) == "32px" and size_class((472, 512)) == "512px"
    assert size_class((472, 512, 3)) == "512px" and size_class((96, 96)) == "128px"
    record_seconds("auto|" + key + "|32px", 1.1)  # small crops
    record_seconds(key, 0.2)
    assert recorded_step("auto", key, size=(40, 40))[1] == 1.1
    assert recorded_step("auto", key, size=(472, 512)) is None
    assert main(["segment", str(tmp / "movie.tif"), "--auto", "--model", ckpt, "--device",
                 "cpu", "--out", str(tmp / "auto.tif")]) == 0
    err = capsys.readouterr().err
    assert "no time recorded for automatic segmentation here yet" in err
    assert recorded_step("auto", key, size=(96, 96)) is not None  # this run's, for its size
