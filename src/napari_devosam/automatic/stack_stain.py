"""One stain for a whole stack: a time-lapse or Z stack of one channel shows one marker.

Each plane's own decision (``automatic.stain``) can fail on a plane that does not look like
its movie: the DevoLearn nuclear movie's frame 54, a late embryo whose nuclei blur into one
bright mass, reads as membrane (ridge score 0.81) while its other 55 frames read as nuclei.
Deciding per plane then switches the seed rule, the size filter and the growth to membranes
on that one frame. ``stack_stain`` decides once, from the planes most of a sample of the
stack show, and every plane of the run uses that decision.

Pure numpy/scipy/scikit-image; no SAM, no Qt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from napari_devosam.automatic.stain import RIDGE_MEMBRANE, RIDGE_NUCLEI, StainDecision

SAMPLE = 9  # planes analysed (spread evenly); ~0.1-0.2 s each on a 512 x 752 plane
AGREE = 2 / 3  # share of the sampled planes with an embryo that must agree for "decided"


def sample_planes(planes: Sequence, k: int = SAMPLE) -> list:
    """Up to ``k`` of ``planes`` spread evenly over the sequence, first and last included,
    in order; all of them when there are ``k`` or fewer."""
    planes = list(planes)
    if len(planes) <= k:
        return planes
    picks = np.unique(np.round(np.linspace(0, len(planes) - 1, k)).astype(int))
    return [planes[i] for i in picks]


def stack_stain(read: Callable[[object], np.ndarray], planes: Sequence, min_area: int = 30,
                k: int = SAMPLE) -> StainDecision | None:
    """The stain of a stack, decided on ``sample_planes(planes, k)``.

    ``read(index)`` returns the ``(H, W)`` plane at ``index`` (any real dtype, or RGB: as
    ``seeds.analyse_plane`` takes it). Planes without an embryo do not vote. Returns None
    when no sampled plane has one (each plane then decides its own), the one voter's own
    decision when only one has, else the stain most voters show; a tie goes to the side
    the voters' mean ridge score lies on. ``decided`` is False when fewer than ``AGREE`` of
    the voters agree, and the note says so.
    """
    from napari_devosam.automatic.seeds import analyse_plane

    planes = list(planes)
    picks = sample_planes(planes, k)
    votes: list[StainDecision] = []
    for index in picks:
        analysis = analyse_plane(read(index), "auto", min_area)
        if analysis.found:
            votes.append(analysis.stain)
    if len(votes) <= 1:
        return votes[0] if votes else None
    tally = Counter(str(v) for v in votes)
    stain = max(tally, key=lambda s: (tally[s], s == _score_side(votes)))
    share = tally[stain] / len(votes)
    parts = ", ".join(f"{tally[s]} {s}" for s in sorted(tally, key=lambda s: -tally[s]))
    scores = [v.score for v in votes if np.isfinite(v.score)]
    score = float(np.mean(scores)) if scores else float("nan")
    of = (f"{len(picks)} of {len(planes)} planes" if len(picks) < len(planes)
          else f"all {len(picks)} planes")
    if len(votes) < len(picks):  # the others showed no embryo
        of += f", {len(votes)} with an embryo"
    if share >= AGREE:
        note = (f"stain: {stain} (decided for the whole stack on {of}: {parts}; --stain to "
                "override)")
        return StainDecision(stain, True, score, note)
    note = (f"stain: {stain} (uncertain: the stack's planes disagree, {parts} of {of}; "
            "--stain to choose)")
    return StainDecision(stain, False, score, note)


def run_stain(read: Callable[[object], np.ndarray], planes: Sequence, stain: str,
              min_area: int = 30) -> StainDecision | None:
    """The stain a run on ``planes`` uses: ``stain`` as it is when it is a
    ``StainDecision`` already; for "auto", ``stack_stain``'s decision (None when no sampled
    plane has an embryo); a given stain checked against that decision (``stain.given``: its
    note says when the stack reads as the other stain). The one rule of a stack run
    (``core.iter_segment_stack``) and of tracking (``tracking.run_state.run_stain``)."""
    from napari_devosam.automatic.stain import given

    if isinstance(stain, StainDecision):
        return stain
    decision = stack_stain(read, planes, min_area)
    return decision if stain == "auto" else given(stain, decision, "stack")


def _score_side(votes: list[StainDecision]) -> str:
    """The stain the voters' mean ridge score lies nearer to (ties between counts)."""
    scores = [v.score for v in votes if np.isfinite(v.score)]
    if not scores:
        return "membrane"
    middle = 0.5 * (RIDGE_MEMBRANE + RIDGE_NUCLEI)
    return "membrane" if float(np.mean(scores)) >= middle else "nuclei"
