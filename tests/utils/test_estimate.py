"""Estimates of long work: durations as read, and the first unit's measure."""

from napari_devosam.utils.clocks import FirstUnit
from napari_devosam.utils.estimate import (
    about,
    capped,
    duration,
    estimate_line,
    record_key,
    record_seconds,
    recorded_seconds,
)


def test_duration_reads_as_a_user_says_it():
    assert duration(0.2) == "under 1 s"
    assert duration(42) == "42 s"
    assert duration(200) == "3 min 20 s"
    assert duration(35 * 60) == "35 min"
    assert duration(3600 + 5 * 60) == "1 h 05 min"


def test_estimate_line_is_count_times_measured_time():
    assert estimate_line(20, 5.0, "plane") == "about 1 min 40 s for 20 planes " \
                                               "(5 s per plane, measured)"


def test_first_unit_says_once_how_long_the_rest_takes():
    now = [100.0]
    first = FirstUnit("plane", clock=lambda: now[0])
    assert first(0, 421) is None  # nothing measured yet
    now[0] += 5.0
    line = first(1, 421)
    assert line == "about 35 min left for 420 planes (5 s per plane, measured on the first)"
    now[0] += 5.0
    assert first(2, 421) is None  # said once
    assert FirstUnit("plane", clock=lambda: 0.0)(1, 1) is None  # nothing left: nothing said


def test_a_setup_said_with_done_zero_is_kept_out_of_the_rate():
    """A run that yields ``done == 0`` when its setup is over (tracking: the stain decided
    on 9 planes) is timed from there (trial 16: a first-plane estimate 3.5x the run)."""
    from napari_devosam.utils.clocks import TimeLeft

    now = [100.0]
    for kind in (FirstUnit, TimeLeft):
        clock = kind("plane", clock=lambda: now[0])
        now[0] += 30.0  # the setup
        assert clock(0, 11) is None
        now[0] += 2.0
        assert "(2 s per plane, measured on the first)" in clock(1, 11)


def test_about_never_says_about_under_a_second():
    assert about(0.3) == "about 0.3 s" and about(200) == "about 3 min 20 s"
    assert estimate_line(3, 0.1, "plane", "measured here", " to embed") == \
        "about 0.3 s for 3 planes to embed (0.1 s per plane, measured here)"


def test_capped_says_the_limit_and_what_it_cuts():
    assert capped(190, None) == "about 3 min 10 s"
    assert capped(190, 480, "--max-minutes") == \
        "about 3 min 10 s, within the 8 min limit of --max-minutes"
    assert capped(22 * 60, 480, "--max-minutes", stops_after=483) == \
        "about 8 min 03 s, capped at 8 min by --max-minutes (about 22 min without it)"
    assert capped(30, 6, "--max-minutes") == \
        "about 6 s, capped at 6 s by --max-minutes (about 30 s without it)"


def test_a_recorded_time_is_read_back_by_the_next_run(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVOSAM_CACHE_DIR", str(tmp_path / "cache"))
    key = record_key("vit_b", "cpu", "fp32")
    assert key == "vit_b|cpu|fp32" and recorded_seconds(key) is None
    record_seconds(key, 4.25)
    record_seconds(record_key("vit_b", "cuda:0", "bf16"), 0.05)
    assert recorded_seconds(key) == 4.25
    record_seconds(key, float("nan"))  # nothing measured: the record stays
    record_seconds(key, 0.0)
    assert recorded_seconds(key) == 4.25
    (tmp_path / "cache" / "encoder_times.json").write_text("not json")
    assert recorded_seconds(key) is None  # a damaged record: measure again


def test_work_line_counts_the_embedding_and_every_step():
    from napari_devosam.utils.estimate import step_key, step_seconds, work_line

    assert work_line(10, [("auto", 2.0, "recorded")], 4, 0.5, "measured here") == (
        "about 22 s for 10 planes to segment (embedding 4 planes at 0.5 s each, measured "
        "here; automatic segmentation 2 s per plane, recorded)")
    assert work_line(3, [("track", 1.0, "recorded")]).startswith(
        "about 3 s for 3 planes to track (no embedding: every plane is in the cache; ")
    assert step_key("auto", "m|cpu|fp32") == "auto|m|cpu|fp32"
    assert step_seconds(12.0, 10, 4, 0.5) == 1.0  # the encoder's 2 s taken out


def test_time_left_follows_the_rate_of_the_planes_done_so_far():
    from napari_devosam.utils.clocks import TimeLeft

    now = [0.0]
    left = TimeLeft("plane", clock=lambda: now[0])
    assert left(0, 10) is None
    now[0] = 1.0  # a fast first plane: about 9 s left
    assert left(1, 10) == "about 9 s left for 9 planes (1 s per plane, measured on the first)"
    now[0] = 21.0  # then dense planes: the estimate corrects itself
    assert left(3, 10) == "about 49 s left for 7 planes (7 s per plane, measured on the 3 done)"
    assert left(10, 10) is None


def test_a_run_records_the_encoder_and_its_step(tmp_path, monkeypatch):
    from napari_devosam.utils.estimate import record_run, step_key

    monkeypatch.setenv("DEVOSAM_CACHE_DIR", str(tmp_path / "cache"))
    key = record_key("embryo_tiny", "cpu", "fp32")
    assert record_run("auto", key, 0.0, 0, 0, None) is None  # no plane: nothing recorded
    assert recorded_seconds(step_key("auto", key)) is None
    assert record_run("auto", key, 12.0, 10, 4, 0.5) == 1.0  # the encoder's 2 s taken out
    assert recorded_seconds(key) == 0.5 and recorded_seconds(step_key("auto", key)) == 1.0
    assert record_run("track", key, 6.0, 2, 2, None) == 2.5  # the recorded encoder time
    assert recorded_seconds(step_key("track", key)) == 2.5


def test_panel_line_counts_the_whole_work_once_the_step_is_recorded(tmp_path, monkeypatch):
    from napari_devosam.utils.estimate import panel_line, step_key

    monkeypatch.setenv("DEVOSAM_CACHE_DIR", str(tmp_path / "cache"))
    key = record_key("embryo_tiny", "cpu", "fp32")
    assert panel_line("Segment all planes", 0, "auto", key, 0, 0.5) == ""
    untimed = panel_line("Segment all planes", 10, "auto", key, 10, 0.5)
    assert untimed == (
        "Segment all planes: 10 planes to segment: about 5 s for 10 planes to embed (0.5 s "
        "per plane, measured here); this counts the encoder only (no time recorded for "
        "automatic segmentation here yet: the first plane will be timed)")
    record_seconds(step_key("auto", key), 6.4)
    assert panel_line("Segment all planes", 10, "auto", key, 10, 0.5) == (
        "Segment all planes: about 1 min 09 s for 10 planes to segment (embedding 10 planes "
        "at 0.5 s each, measured here; automatic segmentation 6.4 s per plane, recorded on an "
        "earlier run here)")
    assert "propagation" in panel_line("Propagate", 4, "track", key, 4, 0.5)
    assert "first plane will be timed" in panel_line("Propagate", 4, "track", key, 4, 0.5)
    # no time at all: the count, and the promise to time the first plane
    assert panel_line("Propagate", 4, "track", None, 4, None) == (
        "Propagate: 4 planes to track; no time recorded for propagation and new-cell "
        "detection here yet: the first plane will be timed")
    record_seconds(key, 0.25)  # an earlier run's encoder time, when none is measured yet
    assert panel_line("Precompute all planes", 8, None, key, 8) == (
        "Precompute all planes: about 2 s for 8 planes to embed (0.25 s per plane, recorded "
        "on an earlier run here)")
    assert panel_line("Precompute all planes", 8, None, key, 0).endswith("no encoder work")
    assert panel_line("Precompute all planes", 8, None, key, 6, 0.5) == (
        "Precompute all planes: about 3 s for 6 planes to embed (0.5 s per plane, measured "
        "here; 2 of 8 in the cache)")


def test_propagation_is_estimated_per_object_plane_when_recorded(tmp_path, monkeypatch):
    """Issue 25: a per-plane time recorded on a sparse movie is far off on a dense one; the
    per-object-plane time scales with the seeds. Fails with a per-plane estimate."""
    from napari_devosam.utils.estimate import object_key, panel_line, step_key, work_line

    monkeypatch.setenv("DEVOSAM_CACHE_DIR", str(tmp_path / "cache"))
    key = record_key("embryo_tiny", "cpu", "fp32")
    record_seconds(step_key("track", key), 3.0)  # an older record file: per plane only
    assert panel_line("Propagate", 7, "track", key, 0, objects=104) == (
        "Propagate: about 21 s for 7 planes to track (no embedding: every plane is in the "
        "cache; propagation and new-cell detection 3 s per plane, recorded on an earlier run "
        "here)")
    record_seconds(object_key("track", key), 0.09)
    dense = panel_line("Propagate", 7, "track", key, 7, 0.2, objects=104)
    assert dense == (
        "Propagate: about 1 min 07 s for 7 planes to track (embedding 7 planes at 0.2 s each, "
        "measured here; propagation of 104 objects at 0.09 s per object-plane, recorded on "
        "an earlier run here; more if new cells start tracks)")  # 7 x 0.2 + 7 x 104 x 0.09
    sparse = panel_line("Propagate", 7, "track", key, 0, objects=10)
    assert sparse.startswith("Propagate: about 6 s for 7 planes")  # 7 x 10 x 0.09 = 6.3 s
    # no seed count (batch): the per-plane record
    assert "3 s per plane" in panel_line("Propagate", 7, "track", key, 0)
    assert work_line(4, [("track", 0.5, "recorded", 20)]).startswith("about 40 s for 4 planes")


def test_a_run_records_its_time_per_object_plane(tmp_path, monkeypatch):
    from napari_devosam.utils.estimate import object_key, record_run, step_key

    monkeypatch.setenv("DEVOSAM_CACHE_DIR", str(tmp_path / "cache"))
    key = record_key("embryo_tiny", "cpu", "fp32")
    # 22 s, 2 of them embedding 4 planes: 20 s over 10 planes, over 400 object-planes
    assert record_run("track", key, 22.0, 10, 4, 0.5, object_planes=400) == 2.0
    assert recorded_seconds(step_key("track", key)) == 2.0
    assert recorded_seconds(object_key("track", key)) == 0.05
    record_run("auto", key, 22.0, 10, 4, 0.5, object_planes=400)  # not a per-object step
    assert recorded_seconds("auto-object|" + key) is None
    record_run("track", key, 5.0, 5, 0, 0.5, object_planes=0)  # nothing followed: kept
    assert recorded_seconds(object_key("track", key)) == 0.05


def test_new_cell_detection_is_a_cost_per_plane_not_per_object(tmp_path, monkeypatch):
    """A new-user trial: 8 seeded nuclei on 8 planes were estimated at 5 s and took 27 s,
    3 s of each plane being the automatic segmentation that finds new cells. The run's
    detection time is recorded per plane and taken off its per-object time."""
    from napari_devosam.utils.estimate import (
        object_key,
        panel_line,
        plane_part_key,
        record_run,
    )

    monkeypatch.setenv("DEVOSAM_CACHE_DIR", str(tmp_path / "cache"))
    key = record_key("embryo_tiny", "cpu", "fp32")
    # 27 s over 8 planes, 24 of them detecting: 3 s per plane; 3 s over 120 object-planes
    record_run("track", key, 27.0, 8, 0, 0.5, object_planes=120, plane_seconds=24.0)
    assert recorded_seconds(plane_part_key("track", key)) == 3.0
    assert recorded_seconds(object_key("track", key)) == 0.025
    line = panel_line("Propagate", 8, "track", key, 0, objects=8)
    assert line == (
        "Propagate: about 26 s for 8 planes to track (no embedding: every plane is in the "
        "cache; propagation of 8 objects at 0.025 s per object-plane and new-cell detection "
        "3 s per plane, recorded on an earlier run here; more if new cells start tracks)")
    # a run that measured no detection time leaves the per-object time whole
    record_run("track", key, 10.0, 5, 0, 0.5, object_planes=100)
    assert recorded_seconds(object_key("track", key)) == 0.1


def test_a_run_without_detection_drops_the_recorded_detection_time(tmp_path, monkeypatch):
    """New tracks turned off: the next estimate counts no detection per plane."""
    from napari_devosam.utils.estimate import plane_part_key, record_run

    monkeypatch.setenv("DEVOSAM_CACHE_DIR", str(tmp_path / "cache"))
    key = record_key("embryo_tiny", "cpu", "fp32")
    record_run("track", key, 27.0, 8, 0, 0.5, object_planes=120, plane_seconds=24.0)
    assert recorded_seconds(plane_part_key("track", key)) == 3.0
    record_run("track", key, 10.0, 5, 0, 0.5, object_planes=100, plane_seconds=0.0)
    assert recorded_seconds(plane_part_key("track", key)) is None
