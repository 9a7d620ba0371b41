"""The annotator's "Image series" panel: a folder or a list of files, one image at a time.

The core is ``series.image_series.ImageSeries`` (order, position, done marks in the series'
folder). Here: open a folder or files, Previous / Next (PageUp / PageDown), "Next not done", a
"done" box. Moving reads the next file in a worker (a big stack takes seconds to read: the
viewer stays responsive, and unreadable files are skipped with a message), then replaces the
series' image layer with it (bound to its file, so its own annotation store opens) and starts a
low-priority worker that embeds the first plane of the next ``PREFETCH`` images into the
annotator's cache. An image with uncommitted prompts or objects is not left: the user commits
or clears them first (nothing is lost silently).
"""

from __future__ import annotations

from pathlib import Path

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QLabel,
    QPushButton,
)

from napari_devosam._qt.workers import create_job


def viewer_is_open(viewer) -> bool:
    """False once ``viewer``'s window was closed (napari deletes ``Window._qt_window`` then;
    adding a layer to a closed viewer raises inside napari's layer controls)."""
    return getattr(viewer.window, "_qt_window", None) is not None


def is_docked(widget, viewer) -> bool:
    """True while ``widget`` is one of ``viewer``'s dock widgets."""
    try:
        return any(w is widget for w in viewer.window.dock_widgets.values())
    except (AttributeError, RuntimeError):  # a closed window has no docks
        return False

PREFETCH = 2  # images ahead whose first plane is embedded in the background


def _read_job(candidates):
    """The pixels of the first readable ``(index, path)`` of ``candidates``: returns
    ``(index, path, data)``, or None when none can be read; yields ``(path, message)`` for
    each one skipped."""
    from napari_devosam.io.read import read_image

    for index, path in candidates:
        try:
            return index, path, read_image(path)
        except (OSError, ValueError, TypeError, RuntimeError, ImportError) as exc:
            yield path, str(exc)
    return None


def _prefetch_job(sam, cache, paths, normalization):
    from napari_devosam.series.prefetch import prefetch_embeddings
    from napari_devosam.utils.background import niced

    # niced: the plane the user waits for (normal priority) wins the cores
    return (yield from niced(prefetch_embeddings, sam, cache, paths, normalization))


class SeriesPanel(QGroupBox):
    """Series controls of an ``AnnotatorWidget`` ``w``."""

    def __init__(self, w):
        super().__init__("Image series")
        self.w = w
        self.series = None
        self.layer = None  # the image layer the series added
        self.prefetch_worker = None
        self.read_worker = None  # reading the image to show next
        self.open_folder_button = QPushButton("Open folder...")
        self.open_folder_button.clicked.connect(self._choose_folder)
        self.open_files_button = QPushButton("Open files...")
        self.open_files_button.clicked.connect(self._choose_files)
        self.previous_button = QPushButton("< Previous")
        self.previous_button.setToolTip("previous image (PageUp)")
        self.previous_button.clicked.connect(self.previous_image)
        self.next_button = QPushButton("Next >")
        self.next_button.setToolTip("next image (PageDown)")
        self.next_button.clicked.connect(self.next_image)
        self.undone_button = QPushButton("Next not done")
        self.undone_button.clicked.connect(self.next_undone)
        self.done_box = QCheckBox("done")
        self.done_box.setToolTip("mark this image done (kept in the series folder)")
        self.done_box.toggled.connect(self._on_done)
        self.label = QLabel("No series: open a folder or several files.")
        self.label.setWordWrap(True)
        grid = QGridLayout(self)
        grid.addWidget(self.open_folder_button, 0, 0)
        grid.addWidget(self.open_files_button, 0, 1)
        grid.addWidget(self.previous_button, 1, 0)
        grid.addWidget(self.next_button, 1, 1)
        grid.addWidget(self.undone_button, 2, 0)
        grid.addWidget(self.done_box, 2, 1)
        grid.addWidget(self.label, 3, 0, 1, 2)
        self.w.model_changed.connect(self._prefetch)
        self._update()

    # --- opening ---------------------------------------------------------------------------
    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Image series folder")
        if folder:
            self.open([folder])

    def _choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Images of the series")
        if files:
            self.open(files)

    def open(self, inputs) -> bool:
        """Open the series of ``inputs`` (folders, globs, files) at its saved position (or the
        next image that can be read)."""
        from napari_devosam.series.image_series import ImageSeries

        if self.reading or not self._may_leave():
            return False
        try:
            series = ImageSeries.open([str(i) for i in inputs])
        except (OSError, ValueError) as exc:
            show_error(f"Cannot open the series: {exc}")
            return False
        self.series = series
        if series.note:
            show_warning(series.note)
        here = series.index
        candidates = [(here, series.path), *self._candidates(lambda s: s.next(), here)]
        self._read(candidates, here, "No image of the series after this one can be read; "
                                     "use < Previous.", show_error)
        return True

    # --- moving ----------------------------------------------------------------------------
    def next_image(self) -> bool:
        return self._move(lambda s: s.next(), "This is the last image of the series.")

    def previous_image(self) -> bool:
        return self._move(lambda s: s.previous(), "This is the first image of the series.")

    def next_undone(self) -> bool:
        return self._move(lambda s: s.next_undone(), "Every other image of the series is done.")

    def _move(self, step, at_end: str) -> bool:
        """Start reading the image ``step`` leads to; False (with a notification) when there
        is none, the user must stay, or an image is still being opened."""
        if self.series is None:
            show_info("Open a folder or several files as a series first.")
            return False
        if self.reading:
            show_info("Still opening the previous choice; try again in a moment.")
            return False
        if not self._may_leave():
            return False
        here = self.series.index
        candidates = self._candidates(step, here)
        if not candidates:
            show_info(at_end)
            return False
        self._read(candidates, here, at_end, show_info)
        return True

    @property
    def reading(self) -> bool:
        """True while an image is being read to be shown."""
        return self.read_worker is not None

    def _candidates(self, step, here: int) -> list[tuple[int, Path]]:
        """``(index, path)`` of the images ``step`` visits from ``here``, in order (the
        series' position is left at ``here``)."""
        out, seen = [], {here}
        for _ in range(len(self.series)):
            if step(self.series) is None or self.series.index in seen:
                break
            seen.add(self.series.index)
            out.append((self.series.index, self.series.path))
        self.series.go(here)
        return out

    def _read(self, candidates, here: int, none_left: str, say) -> None:
        """Read the first readable candidate in a worker and show it; each unreadable one is
        skipped with a notification; ``say(none_left)`` when none can be read."""
        worker = create_job(_read_job, candidates)
        worker.yielded.connect(lambda skipped: viewer_is_open(self.w.viewer) and show_error(
            f"Cannot open {Path(skipped[0]).name}, skipped: {skipped[1]}"))
        docked = is_docked(self.w, self.w.viewer)  # an undocked annotator drops the result
        worker.returned.connect(lambda found: self._read_done(found, candidates, here,
                                                              none_left, say, worker, docked))
        worker.errored.connect(lambda exc: self._read_failed(exc))
        worker.finished.connect(lambda wk=worker: self._read_finished(wk))
        self.read_worker = worker
        self._update()
        self.label.setText(f"Opening {candidates[0][1].name}...")
        worker.start()

    def _read_done(self, found, candidates, here: int, none_left: str, say, worker,
                   docked: bool) -> None:
        if self.read_worker is not worker:  # cancelled while it read
            return
        self.read_worker = None
        if not viewer_is_open(self.w.viewer) or (docked and not is_docked(self.w,
                                                                          self.w.viewer)):
            return  # napari or the annotator was closed while it read: nothing to show
        if found is not None:
            index, path, data = found
            self.series.go(index)
            if self._show(path, data):
                return
            self.series.go(here)
            after = candidates[[c[0] for c in candidates].index(index) + 1:]
            if after:  # it was read but napari could not show it: on to the next one
                self._read(after, here, none_left, say)
                return
        self._update()
        say(none_left)

    def _read_finished(self, worker) -> None:
        if self.read_worker is worker:  # stopped before it returned (napari closing quits it)
            self.read_worker = None
            if viewer_is_open(self.w.viewer):
                self._update()

    def _read_failed(self, exc) -> None:
        self.read_worker = None
        if viewer_is_open(self.w.viewer):
            self._update()
            show_error(f"Could not open the image: {exc}")

    def _may_leave(self) -> bool:
        """False (with a notification) while this image has uncommitted prompts or objects."""
        w = self.w
        if w.state is None or w.layers is None:
            return True
        from napari_devosam._qt.annotation_layers import planes_with_prompts

        if planes_with_prompts(w.layers, w.state.n_lead) or w.state.results:
            show_warning("This image has objects that are not committed: commit them (C) or "
                         "clear them (Escape) before moving to another image.")
            return False
        return True

    def _show(self, path: Path, data) -> bool:
        """Replace the series' layer by ``path``'s pixels ``data`` and annotate it; False (the
        current image stays) if they cannot be shown."""
        from napari_devosam._qt.image_open import add_image_file

        viewer = self.w.viewer
        try:
            layer = add_image_file(viewer, path, data)
        except (OSError, ValueError, TypeError, RuntimeError) as exc:
            show_error(f"Cannot open {path.name}, skipped: {exc}")
            return False
        if self.layer is not None and self.layer in viewer.layers:
            viewer.layers.remove(self.layer)
        self.layer = layer
        if self.w.image_layer is not layer:  # not already chosen when it was inserted
            self.w.set_image_layer(layer)
        lead = self.w.state.n_lead if self.w.state is not None else 0
        if lead:  # start at the first plane: the one prefetched
            step = list(viewer.dims.current_step)
            for axis in range(lead):
                step[axis] = 0
            viewer.dims.current_step = tuple(step)
        self._update()
        self._prefetch()
        return True

    # --- marks and prefetch ----------------------------------------------------------------
    def _on_done(self, checked: bool) -> None:
        if self.series is None or checked == self.series.is_done():
            return
        try:
            self.series.set_done(checked)
        except OSError as exc:
            show_error(f"Could not save the done mark: {exc}")
        self._update()

    def _prefetch(self) -> None:
        if self.prefetch_worker is not None:
            self.prefetch_worker.quit()
            self.prefetch_worker = None
        w = self.w
        if self.series is None or w.predictor is None:
            return
        upcoming = self.series.upcoming(PREFETCH)
        if not upcoming:
            return
        worker = create_job(_prefetch_job, w.sam, w.cache, upcoming, w.predictor.normalization,
                            progress={"total": len(upcoming),
                                      "desc": "SAM embeddings of the next images"})
        worker.finished.connect(lambda wk=worker: self._prefetch_finished(wk))
        self.prefetch_worker = worker
        worker.start()

    def _prefetch_finished(self, worker) -> None:
        if self.prefetch_worker is worker:
            self.prefetch_worker = None

    def cancel(self) -> None:
        if self.prefetch_worker is not None:
            self.prefetch_worker.quit()
        if self.read_worker is not None:
            self.read_worker.quit()
            self.read_worker = None

    def _update(self) -> None:
        s = self.series
        idle = not self.reading
        for button in (self.open_folder_button, self.open_files_button):
            button.setEnabled(idle)
        for button in (self.previous_button, self.next_button, self.undone_button):
            button.setEnabled(idle and s is not None)
        self.done_box.setEnabled(idle and s is not None)
        if s is None or not idle:
            return
        self.done_box.blockSignals(True)
        self.done_box.setChecked(s.is_done())
        self.done_box.blockSignals(False)
        self.previous_button.setEnabled(s.index > 0)
        self.next_button.setEnabled(s.index + 1 < len(s))
        self.label.setText(f"{s.index + 1} / {len(s)}: {s.path.name}  ({s.done_count} done; "
                           f"marks in {s.marks_path.parent})")
