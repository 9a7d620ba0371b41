"""The annotator's view of an image layer under the package's one axes rule.

napari shows an ``(H, W, 1)`` or gray + alpha ``(H, W, 2)`` array as a stack of thin planes;
the API and the CLI read it as one grayscale plane (``engine.stacks.canonical_axes``). So that
the GUI agrees, such a layer is annotated through a gray view of it, added once next to it.
"""

from __future__ import annotations

from napari_devosam.engine.stacks import canonical_axes

GRAY_SUFFIX = " (gray)"


def annotated_layer(viewer, layer):
    """``layer`` itself, or the gray view of it when its data has a lone-channel or gray +
    alpha axis (added to ``viewer`` on first use, the original hidden, the user told)."""
    if layer.rgb or layer.name.endswith(GRAY_SUFFIX):
        return layer
    data = canonical_axes(layer.data)
    if tuple(data.shape) == tuple(layer.data.shape):
        return layer
    name = layer.name + GRAY_SUFFIX
    if name in viewer.layers:
        return viewer.layers[name]
    channels = layer.data.shape[-1]
    gray = viewer.add_image(data, name=name, scale=layer.scale[:-1],
                            translate=layer.translate[:-1], colormap="gray")
    layer.visible = False
    from napari.utils.notifications import show_info

    what = "a lone channel axis" if channels == 1 else "gray + alpha channels"
    show_info(f"{layer.name!r} has {what} (shape {tuple(layer.data.shape)}): it is one "
              f"grayscale plane per index, annotated as {name!r}.")
    return gray
