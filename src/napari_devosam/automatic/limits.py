"""The largest and smallest plane automatic segmentation takes, and the cell diameters it
accepts, checked before any compute.

Seeds, the per-object masks and their clean-up work at the plane's full resolution, so their
time and memory grow with its pixels (a 6,624 x 9,936 plane ran 10 minutes and reached 4.2 GB
without a word). ``check_plane_size`` refuses a larger plane at once, in one sentence that says
what to do, from the CLI (``devosam segment --auto``), the Segment all panel and
``segment_all`` alike. A plane under ``MIN_SIDE`` pixels a side holds no cell to find (an
8 x 8 plane said "no embryo detected", a 16 x 16 one "SAM returned no object"): refused too.
``check_diameter`` is the one check of a given cell diameter: at least ``MIN_DIAMETER``
(the smallest the estimate gives; 1 px gave 36 "cells" on an 8-cell embryo), and no larger
than the plane (a 5,000 px diameter on a 276 x 414 plane said "no embryo or cells
detected").
"""

from __future__ import annotations

MAX_PIXELS = 4096 * 4096  # per plane
MIN_SIDE = 20  # pixels: the seeds smooth at 2 px and keep objects of >= 30 px
MIN_DIAMETER = 4.0  # pixels: the smallest cell diameter, given or estimated (scale.py)


def check_plane_size(plane_shape: tuple[int, ...], max_pixels: int = MAX_PIXELS) -> None:
    """Raise ``ValueError`` when a plane of ``plane_shape`` (``(H, W)`` first) has more than
    ``max_pixels`` pixels, or a side under ``MIN_SIDE`` pixels."""
    h, w = int(plane_shape[0]), int(plane_shape[1])
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"the plane is {h:,} x {w:,} pixels: automatic segmentation needs at "
                         f"least {MIN_SIDE} pixels a side")
    if h * w <= max_pixels:
        return
    factor = 2
    while h * w / factor ** 2 > max_pixels:
        factor += 1
    raise ValueError(
        f"the plane is {h:,} x {w:,} pixels ({h * w / 1e6:.1f} million): automatic "
        f"segmentation takes planes up to {max_pixels / 1e6:.1f} million pixels "
        f"(e.g. 4,096 x 4,096); bin it {factor} x {factor} or crop it first")


def check_diameter(diameter: float | None, plane_shape: tuple[int, ...] | None = None,
                   name: str = "the diameter") -> None:
    """Raise ``ValueError`` for a given cell ``diameter`` (pixels; None: estimated, no check)
    that is not > 0, or larger than the shorter side of a plane of ``plane_shape``
    (``(H, W)`` first). ``name``: how the message calls it (``--diameter`` in the CLI)."""
    if diameter is None:
        return
    if not diameter > 0:
        raise ValueError(f"{name} must be > 0 pixels, got {diameter:g}")
    if diameter < MIN_DIAMETER:  # trial 17: 1 px gave 36 "cells" on an 8-cell embryo
        raise ValueError(f"{name} of {diameter:g} pixels is under {MIN_DIAMETER:g}: no cell "
                         "is outlined at that size; give the cells' diameter in pixels, or "
                         "leave it out to estimate it")
    if plane_shape is not None:
        h, w = int(plane_shape[0]), int(plane_shape[1])
        if diameter > min(h, w):  # a cell wider than the plane's shorter side: no cell
            raise ValueError(f"{name} of {diameter:g} pixels is larger than the plane "
                             f"({h:,} x {w:,} pixels): give the cells' diameter in pixels, "
                             "or leave it out to estimate it")
