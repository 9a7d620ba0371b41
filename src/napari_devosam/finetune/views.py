"""Training planes at the scale the predictor decodes them: small objects in zoomed views.

With zoomed views on (``engine.zoom``; by default for the bundled models), the predictor
decodes a small object's box in a window of its plane encoded on its own, where the object
spans about ``zoom.TARGET`` input pixels, not in the whole plane's embedding. A decoder
trained on whole-plane embeddings learns those objects at a scale it never sees them at in
use. ``view_planes`` turns each annotated plane into the planes the predictor would decode:
the whole plane with its large objects, and one plane per view (the window's pixels and
labels) with the objects the predictor would decode in it; both training and validation then
see what the annotator sees (the windows are ``zoom.plan_views``' for the objects' tight
boxes, as ``Predictor.predict_boxes`` plans them).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from napari_devosam.finetune.data import TrainingPlane


def tight_boxes(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``(N, 4)`` float inclusive ``(row0, col0, row1, col1)`` boxes of objects ``ids`` of
    ``labels`` ``(H, W)`` int (each id must be present)."""
    from scipy import ndimage

    slices = ndimage.find_objects(labels, max_label=int(ids.max()) if ids.size else 0)
    out = np.zeros((len(ids), 4), dtype=np.float64)
    for k, i in enumerate(ids):
        rows, cols = slices[int(i) - 1]
        out[k] = rows.start, cols.start, rows.stop - 1, cols.stop - 1
    return out


def plane_views(plane: TrainingPlane, input_size: int) -> list[TrainingPlane]:
    """``plane`` as the predictor decodes its objects: the whole plane with the objects that
    need no view (left out when none), then one ``TrainingPlane`` per view, named
    ``"<name> view k"``, holding the window's image and labels ``(h, w)`` and as
    ``object_ids`` the objects decoded there. ``source`` is kept (the split by file)."""
    from napari_devosam.engine import zoom

    ids = np.asarray(plane.object_ids)
    if ids.size == 0:
        return [plane]
    whole, views = zoom.plan_views(tight_boxes(plane.labels, ids), plane.labels.shape, input_size)
    out = [replace(plane, object_ids=ids[whole])] if whole else []
    for k, view in enumerate(views):
        out.append(
            TrainingPlane(
                f"{plane.name} view {k}",
                plane.source,
                np.ascontiguousarray(zoom.crop(plane.image, view.window)),
                np.ascontiguousarray(zoom.crop(plane.labels, view.window)),
                object_ids=np.sort(ids[view.members]),
            )
        )
    return out


def view_planes(
    planes: list[TrainingPlane], sam, zoom_views: bool | None = None
) -> list[TrainingPlane]:
    """Every plane of ``planes`` through ``plane_views`` when ``zoom_views`` (None: when the
    predictor zooms for ``sam`` by default, ``engine.zoom.wanted``), else ``planes``."""
    from napari_devosam.engine import zoom

    if zoom_views is None:
        zoom_views = zoom.wanted(sam)
    if not zoom_views:
        return list(planes)
    size = int(sam.image_encoder.img_size)
    return [v for p in planes for v in plane_views(p, size)]
