"""The real DevoLearn nuclear movie under what users' files do to it: a compressive display
curve, saturation, a field of many embryos, and a stack holding one odd-looking plane.

The movie (the devolearn wheel's ``embryo_timelapse.mov``, real C. elegans, MIT; every 7th
video frame) is fetched with pip by ``benchmarks/real_sources.py`` into
``$DEVOSAM_REAL_DATA_DIR`` or ``.pytest_cache/d/real_sources``, never committed. Without the
registry or PyAV (``av``) the module skips with one line.

A person measures the nuclei of frame 30 at about 25-34 px across (the estimate on the
untouched frame: 34 px).
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

NUCLEUS_PX = (22, 45)  # frame 30's nuclei, generously


@pytest.fixture(scope="module")
def movie():
    return np.asarray(fetch_or_skip(R.devolearn_movie, "nuclei"))


def _diameter(plane):
    from napari_devosam.automatic.seeds import analyse_plane, nuclei_seeds

    return nuclei_seeds(analyse_plane(plane, "nuclei")).diameter


def _gamma(plane, g):
    return (255 * (plane.astype(np.float64) / 255) ** g).astype(np.uint8)


def test_a_compressive_display_curve_keeps_the_nuclei_scale(movie):
    """Gamma 0.5 flattens the nuclei's LoG peak into a shoulder on the way to the whole
    embryo's: a strict peak took the embryo (201 px) and found 3 objects."""
    lo, hi = NUCLEUS_PX
    assert lo <= _diameter(movie[30]) <= hi
    for frame in (30, 40):
        assert lo <= _diameter(_gamma(movie[frame], 0.5)) <= hi


def test_many_embryos_on_one_large_plane_keep_the_nuclei_scale(movie):
    """A 4 x 4 tiling of frame 30 (2048 x 3008 px) is looked at downsampled by 8: the
    nuclei's peak is a shoulder there too (a strict peak: 55 px, and 45 % of the nuclei
    lost)."""
    lo, hi = NUCLEUS_PX
    assert lo <= _diameter(np.tile(movie[30], (4, 4))) <= hi


def _gain(plane, g):
    return np.clip(plane.astype(np.float64) * g, 0, 255).astype(np.uint8)


def test_saturated_packed_nuclei_are_not_read_as_membranes(movie):
    """At 3x gain the packed nuclei of frames 30-48 saturate and score as bright lines
    (ridge 0.77-0.81: membrane); their dark gaps are narrower than their bright parts and
    score as lines at least as much (``stain.valley_score``), which membranes' wide dark
    interiors never do."""
    from napari_devosam.automatic.seeds import analyse_plane

    for frame in (30, 39, 45):
        decision = analyse_plane(_gain(movie[frame], 3)).stain
        assert decision == "nuclei", (frame, decision.note)
        assert "narrow dark gaps" in decision.note


def test_a_nuclear_movie_keeps_its_stain_on_a_plane_that_reads_as_membrane(movie):
    """Frame 54 (a late embryo whose nuclei blur into one mass) reads as membrane on its
    own; its movie reads as nuclei, and a stack run uses the movie's stain there."""
    from napari_devosam.automatic.seeds import analyse_plane
    from napari_devosam.automatic.stack_stain import stack_stain

    assert analyse_plane(movie[54]).stain == "membrane"
    decision = stack_stain(lambda i: movie[i], range(len(movie)))
    assert decision == "nuclei" and decision.decided
    assert analyse_plane(movie[54], decision).stain == "nuclei"
