"""Estimates of long work: durations as read, and the first unit's measure."""

from napari_devosam.utils.estimate import FirstUnit, duration, estimate_line


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
