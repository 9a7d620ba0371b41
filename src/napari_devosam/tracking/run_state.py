"""The state of one propagation run (private to tracking): the tracks still followed
(``ActiveTrack``), what the run shares between its steps (``RunContext``) and the one way a
track ends (``end_track``). ``tracking.propagate`` drives it; ``tracking.detections`` starts
and corrects tracks from the plane's automatic segmentation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from napari_devosam.tracking.divisions.stain_seeds import plane_analysis, plane_seeds
from napari_devosam.tracking.params import PropagationParams
from napari_devosam.tracking.records import Crop, Plane, PropagationResult, ReviewItem


@dataclass
class ActiveTrack:
    """A track still followed: its last object ``crop`` and what the next prompt needs."""

    track: int
    parent: int | None
    crop: Crop
    logits: object = None  # (1, 4h, 4w) torch tensor from the last decode, or None
    centroids: list = field(default_factory=list)
    last: Plane | None = None  # the last plane with an object of this track
    missed: int = 0  # planes missed in a row since then (``max_missed_planes``)
    lost: tuple = ()  # (plane, reason) of the first of them
    stained: float | None = None  # stain under its last stained mask (min_stained_fraction)
    unmatched: int = 0  # planes in a row without a detection (``max_unmatched_planes``)
    first_area: int = field(init=False)  # the area where the track started (``max_growth``)

    def __post_init__(self):
        self.first_area = self.crop.area


@dataclass
class RunContext:
    """What every step of one run reads: the decoder, the parameters, the per-plane hooks
    (``embedding``, ``locked``, ``existing``, ``pixels``), the result being built, and what
    a step leaves for the next (stain seeds, plane analyses, the typical area)."""

    decoder: object
    params: PropagationParams
    embedding: Callable[[Plane], object]
    locked: Callable[[Plane], np.ndarray | None]
    existing: Callable[[Plane], dict[int, Crop]]
    pixels: Callable[[Plane], np.ndarray]
    result: PropagationResult
    next_track: int  # the next negative placeholder id for a new track
    seeds_of: tuple = (None, None)  # (plane, its stain seeds) of the last step, if computed
    stain: str = "auto"  # the run's (run_stain), else the first plane with an embryo's
    detector: Callable | None = None  # new_cells.Detector, or None: no detections
    typical_area: float = 0.0  # median area of the last plane's tracked objects
    analysed: dict = field(default_factory=dict)  # {plane: analysis}, the last two planes
    detected: tuple = (None, None, None)  # (plane, labels, scores) of the last detection
    detect_seconds: float = 0.0  # wall seconds in the detector so far

    def new_track(self) -> int:
        self.next_track -= 1
        return self.next_track + 1

    def seeds(self, plane: Plane):
        """The stain seeds of ``plane``: those of the last step, or computed now."""
        if self.seeds_of[0] == plane and self.seeds_of[1] is not None:
            return self.seeds_of[1]
        return plane_seeds(self.pixels(plane), self.params.division_min_area, stain=self.stain)

    def analysis(self, pixels, plane: Plane | None = None):
        """The plane analysis of ``pixels`` (of ``plane``: kept for the next step); the first
        one that finds an embryo fixes the stain for the rest of the run (one time-lapse,
        one stain; saves the decision's distance transform on every later plane)."""
        if plane is not None and plane in self.analysed:
            return self.analysed[plane]
        analysis = plane_analysis(pixels, self.params.division_min_area, self.stain)
        if self.stain == "auto" and analysis.found:
            self.stain = analysis.stain
        if plane is not None:  # this plane and the one before it (the previous step's)
            self.analysed = dict(list(self.analysed.items())[-1:]) | {plane: analysis}
        return analysis


def run_stain(ctx: RunContext, route) -> str:
    """The run's stain: one for the planes ``route`` visits (a ``route.Route``; one
    time-lapse, one stain), decided on a sample of them (``automatic.stack_stain``); "auto"
    when none has an embryo (the first plane analysed with one decides then). A given
    stain (``params.stain``) is kept, checked against the same decision
    (``automatic.stack_stain.run_stain``). The decision is also the result's ``stain``."""
    from napari_devosam.automatic.stack_stain import run_stain as stack_run_stain

    decision = stack_run_stain(ctx.pixels, [route.start, *route.planes], ctx.stain,
                               ctx.params.division_min_area)
    ctx.result.stain = decision
    return "auto" if decision is None else decision


def end_track(ctx: RunContext, active: dict, track: int, plane: Plane, reason: str,
              last: Plane) -> None:
    """Track ``track`` stops on ``plane`` for ``reason``; its ``last`` plane is reviewed."""
    del active[track]
    ctx.result.ended[track] = (plane, reason)
    ctx.result.review.append(ReviewItem(last, track, f"track ended: {reason}"))
