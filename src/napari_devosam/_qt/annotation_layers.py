"""The four layers the annotator adds for an image, and reading/clearing prompts in them.

``boxes`` (Shapes: rectangles), ``points`` (Points: positive lime discs, negative red
crosses), ``current object`` (Labels: the live SAM mask) and ``objects`` (Labels: committed).
All have the image's dimensionality (no colour axis) and its whole data-to-world transform
(scale, translate, rotate, shear, affine: ``layer_transform``, kept in step by
``follow_transform``), so their data coordinates are the image's pixel coordinates and a
prompt drawn on plane ``k`` carries ``k`` in its leading coordinates. The live ``current
object`` layer gives each current object (a drawn object or an automatic proposal) its own
colour, from a colour cycle of its own (``CURRENT_SEED``), so that proposals can be told apart
and removed one by one, and object ``k`` never takes the colour of committed object ``k``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from napari_devosam.annotation.state import PlanePrompts, plane_prompts_from_layer_data

POSITIVE_COLOR, NEGATIVE_COLOR = "lime", "red"
POSITIVE_SYMBOL, NEGATIVE_SYMBOL = "disc", "x"
CURRENT_SEED = 0.1  # napari's committed labels use 0.5; this cycle differs at every id
TRANSFORM_FIELDS = ("scale", "translate", "rotate", "shear", "affine")


@dataclass
class AnnotationLayers:
    boxes: object
    points: object
    current: object
    objects: object
    unfollow: object = None  # set by follow_transform: stop following the image

    def as_dict(self) -> dict:
        return {"boxes": self.boxes, "points": self.points, "current": self.current,
                "objects": self.objects}

    def all(self) -> list:
        return [self.boxes, self.points, self.current, self.objects]


def add_layers(viewer, image, current_labels: np.ndarray, object_labels: np.ndarray
               ) -> AnnotationLayers:
    """Add the annotator's layers for napari image layer ``image`` to ``viewer``."""
    ndim = current_labels.ndim
    geo = layer_transform(image)
    objects = viewer.add_labels(object_labels, name="objects", opacity=0.5, **geo)
    current = viewer.add_labels(current_labels, name="current object", opacity=0.7,
                                colormap=_current_colormap(), **geo)
    boxes = viewer.add_shapes(
        ndim=ndim, name="boxes", shape_type="rectangle", edge_color="yellow",
        face_color="transparent", edge_width=max(1.0, min(current_labels.shape[-2:]) / 300),
        **geo,
    )
    points = viewer.add_points(
        np.empty((0, ndim)), ndim=ndim, name="points",
        features={"positive": np.zeros(0, dtype=bool)},
        face_color="positive",
        face_color_cycle={True: POSITIVE_COLOR, False: NEGATIVE_COLOR},
        border_color="white", size=max(5.0, min(current_labels.shape[-2:]) / 32), **geo,
    )
    set_point_kind(points, positive=True)
    boxes.mode = "add_rectangle"
    return AnnotationLayers(boxes, points, current, objects)


def _current_colormap():
    from napari.utils.colormaps import label_colormap

    return label_colormap(49, seed=CURRENT_SEED)


def layer_transform(image) -> dict:
    """The image layer's whole data-to-world transform, as layer keyword arguments."""
    return {"scale": image.scale, "translate": image.translate, "rotate": image.rotate,
            "shear": image.shear, "affine": image.affine.affine_matrix}


def transform_problem(image, n_lead: int) -> str | None:
    """Why the annotator cannot work on ``image``'s planes through its transform, or None.

    A transform that mixes a T/Z axis with the plane's (row, col) axes (a rotation or shear
    out of the plane) shows oblique slices, not the image's planes. An image with an axis of
    length 0 has no plane at all (trial 17: napari's label controls raised IndexError).
    """
    ndim = image.ndim
    shape = tuple(np.shape(image.data))
    if 0 in shape:
        return f"layer {image.name!r} has no pixels (shape {shape}: an axis of length 0)"
    if n_lead == 0:
        return None
    origin = np.asarray(image.data_to_world(np.zeros(ndim)), dtype=np.float64)
    jac = np.stack([np.asarray(image.data_to_world(np.eye(ndim)[i]), dtype=np.float64) - origin
                    for i in range(ndim)], axis=1)  # column i: where data axis i goes
    mixing = max(np.abs(jac[:n_lead, n_lead:]).max(), np.abs(jac[n_lead:, :n_lead]).max())
    if mixing > 1e-6 * max(np.abs(jac).max(), 1e-12):
        return (f"layer {image.name!r} is rotated, sheared or transformed across its T/Z and "
                f"(row, col) axes, so the viewer shows oblique slices, not its planes; the "
                f"annotator needs a transform that keeps each plane in its own plane")
    return None


def follow_transform(image, layers: AnnotationLayers) -> None:
    """Copy ``image``'s transform to ``layers`` now and whenever it changes."""

    def copy(event=None):
        geo = layer_transform(image)
        for layer in layers.all():
            for name in TRANSFORM_FIELDS:
                setattr(layer, name, geo[name])

    for name in TRANSFORM_FIELDS:
        getattr(image.events, name).connect(copy)
    layers.unfollow = lambda: [getattr(image.events, n).disconnect(copy)
                               for n in TRANSFORM_FIELDS]


def set_point_kind(points, positive: bool) -> None:
    """New points are positive (lime disc) or negative (red cross) from now on."""
    points.selected_data = set()
    points.feature_defaults = {"positive": bool(positive)}
    points.current_symbol = POSITIVE_SYMBOL if positive else NEGATIVE_SYMBOL


def point_kind(points) -> bool:
    """True when new points are positive."""
    return bool(points.feature_defaults["positive"].iloc[0])


def _point_labels(points) -> np.ndarray:
    if len(points.data) == 0:
        return np.zeros(0, dtype=np.int64)
    return points.features["positive"].to_numpy().astype(np.int64)


def _rectangles(boxes) -> list[np.ndarray]:
    return [d for d, kind in zip(boxes.data, boxes.shape_type, strict=True) if kind == "rectangle"]


def prompts_on_plane(layers: AnnotationLayers, plane: tuple[int, ...]) -> PlanePrompts:
    """The boxes and points drawn on ``plane`` (plane pixel coordinates)."""
    return plane_prompts_from_layer_data(_rectangles(layers.boxes), layers.points.data,
                                         _point_labels(layers.points), plane)


def planes_with_prompts(layers: AnnotationLayers, n_lead: int) -> set[tuple[int, ...]]:
    """Every plane that has at least one box or point."""
    planes = {tuple(int(i) for i in np.round(d[0, :n_lead])) for d in layers.boxes.data}
    pts = np.asarray(layers.points.data)
    planes |= {tuple(int(i) for i in row) for row in np.round(pts[:, :n_lead])}
    return planes


def add_prompts(layers: AnnotationLayers, plane: tuple[int, ...], prompts) -> None:
    """Draw ``prompts`` (a ``PlanePrompts``) on ``plane`` again (a commit that failed)."""
    lead = [float(i) for i in plane]
    for r0, c0, r1, c1 in prompts.boxes:
        corners = [[r0, c0], [r0, c1], [r1, c1], [r1, c0]]
        layers.boxes.add_rectangles(np.array([lead + c for c in corners]))
    points, positive = layers.points, point_kind(layers.points)
    for kind in (True, False):
        coords = prompts.points[(prompts.labels == 1) == kind]
        if len(coords):
            set_point_kind(points, kind)
            points.add(np.array([lead + list(c) for c in coords]))
    set_point_kind(points, positive)


def _on_plane(coords: np.ndarray, plane) -> np.ndarray:
    n = len(plane)
    if n == 0:
        return np.ones(len(coords), dtype=bool)
    return np.all(np.round(coords[:, :n]) == np.asarray(plane), axis=1)


def remove_prompts(layers: AnnotationLayers, plane: tuple[int, ...]) -> None:
    """Delete the boxes and points drawn on ``plane``."""
    boxes = layers.boxes
    if len(boxes.data):
        firsts = np.array([d[0] for d in boxes.data])
        idx = set(np.flatnonzero(_on_plane(firsts, plane)).tolist())
        if idx:
            boxes.selected_data = idx
            boxes.remove_selected()
    points = layers.points
    if len(points.data):
        idx = set(np.flatnonzero(_on_plane(np.asarray(points.data), plane)).tolist())
        if idx:
            points.selected_data = idx
            points.remove_selected()


def update_labels_region(layer, data: np.ndarray, plane: tuple[int, ...], region) -> bool:
    """Show rows ``region[0]:region[1]``, cols ``region[2]:region[3]`` of ``data[plane]``
    (already written into the Labels ``layer``'s own array) without re-slicing the layer.

    Uses napari's partial labels update (what its paint brush does), which re-colours and
    uploads just that part of the displayed slice. Returns False when the layer does not
    display that plane as a plain 2D slice of ``data`` (then call ``layer.refresh()``).
    """
    r0, r1, c0, c1 = region
    try:
        with warnings.catch_warnings():  # napari's private slice API, by design (docstring)
            warnings.simplefilter("ignore", FutureWarning)
            return _update_region(layer, data, plane, r0, r1, c0, c1)
    except (AttributeError, TypeError, ValueError):
        return False


def _update_region(layer, data, plane, r0, r1, c0, c1) -> bool:
    """``update_labels_region``'s work (napari's private slice API; raises what it may)."""
    if (layer.data is not data or layer.contour or not layer.visible or not layer.loaded
            or list(layer._slice_input.displayed) != [data.ndim - 2, data.ndim - 1]):
        return False
    raw, view = layer._slice.image.raw, layer._slice.image.view
    shown = data[plane]
    if raw.shape != shown.shape or view.shape != shown.shape:
        return False
    if not (raw.__array_interface__["data"][0] == shown.__array_interface__["data"][0]
            and raw.strides == shown.strides):
        return False  # another plane (or a copy) is on screen
    if r0 >= r1 or c0 >= c1:
        return True
    sl = (slice(r0, r1), slice(c0, c1))
    view[sl] = layer.colormap._data_to_texture(raw[sl])
    layer.events.labels_update(data=view[sl], offset=[r0, c0])
    return True
