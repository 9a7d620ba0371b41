"""One tracking run, described once: ``TrackingRequest``, and ``run_tracking`` to carry it out.

``devosam track``, ``devosam batch`` and the Propagate panel build a ``TrackingRequest`` from
their inputs (arguments, a job, the panel's controls) and hand it on; they compute nothing
else about the run. The request holds:

- where the run starts and goes: the image's ``shape``, the seed ``plane``, the leading
  ``axis``, ``direction`` and ``bounds``, whose planes (``route``) are computed once;
- the ``params`` (``PropagationParams``);
- its ``seeds``, from a label image (``seeds_from_labels``, the one check of seed labels) or
  from an annotation store (``store_tracks.seeds_from_store``); or none, for a run on a store
  that applies its result there (``tracking.store_run``: the Propagate panel);
- where results go: ``out`` (``write``: the CTC result, ``tracks.csv``, ``review.csv``,
  ``tracks.geff``; ``tracking.result_files``).

``run_tracking`` propagates the seeds (a generator of ``Progress``) and writes the result
when the request names a folder.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from napari_devosam.tracking.params import PropagationParams
from napari_devosam.tracking.records import Plane, Progress, PropagationResult, Seed
from napari_devosam.tracking.route import Route
from napari_devosam.utils.text import plane_name


def seeds_from_labels(labels, shape: tuple[int, ...], plane) -> list[Seed]:
    """Seeds on ``plane`` from a label plane ``(H, W)`` or a label stack of the image's
    ``shape`` (then its ``plane`` is taken); label value = track id, 0 = background.

    Raises ``ValueError`` for labels of another shape, labels that are not non-negative
    integers or look like an intensity image (``io.labels``), or a seed plane without
    objects."""
    labels = np.asarray(labels)
    if labels.shape == tuple(shape):
        labels = labels[plane]
    elif labels.shape != tuple(shape[-2:]):
        raise ValueError(f"seed labels of shape {labels.shape} fit neither a plane "
                         f"{tuple(shape[-2:])} nor the stack {tuple(shape)}")
    if labels.dtype.kind not in "ui" or (labels.size and labels.min() < 0):
        raise ValueError("seed labels must be non-negative integers")
    ids = np.unique(labels)
    ids = ids[ids > 0]
    if not ids.size:
        raise ValueError(f"the seed plane ({plane_name(plane)}) has no objects (all labels "
                         "are 0)")
    from napari_devosam.io.labels import check_label_plane

    check_label_plane(labels, "the seed labels")
    return [Seed(int(i), plane, labels == i) for i in ids]


@dataclass
class TrackingRequest:
    """What one run does; built once by its caller, then only read.

    ``shape``: the image's shape, leading (T and/or Z) axes then ``(H, W)``. ``plane``: the
    seed plane (one index per leading axis). ``axis``: the leading axis followed;
    ``direction``: "forward", "backward" or "both"; ``bounds``: inclusive ``(first, last)``
    indices along ``axis`` (None: the whole axis). ``seeds``: ``Seed`` objects on ``plane``,
    or None for a run on an annotation store (``tracking.store_run``), which reads the
    committed objects of ``plane``, or only the object ``selected`` ("propagate from here":
    its track is recomputed beyond its plane). ``along_z``: the axis followed is Z (the
    ``z`` of ``tracks.csv`` is then the frame). ``out``: the folder ``run_tracking`` writes
    the result into (None: nothing written), with ``geff`` also ``tracks.geff``, with
    ``review`` also ``review.csv``.
    """

    shape: tuple[int, ...]
    plane: Plane
    axis: int = 0
    direction: str = "forward"
    bounds: tuple[int, int] | None = None
    params: PropagationParams = field(default_factory=PropagationParams)
    seeds: list[Seed] | None = None
    selected: int | None = None
    along_z: bool = False
    out: Path | None = None
    geff: bool = False
    review: bool = True

    @classmethod
    def from_labels(cls, labels, shape, plane, **options) -> TrackingRequest:
        """A request whose seeds are the objects of ``labels`` on ``plane``
        (``seeds_from_labels``; ``ValueError`` as there)."""
        plane = tuple(int(i) for i in plane)
        return cls(tuple(shape), plane, seeds=seeds_from_labels(labels, shape, plane),
                   **options)

    @property
    def lead(self) -> tuple[int, ...]:
        """The leading (T and/or Z) lengths of the image."""
        return tuple(self.shape[:-2])

    @property
    def redo(self) -> bool:
        """"Propagate from here": the selected object's track is recomputed."""
        return self.selected is not None

    @cached_property
    def route(self) -> Route:
        """The planes the run visits, computed once (``ValueError`` for a bad direction or
        bounds)."""
        return Route.through(self.lead, self.plane, self.axis, self.direction, self.bounds)

    def write(self, result: PropagationResult, out_dir=None) -> tuple[list[tuple], list[dict]]:
        """Write the run's ``result`` into ``out_dir`` (default ``out``): the CTC result,
        ``tracks.csv`` and, as asked, ``review.csv`` and ``tracks.geff``
        (``result_files.write_results``). Returns the CTC ``(L, B, E, P)`` rows and the
        tracks.csv rows (what was written: counts are taken from them)."""
        from napari_devosam.tracking.result_files import write_results
        from napari_devosam.tracking.track_files import frame_z

        if self.seeds is None:
            raise ValueError("this request has no seeds: its result goes into the store")
        out_dir = self.out if out_dir is None else out_dir
        return write_results(out_dir, self.seeds, result, axis=self.axis,
                             n_frames=self.shape[self.axis], plane_shape=self.shape[-2:],
                             z_of_frame=frame_z(self.plane, self.along_z),
                             geff=self.geff, review=self.review)


@dataclass
class TrackingOutcome:
    """What ``run_tracking`` made: the ``result``, the CTC ``(L, B, E, P)`` rows written and
    the tracks.csv rows (both empty when the request names no folder)."""

    result: PropagationResult
    tracks: list[tuple] = field(default_factory=list)
    csv_rows: list[dict] = field(default_factory=list)


def run_tracking(sam, image, request: TrackingRequest, *, cache=None, normalization=None,
                 **hooks) -> Generator[Progress, None, TrackingOutcome]:
    """Propagate ``request.seeds`` through ``image`` (``(..., H, W)`` of ``request.shape``)
    with ``sam``; then, when ``request.out`` is set, write the result there.

    ``cache``, ``normalization`` and ``hooks`` (``embedding_for``, ``decoder``) go to
    ``tracking.propagate.propagate``. Yields ``Progress`` after each plane; returns a
    ``TrackingOutcome``. Raises ``ValueError`` for a request without seeds (a store's run:
    ``tracking.store_run``) and what ``propagate`` and the writers raise.
    """
    from napari_devosam.tracking.propagate import propagate

    if request.seeds is None:
        raise ValueError("this request has no seeds: run it on its store (tracking.store_run)")
    result = yield from propagate(
        sam, image, request.seeds, axis=request.axis, direction=request.direction,
        bounds=request.bounds, params=request.params, cache=cache,
        normalization=normalization, route=request.route, **hooks)
    tracks, rows = request.write(result) if request.out is not None else ([], [])
    return TrackingOutcome(result, tracks, rows)
