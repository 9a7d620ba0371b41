"""Objects through time and Z: propagation with SAM, divisions, lineage, tracking export.

- ``propagate.propagate``: a generator carrying committed objects plane by plane;
- ``params.PropagationParams``: every threshold, documented;
- ``store_tracks``: seeds from and results into an ``AnnotationStore`` (one undo step);
- ``export``: Cell Tracking Challenge result format, a tracks CSV, GEFF.

Heavy modules (torch, segment_anything) are imported only when propagation runs.
"""

from napari_devosam.tracking.model import (
    Crop,
    Progress,
    PropagationResult,
    ReviewItem,
    Seed,
    TrackedObject,
)
from napari_devosam.tracking.params import PropagationParams
from napari_devosam.tracking.propagate import propagate

__all__ = [
    "Crop",
    "Progress",
    "PropagationParams",
    "PropagationResult",
    "ReviewItem",
    "Seed",
    "TrackedObject",
    "propagate",
]
