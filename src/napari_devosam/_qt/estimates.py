"""What long work will cost, shown in the panels before Start, and Propagate's default range.

The arithmetic and the wording are the core's (``utils.estimate.panel_line``,
``utils.clocks.TimeLeft``, ``record_run``); here the panels' values are read and the text shown.

``work_estimate(w, what, planes, step)``: the whole work of a panel on ``planes``: the
planes not in the cache (``EmbeddingJobs.to_embed``) x the encoder's seconds per plane
(measured in this process, ``engine.encoder_timing``, else recorded on an earlier run), plus
every plane x the per-plane time recorded for ``step`` (``"auto"``: Segment all; ``"track"``:
Propagate, per object-plane x the objects on the plane shown when that is recorded,
``objects_shown``) by an earlier run of the CLI or the annotator with the same model, device and
precision (``model_panel.loaded.key``). With nothing recorded for the step the line says it
counts the encoder only and that the first plane will be timed. ``update_estimates(w)``
refreshes the labels of Precompute, Segment all and Propagate (the annotator calls it with
its status line).

``RunTiming``: a panel's run says its time left from the planes done so far and, when it
finishes, records its step and encoder times (the CLI's record), so the next estimate is
measured.

``PropagateRange``: Propagate's from/to planes follow the plane shown as a window of
``WINDOW`` planes in the chosen direction (not the whole movie), until the user sets them.
"""

from __future__ import annotations

import contextlib
import itertools

from qtpy.QtWidgets import QLabel

from napari_devosam.utils.clocks import TimeLeft
from napari_devosam.utils.estimate import (
    auto_step,
    panel_line,
    record_run,
    record_seconds,
)

WINDOW = 20  # planes from the current one that Propagate covers by default


def model_key(w) -> str | None:
    """The record key of the annotator ``w``'s model (None: no model in use)."""
    loaded = getattr(w.model_panel, "loaded", None)
    return None if loaded is None or w.sam is None else loaded.key


def work_estimate(w, what: str, planes, step: str | None, objects: int | None = None,
                  detects: bool = True) -> str:
    """One line: how long ``what`` will take on ``planes`` (index tuples) of ``w``'s image:
    their embedding, then ``step`` (None: the encoder only) on each, following ``objects``
    seeds (Propagate: per object-plane when recorded, ``utils.estimate.recorded_step``;
    ``detects`` False: new-cell detection is off)."""
    from napari_devosam.engine.encoder_timing import seconds_per_plane

    planes = list(planes)
    if w.sam is None or not planes:
        return ""
    return panel_line(what, len(planes), step, model_key(w), w.embeddings.to_embed(planes),
                      seconds_per_plane(w.sam), objects, detects, plane_shape(w))


def plane_shape(w) -> tuple | None:
    """The shape of one plane of ``w``'s image (step times are kept per size class,
    ``utils.estimate.size_class``); None without an image."""
    state = getattr(w, "state", None)
    return None if state is None else tuple(state.shape[state.n_lead:])


def objects_shown(w) -> int | None:
    """The committed objects on the plane shown (the ``objects`` layer's distinct labels
    there: the seeds of a Propagate run from it); None without a layer or plane."""
    import numpy as np

    layer, plane = getattr(getattr(w, "layers", None), "objects", None), w.current_plane
    if layer is None or plane is None or w.state is None:
        return None
    try:
        labels = np.asarray(layer.data[tuple(plane)])
    except (IndexError, TypeError):  # the image is changing under the layer
        return None
    if labels.size == 0 or not labels.any():
        return 0
    # on the GUI thread at every plane change: a linear count, not np.unique's sort
    return int(np.count_nonzero(np.bincount(labels.ravel().astype(np.int64, copy=False))[1:]))


def image_planes(w) -> list[tuple]:
    """Every plane (index tuple over the leading axes) of ``w``'s image; ``[()]`` for 2D."""
    if w.state is None:
        return []
    return list(itertools.product(*(range(int(n)) for n in w.state.shape[:w.state.n_lead])))


def update_estimates(w) -> None:
    """Refresh the estimate labels of the annotator ``w``'s panels."""
    with contextlib.suppress(AttributeError, RuntimeError):  # a panel not built yet / gone
        planes = image_planes(w)
        several = len(planes) > 1
        w.precompute_estimate.setText(work_estimate(w, "Precompute all planes", planes, None)
                                      if several else "")
        mode = w.segment_all_panel.mode_combo.currentText()
        w.segment_all_panel.estimate.setText(
            work_estimate(w, "Segment all planes", planes, auto_step(mode)) if several else "")
        w.propagate_panel.range.update_estimate()


def record_encoder(w) -> None:
    """Keep the encoder's measured time per plane (after a Precompute) for the next session."""
    from napari_devosam.engine.encoder_timing import seconds_per_plane

    key = model_key(w)
    if key is not None:
        record_seconds(key, seconds_per_plane(w.sam))
    update_estimates(w)


class RunTiming:
    """The clock of one panel run of ``step`` (``"auto"``, ``"track"``) by the annotator ``w``.

    ``left(done, total)``: the time left, from the planes done so far (``TimeLeft``; ``""``
    before the first). ``finished(n_planes, planes, object_planes)``: the run processed
    ``n_planes`` (``planes``: their index tuples, now in the cache; ``object_planes``: the
    tracked objects summed over them, for a per-object time; ``plane_seconds``: its time in
    the step's per-plane part, ``utils.estimate.PER_PLANE_PART``): its step and encoder times are
    recorded under the model's key (``record_run``; the planes it embedded counted by the
    annotator's cache, ``LockedEmbeddingCache.puts``) and the estimates refreshed.
    """

    def __init__(self, w, step: str):
        self.w, self.step, self.sam, self.key = w, step, w.sam, model_key(w)
        self.puts = getattr(w.cache, "puts", 0)
        self.clock = TimeLeft("plane")

    def left(self, done: int, total: int) -> str:
        return self.clock(done, total) or ""

    def finished(self, n_planes: int, planes=(), object_planes: int | None = None,
                 plane_seconds: float | None = None) -> float | None:
        """Record the run's times; returns the step's seconds per plane (None: not recorded)."""
        from napari_devosam.engine.encoder_timing import seconds_per_plane

        w, each = self.w, None
        if self.key is not None and n_planes > 0:
            embedded = getattr(w.cache, "puts", 0) - self.puts
            each = record_run(self.step, self.key, self.clock.clock() - self.clock.started,
                              n_planes, embedded, seconds_per_plane(self.sam),
                              object_planes, plane_seconds, plane_shape(w))
        with contextlib.suppress(AttributeError, RuntimeError):
            w.embeddings.mark_cached(planes)
        update_estimates(w)
        return each


class PropagateRange:
    """The from/to spin boxes of a ``PropagatePanel``: a window around the plane shown, and
    the estimate's label in row ``ESTIMATE_ROW`` of the panel's grid, above Propagate."""

    ESTIMATE_ROW = 6

    def __init__(self, panel):
        self.panel = panel
        self.auto = True  # follow the plane shown until the user sets a bound
        self._setting = False
        self.label = QLabel()
        self.label.setWordWrap(True)
        panel.layout().addWidget(self.label, self.ESTIMATE_ROW, 0, 1, 2)
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

    def planes(self) -> list[tuple]:
        """The planes a run from the plane shown would visit (``tracking.route.Route``, as
        the run computes them); none for an impossible range."""
        from napari_devosam.tracking.route import Route

        p, plane = self.panel, self.panel.w.current_plane
        axis = p.axis_combo.currentData()
        if not p.lead or not plane or axis is None or axis >= len(plane):
            return []
        try:
            return Route.through(p.lead, plane, axis, p.direction_combo.currentText(),
                                 (p.first_spin.value(), p.last_spin.value())).planes
        except ValueError:
            return []

    def update_estimate(self) -> None:
        w, planes = self.panel.w, self.planes()
        objects = objects_shown(w) if planes else None
        self.label.setText(work_estimate(w, "Propagate", planes, "track", objects,
                                         self._detects()))

    def _detects(self) -> bool:
        """Whether the run will look for new cells (the form's ``new_tracks``)."""
        try:
            return bool(self.panel.form.values().get("new_tracks", True))
        except (AttributeError, ValueError):
            return True
