"""The planes one propagation run visits, computed once per run.

A run starts on a seed plane and walks along one leading axis (T or Z) of the stack: forward
(increasing index), backward, or both (forward first). ``plane_legs`` gives the indices of
each leg; ``Route`` turns them into planes (tuples of leading indices, the other leading
indices those of the seed plane). ``propagate``, ``propagate_in_store``, the embedding
prefetch and the progress bars all read the same ``Route``.
"""

from __future__ import annotations

from dataclasses import dataclass

Plane = tuple[int, ...]
DIRECTIONS = ("forward", "backward", "both")


def plane_legs(n: int, start: int, direction: str, bounds=None) -> list[list[int]]:
    """Indices along the axis to visit, one list per direction (nearest first).

    ``bounds``: inclusive ``(lo, hi)`` stop planes (default the whole axis); ``start`` is the
    seed's index, which is not visited. Raises ``ValueError`` for an unknown direction or a
    range outside ``0..n-1``.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    lo, hi = (0, n - 1) if bounds is None else (int(bounds[0]), int(bounds[1]))
    if not 0 <= lo <= hi < n:
        raise ValueError(f"bad range {bounds}: need 0 <= first <= last < {n}")
    legs = []
    if direction in ("forward", "both"):
        legs.append(list(range(start + 1, hi + 1)))
    if direction in ("backward", "both"):
        legs.append(list(range(start - 1, lo - 1, -1)))
    return legs


@dataclass(frozen=True)
class Route:
    """The planes a run visits from ``start`` along leading ``axis``: ``legs`` holds the
    indices along ``axis`` of each leg (``plane_legs``)."""

    start: Plane
    axis: int
    legs: tuple[tuple[int, ...], ...]

    @classmethod
    def through(cls, lead: tuple[int, ...], start, axis: int, direction: str = "forward",
                bounds=None) -> Route:
        """The route through a stack with leading shape ``lead`` (``ValueError`` as
        ``plane_legs``)."""
        start = tuple(int(i) for i in start)
        legs = plane_legs(lead[axis], start[axis], direction, bounds)
        return cls(start, axis, tuple(tuple(leg) for leg in legs))

    @classmethod
    def checked(cls, route: Route | None, lead, start, axis: int, direction: str = "forward",
                bounds=None) -> Route:
        """``route`` when given (``ValueError`` unless it starts on ``start`` along ``axis``),
        else ``through(lead, start, axis, direction, bounds)``."""
        start = tuple(int(i) for i in start)
        if route is None:
            return cls.through(lead, start, axis, direction, bounds)
        if (route.start, route.axis) != (start, axis):
            raise ValueError(f"the route starts on {route.start} along axis {route.axis}, the "
                             f"seeds lie on {start} along axis {axis}")
        return route

    def plane(self, index: int) -> Plane:
        """The plane at ``index`` along the axis, on the seed plane's line."""
        return self.start[:self.axis] + (int(index),) + self.start[self.axis + 1:]

    @property
    def planes(self) -> list[Plane]:
        """Every plane visited, in order (forward leg first)."""
        return [self.plane(i) for leg in self.legs for i in leg]

    @property
    def total(self) -> int:
        """How many planes the run visits (at most: tracks may all end early)."""
        return sum(len(leg) for leg in self.legs)
