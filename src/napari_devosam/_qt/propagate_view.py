"""What the Propagate panel shows in the viewer: the ``tracks`` layer and review jumps.

The Tracks layer holds the centroids of the objects on one line of planes (along T or Z) and
the lineage graph (``tracking.store_tracks.tracks_layer_data``); its time column is the index
along that axis, placed on the image's axis of the same name (napari aligns a layer's axes to
the viewer's last ones).
"""

from __future__ import annotations

import numpy as np

TRACKS = "tracks"


def tracks_layout(data: np.ndarray, plane: tuple, axis: int, image_layer):
    """``(data, scale, translate)`` of a Tracks layer over ``image_layer`` for ``data`` rows
    ``(track, index along axis, row, col)`` of the line through ``plane``."""
    n_lead = len(plane)
    scale = np.asarray(image_layer.scale, dtype=float)
    translate = np.asarray(image_layer.translate, dtype=float)
    if n_lead == 2 and axis == 0:  # T of (T, Z, Y, X): the line lies at the seed's Z
        data = np.insert(data, 2, float(plane[1]), axis=1)
    elif n_lead == 2:  # Z of (T, Z, Y, X): drop T, Z becomes the tracks' "time"
        scale, translate = scale[1:], translate[1:]
    return data, scale[-(data.shape[1] - 1):], translate[-(data.shape[1] - 1):]


def color_tracks(viewer, colors: dict | None) -> None:
    """Colour the ``tracks`` layer by track: ``colors`` ``{track: (r, g, b)}``
    (``lineage_colors.track_colors``); nothing happens without the layer or colours.

    napari colours tracks through a property and a colormap: the property ``lineage`` holds
    each vertex's colour index (centred in its bin) and a step colormap maps it back."""
    from napari.utils.colormaps import Colormap

    from napari_devosam.tracking.lineage_colors import rgba_array

    layer = viewer.layers[TRACKS] if TRACKS in viewer.layers else None  # noqa: SIM401
    if layer is None or not colors or not len(layer.data):
        return
    ids = layer.data[:, 0].astype(np.int64)
    tracks = np.unique(ids)
    n = len(tracks)
    index = (np.searchsorted(tracks, ids) + 0.5) / n
    cmap = Colormap(rgba_array(colors, tracks), controls=np.linspace(0.0, 1.0, n + 1),
                    interpolation="zero", name="devosam lineage")
    layer.properties = {"track_id": ids, "lineage": index}
    layer.colormaps_dict = {"lineage": cmap}
    layer.color_by = "lineage"


def show_tracks(viewer, image_layer, data, graph, plane: tuple, axis: int, colors=None):
    """Create or update the ``tracks`` layer; remove it when ``data`` is None (no object).
    ``colors``: ``{track: (r, g, b)}`` to colour it by track (``color_tracks``)."""
    layer = viewer.layers[TRACKS] if TRACKS in viewer.layers else None  # noqa: SIM401
    if data is None or image_layer is None:
        if layer is not None:
            viewer.layers.remove(layer)
        return None
    data, scale, translate = tracks_layout(np.asarray(data, float), plane, axis, image_layer)
    if layer is not None and layer.data.shape[1] != data.shape[1]:
        viewer.layers.remove(layer)
        layer = None
    if layer is None:
        selection = list(viewer.layers.selection)
        active = viewer.layers.selection.active
        layer = viewer.add_tracks(data, graph=graph, name=TRACKS, scale=scale,
                                  translate=translate, tail_length=10)
        viewer.layers.selection.clear()  # adding a layer selects it: give the focus back
        viewer.layers.selection.update(selection)
        viewer.layers.selection.active = active
        color_tracks(viewer, colors)
        return layer
    layer.scale, layer.translate = scale, translate
    layer.color_by = "track_id"  # new data drops the "lineage" property: napari warned
    layer.data = data  # resets the graph
    layer.graph = graph
    color_tracks(viewer, colors)
    return layer


def go_to_plane(viewer, image_layer, plane: tuple) -> None:
    """Move the viewer's sliders to ``plane`` (leading data indices of ``image_layer``)."""
    n = len(plane)
    if n == 0:
        return
    world = image_layer.data_to_world(np.r_[np.asarray(plane, float), 0.0, 0.0])
    offset = viewer.dims.ndim - image_layer.ndim
    viewer.dims.set_point(tuple(range(offset, offset + n)), tuple(float(v) for v in world[:n]))
