"""Seeds from a neighbouring plane's labels (``segment_all(previous_labels=...)``): one per
object, added where the plane's own stain seeds left it out. Points are napari ``(row, col)``;
boxes ``(row0, col0, row1, col1)`` inclusive, as in ``automatic.seeds``."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_devosam.automatic.seed_types import Seeds


def seeds_from_labels(labels: np.ndarray, min_area: int = 30) -> Seeds:
    """Neighbour seeding: one seed per object of a neighbouring plane's ``labels`` ``(H, W)``
    (int): its most interior pixel (maximum of the distance transform) and its box."""
    labels = np.asarray(labels)
    points, boxes = [], []
    for obj, sl in enumerate(ndimage.find_objects(labels.astype(np.int64)), start=1):
        if sl is None:
            continue
        mask = np.pad(labels[sl] == obj, 1)
        if mask.sum() < min_area:
            continue
        dist = ndimage.distance_transform_edt(mask)
        r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
        points.append((sl[0].start + r - 1, sl[1].start + c - 1))
        boxes.append((sl[0].start, sl[1].start, sl[0].stop - 1, sl[1].stop - 1))
    return Seeds(np.asarray(points, dtype=np.float64).reshape(-1, 2),
                 np.asarray(boxes, dtype=np.float64).reshape(-1, 4), ["neighbour"] * len(points))


def merge_neighbour_seeds(own: Seeds, neighbour: Seeds) -> Seeds:
    """``own`` plus the ``neighbour`` seeds whose box holds none of ``own``'s points (where
    the stain found nothing, e.g. a faint cell): a divided cell keeps its own two seeds."""
    if len(own) == 0:
        return neighbour
    extra = []
    for i, box in enumerate(neighbour.boxes):
        p = own.points
        inside = ((p[:, 0] >= box[0]) & (p[:, 0] <= box[2])
                  & (p[:, 1] >= box[1]) & (p[:, 1] <= box[3]))
        if not inside.any():
            extra.append(i)
    return own + Seeds(neighbour.points[extra], neighbour.boxes[extra],
                       [neighbour.source[i] for i in extra])
