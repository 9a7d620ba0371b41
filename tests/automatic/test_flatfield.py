"""An uneven background is levelled before the seeds' thresholds (``automatic.flatfield``):
under a background ramp as bright as the nuclei, the dim half's nuclei got no seed (cells3d
automatic F1 0.000, benchmarks/bench_perturb.py ``gradient``). Even backgrounds are left
exactly as they are.

The real-image tests fetch DSB2018 and cells3d with pip (``benchmarks/real_sources.py``,
evaluation only) and skip with one line without the registry.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from napari_devosam.automatic import flatfield
from napari_devosam.automatic.seeds import analyse_plane, stain_seeds

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import real_sources as R  # noqa: E402
from real_source import fetch_or_skip  # noqa: E402


def _nuclei(shape=(200, 300), n=40, seed=0) -> np.ndarray:
    """Bright discs (radius 8 px, value 1) on a background of 0.1 with noise 0.01."""
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[:shape[0], :shape[1]]
    plane = np.full(shape, 0.1)
    for r, c in rng.uniform((10, 10), (shape[0] - 10, shape[1] - 10), (n, 2)):
        plane[(rr - r) ** 2 + (cc - c) ** 2 <= 64] = 1.0
    return (plane + rng.normal(0, 0.01, shape)).astype(np.float32)


def _ramp(shape, height: float) -> np.ndarray:
    return np.broadcast_to(np.linspace(0, height, shape[1], dtype=np.float32), shape)


def test_a_ramp_is_found_and_taken_off():
    clean = _nuclei()
    ramped = clean + _ramp(clean.shape, 1.0)
    ramp = flatfield.background_ramp(ramped)
    assert ramp is not None and ramp.shape == clean.shape
    assert abs(float(ramp[:, -1].mean() - ramp[:, 0].mean()) - 1.0) < 0.05
    levelled = ramped - ramp
    background = clean < 0.5
    left, right = levelled[:, :60][background[:, :60]], levelled[:, -60:][background[:, -60:]]
    assert abs(float(np.median(right) - np.median(left))) < 0.03


def test_an_even_background_and_a_slight_ramp_are_left_as_they_are():
    clean = _nuclei()
    assert flatfield.background_ramp(clean) is None
    slight = clean + _ramp(clean.shape, 0.1)  # a tenth of the range: under MIN_SPAN
    assert flatfield.background_ramp(slight) is None


def test_an_embryo_in_the_middle_is_not_taken_for_a_ramp():
    """Tiles inside a large bright object sit above the background and are left out."""
    rr, cc = np.mgrid[:256, :256]
    plane = np.full((256, 256), 0.05, dtype=np.float32)
    plane[(rr - 128) ** 2 / 100 ** 2 + (cc - 150) ** 2 / 90 ** 2 <= 1] = 0.4  # off centre
    plane += np.random.default_rng(1).normal(0, 0.01, plane.shape).astype(np.float32)
    assert flatfield.background_ramp(plane) is None


def test_tiny_planes_are_not_levelled():
    tiny = _nuclei((20, 20), n=1) + _ramp((20, 20), 5.0)
    assert flatfield.background_ramp(tiny) is None


def _ramp_real(plane) -> np.ndarray:
    """benchmarks/bench_perturb.py's ``gradient``: the plane scaled 0..1 plus a ramp of 1."""
    p = np.asarray(plane, np.float64)
    lo, hi = np.percentile(p, (0.1, 99.9))
    unit = np.clip((p - lo) / (hi - lo), 0, 1)
    return ((unit + np.linspace(0, 1, p.shape[1])[None, :]) * 1000).astype(np.uint16)


def _found(points: np.ndarray, labels: np.ndarray) -> set[int]:
    rc = np.round(points).astype(np.int64)
    return set(np.unique(labels[rc[:, 0], rc[:, 1]])) - {0}


@pytest.mark.parametrize("source", ["dsb2018", "cells3d"])
def test_real_nuclei_under_a_ramp_are_seeded_as_without_it(source):
    """Measured: DSB2018 108 of 125 nuclei seeded under the ramp (85 before the levelling),
    105 without the ramp; cells3d Z 30 19 of 20 (1 before: the plane read as membranes), 19
    without the ramp."""
    planes = fetch_or_skip(R.LABELLED[source]).planes
    plane, truth = planes[0] if source == "dsb2018" else planes[1]
    plain = _found(stain_seeds(analyse_plane(plane)).points, truth)
    a = analyse_plane(_ramp_real(plane))
    assert a.stain == "nuclei", a.stain.note
    ramped = _found(stain_seeds(a).points, truth)
    assert len(ramped) >= 0.9 * len(plain), (len(ramped), len(plain))
