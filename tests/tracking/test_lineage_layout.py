"""The lineage tree's layout marks every track end but divisions, a recorded reason or not
(a new-user trial: imported tracks that stopped early showed no end at all)."""

import pytest

from napari_devosam.tracking.lineage import TrackInfo
from napari_devosam.tracking.lineage_layout import UNRECORDED, layout_lineage


def test_every_end_but_a_division_is_marked():
    info = {1: TrackInfo(1, None, 0, 3, "divided", (2, 3)),
            2: TrackInfo(2, 1, 4, 9, "movie end", ()),
            3: TrackInfo(3, 1, 4, 6, "", ()),  # imported: stopped early, no reason
            4: TrackInfo(4, None, 0, 5, "lost", ())}
    lay = layout_lineage(info)
    rows = lay.rows
    ends = {int(lay.tracks[r]): reason for reason, r in lay.ends}
    assert ends == {2: "movie end", 3: UNRECORDED, 4: "lost"}
    assert set(rows) == {1, 2, 3, 4}


def test_a_track_that_skips_frames_is_drawn_in_pieces():
    """New-user trial 19: a track without an object on frame 2 was drawn as one line."""
    info = {1: TrackInfo(1, None, 0, 7, "movie end", ()), 2: TrackInfo(2, None, 0, 3, "", ())}
    lay = layout_lineage(info, {1: [0, 1, 3, 4, 5, 7], 2: [0, 1, 2, 3]})
    row = lay.rows[1]
    pieces = lay.segments[lay.segment_row == row]
    assert sorted((a, b) for a, _, b, _ in pieces.tolist()) == pytest.approx(
        [(0, 1), (3, 5), (6.7, 7.3)])
    assert len(lay.segments[lay.segment_row == lay.rows[2]]) == 1
    assert len(layout_lineage(info).segments) == 2  # without frames: one line per track
