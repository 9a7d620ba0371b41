"""Objects through time and Z: propagation with SAM, divisions, lineage, tracking export.

- ``request``: ``TrackingRequest`` (one run, described once: seeds, planes, parameters,
  outputs) and ``run_tracking`` (propagate, then write the result);
- ``propagate.propagate``: a generator carrying committed objects plane by plane, along a
  ``route.Route``; ``divisions/``: how a cell becomes two;
- ``params.PropagationParams``: every threshold, documented;
- ``records``: seeds, tracked objects, review items, the result of a run;
- ``store_tracks``: seeds from and results into an ``AnnotationStore`` (one undo step);
  ``store_run``: such a run across a store thread and a worker (the Propagate panel);
- ``track_files``: Cell Tracking Challenge result format, a tracks CSV, GEFF;
  ``result_files``: a run's result as those files plus ``review.csv``.

Heavy modules (torch, segment_anything) are imported only when propagation runs.
"""

from napari_devosam.tracking.params import PropagationParams
from napari_devosam.tracking.propagate import propagate
from napari_devosam.tracking.records import (
    Crop,
    Progress,
    PropagationResult,
    ReviewItem,
    Seed,
    TrackedObject,
)
from napari_devosam.tracking.request import TrackingRequest, run_tracking

__all__ = [
    "Crop",
    "Progress",
    "PropagationParams",
    "PropagationResult",
    "ReviewItem",
    "Seed",
    "TrackedObject",
    "TrackingRequest",
    "propagate",
    "run_tracking",
]
