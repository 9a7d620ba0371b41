"""Which of the viewer's image layers the annotator works on: the ``image`` combo box.

``ImageChoice`` follows the viewer's layer list (added, removed, renamed layers), offers its
non-multiscale image layers, picks one by itself when none is annotated yet (the active layer,
else the last) and tells the widget when the user picks another or the annotated one goes.
"""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox

from napari_devosam._qt.image_axes import GRAY_SUFFIX


class ImageChoice:
    """Owned by ``AnnotatorWidget`` (``viewer``, ``image_layer``, ``set_image_layer`` and
    ``_detach``); ``combo`` is the widget's ``image_combo``."""

    def __init__(self, widget) -> None:
        self.w = widget
        self.refused: set[int] = set()  # ids of layers refused (no pixels, oblique): not
        self.combo = QComboBox()  # picked again by themselves (trial 18: said 3 times)
        self.combo.currentIndexChanged.connect(self._on_choice)

    def follow(self, viewer) -> None:
        """Keep the choices equal to ``viewer``'s image layers from now on."""
        viewer.layers.events.inserted.connect(self.refresh)
        viewer.layers.events.removed.connect(self._on_removed)
        viewer.layers.events.renamed.connect(self.refresh)
        self.refresh()

    def image_layers(self) -> list:
        from napari.layers import Image

        return [ly for ly in self.w.viewer.layers if isinstance(ly, Image) and not ly.multiscale]

    def refresh(self, event=None, auto: bool = True) -> None:
        """List the image layers, the annotated one selected; with ``auto``, annotate one
        when none is annotated yet."""
        layers, current = self.image_layers(), self.w.image_layer
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems([ly.name for ly in layers])
        if current in layers:
            self.combo.setCurrentIndex(layers.index(current))
        self.combo.blockSignals(False)
        usable = [ly for ly in layers if id(ly) not in self.refused]
        if auto and current is None and usable:
            active = self.w.viewer.layers.selection.active
            self.w.set_image_layer(active if active in usable else usable[-1])

    def _on_choice(self, index: int) -> None:
        layers = self.image_layers()
        if 0 <= index < len(layers) and layers[index] is not self.w.image_layer:
            self.w.set_image_layer(layers[index])

    def _on_removed(self, event) -> None:
        if event.value is self.w.image_layer:
            self.w._detach()
        # a removed gray view is not re-created behind the user's back (nor while napari
        # clears all layers on close); the combo still offers its source
        gray_view = event.value.name.endswith(GRAY_SUFFIX)
        self.refresh(auto=not gray_view)
