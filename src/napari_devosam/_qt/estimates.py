"""What long work will cost, shown in the panels before Start, and Propagate's default range.

``planes_estimate(w, n, what)``: ``n`` planes to embed x the seconds per plane measured on
this machine with the annotator's model (``engine.encoder_timing``: the first embedding of the
image measures it), e.g. "Propagate: about 1 min 40 s for 20 planes (5 s per plane, measured
here)". ``update_estimates(w)`` refreshes the labels of Precompute, Segment all and Propagate
(the annotator calls it with its status line).

``PropagateRange``: Propagate's from/to planes follow the plane shown as a window of
``WINDOW`` planes in the chosen direction (not the whole movie), until the user sets them.
"""

from __future__ import annotations

import contextlib

from qtpy.QtWidgets import QLabel

from napari_devosam.utils.estimate import estimate_line
from napari_devosam.utils.text import count

WINDOW = 20  # planes from the current one that Propagate covers by default


def planes_estimate(w, n_planes: int, what: str) -> str:
    """One line: how long ``n_planes`` planes of encoder work will take for ``what``."""
    from napari_devosam.engine.encoder_timing import seconds_per_plane

    if w.sam is None or n_planes <= 0:
        return ""
    each = seconds_per_plane(w.sam)
    if each is None:
        return (f"{what}: up to {count(n_planes, 'plane')} to embed; the time per plane "
                "shows here once the first plane is embedded")
    return f"{what}: {estimate_line(n_planes, each, 'plane', 'measured here')}"


def _n_planes(w) -> int:
    if w.state is None or not w.state.n_lead:
        return 1 if w.state is not None else 0
    n = 1
    for size in w.state.shape[:w.state.n_lead]:
        n *= int(size)
    return n


def update_estimates(w) -> None:
    """Refresh the estimate labels of the annotator ``w``'s panels."""
    with contextlib.suppress(AttributeError, RuntimeError):  # a panel not built yet / gone
        n = _n_planes(w)
        w.precompute_estimate.setText(planes_estimate(w, n, "Precompute all planes")
                                      if n > 1 else "")
        w.segment_all_panel.estimate.setText(planes_estimate(w, n, "Segment all planes")
                                             if n > 1 else "")
        w.propagate_panel.range.update_estimate()


class PropagateRange:
    """The from/to spin boxes of a ``PropagatePanel``: a window around the plane shown."""

    def __init__(self, panel):
        self.panel = panel
        self.auto = True  # follow the plane shown until the user sets a bound
        self._setting = False
        self.label = QLabel()
        self.label.setWordWrap(True)
        grid = panel.layout()
        grid.addWidget(self.label, grid.rowCount(), 0, 1, 2)
        panel.first_spin.valueChanged.connect(self._edited)
        panel.last_spin.valueChanged.connect(self._edited)
        panel.direction_combo.currentIndexChanged.connect(lambda *_: self.follow())
        panel.w.viewer.dims.events.current_step.connect(self.follow)

    def reset(self) -> None:
        """A new image or axis: the window follows the plane shown again."""
        self.auto = True
        self.follow()

    def window(self) -> tuple[int, int] | None:
        """``(first, last)`` planes of the default window on the panel's axis, or None."""
        p, w = self.panel, self.panel.w
        axis, lead, plane = p.axis_combo.currentData(), p.lead, w.current_plane
        if axis is None or axis >= len(lead) or not plane:
            return None
        here, n = plane[axis], lead[axis]
        direction = p.direction_combo.currentText()
        first = here if direction == "forward" else max(here - WINDOW, 0)
        last = here if direction == "backward" else min(here + WINDOW, n - 1)
        return first, last

    def follow(self, *_) -> None:
        try:
            bounds = self.window() if self.auto else None
            if bounds is not None:
                self._setting = True
                try:
                    self.panel.first_spin.setValue(bounds[0])
                    self.panel.last_spin.setValue(bounds[1])
                finally:
                    self._setting = False
            self.update_estimate()
        except RuntimeError:  # the panel was closed; the viewer lives on
            pass

    def _edited(self, *_) -> None:
        if not self._setting:
            self.auto = False
        self.update_estimate()

    def update_estimate(self) -> None:
        p = self.panel
        n = p.last_spin.value() - p.first_spin.value()  # the plane shown is embedded already
        self.label.setText(planes_estimate(p.w, n, "Propagate") if p.lead else "")
