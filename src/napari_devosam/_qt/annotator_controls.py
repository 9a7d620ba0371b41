"""Buttons, the shortcut table and the status line of the annotator widget."""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QFileDialog, QGridLayout, QGroupBox, QLabel, QPushButton, QVBoxLayout

from napari_devosam._qt.annotation_layers import point_kind
from napari_devosam._qt.shortcuts import SHORTCUTS, display_key, html_table
from napari_devosam.utils.text import count, plane_name

SCORES_LISTED = 8  # more current objects: the status gives their predicted IoU's range
_KEYS = {sc.action: display_key(sc.key) for sc in SHORTCUTS}


def _button(text: str, slot, action: str | None = None) -> QPushButton:
    key = _KEYS.get(action or "")
    button = QPushButton(f"{text} [{key}]" if key else text)
    button.clicked.connect(lambda *_: slot())
    return button


def build_controls(w, layout, keys_layout=None) -> None:
    """Add the annotation buttons to widget ``w``'s ``layout`` and the shortcut table to
    ``keys_layout`` (default: ``layout``)."""
    box = QGroupBox("Annotate")
    grid = QGridLayout(box)
    w.commit_button = _button("Commit", w.commit, "commit")
    w.clear_button = _button("Clear prompts", w.clear_prompts, "clear_prompts")
    w.candidate_button = _button("Next candidate", w.next_candidate, "next_candidate")
    w.kind_button = _button("Point kind", w.toggle_point_kind, "toggle_point_kind")
    w.undo_button = _button("Undo", w.undo, "undo")
    w.redo_button = _button("Redo", w.redo, "redo")
    w.delete_button = _button("Delete by click", w.toggle_delete_mode, "toggle_delete_mode")
    w.delete_button.setCheckable(True)
    w.delete_button.clicked.disconnect()
    w.delete_button.clicked.connect(lambda *_: w.toggle_delete_mode())
    w.precompute_button = _button("Precompute all planes", w.precompute_all)
    w.cancel_button = _button("Cancel", w.cancel)
    w.export_button = _button("Export...", lambda: _ask_export(w))
    w.project_button = _button("Project folder...", lambda: ask_project(w))
    buttons = [w.commit_button, w.clear_button, w.candidate_button, w.kind_button,
               w.undo_button, w.redo_button, w.delete_button, w.precompute_button,
               w.cancel_button, w.export_button, w.project_button]
    for i, button in enumerate(buttons):
        grid.addWidget(button, i // 2, i % 2)
    w.precompute_estimate = QLabel()  # how long Precompute will take (_qt.estimates)
    w.precompute_estimate.setWordWrap(True)
    grid.addWidget(w.precompute_estimate, len(buttons) // 2 + 1, 0, 1, 2)
    layout.addWidget(box)
    keys = QGroupBox("Shortcuts")
    inner = QVBoxLayout(keys)
    table = QLabel(html_table())
    table.setWordWrap(True)
    inner.addWidget(table)
    inner.addWidget(QLabel("Draw boxes in <b>boxes</b> (rectangle mode), click points in "
                           "<b>points</b> (add mode)."))
    (layout if keys_layout is None else keys_layout).addWidget(keys)


def _ask_export(w) -> None:
    folder = QFileDialog.getExistingDirectory(w, "Export the training bundle into")
    if folder:
        w.export(folder)


def ask_project(w) -> None:
    """Ask for a project folder; the annotated image's store moves there, nothing is lost."""
    folder = QFileDialog.getExistingDirectory(w, "Keep annotation stores in")
    if folder:
        w.store_ops.relocate(folder)


def status_text(w) -> str:
    """One glance at the state: plane, embedding, candidates, point kind, objects."""
    if w.image_layer is None:
        return "Open or select an image layer to annotate."
    lines = []
    plane = w.current_plane
    lines.append(f"<b>{w.image_layer.name}</b>, plane {plane if plane else '(2D)'}")
    if w.predictor is None:
        lines.append("no model: load one in the Model tab")
    elif w.embeddings.computing_plane is not None:
        lines.append("computing the embedding of "
                     f"{plane_name(w.embeddings.computing_plane)} ...")
    elif w.state is not None and w.state.ready_plane == plane:
        lines.append("embedding ready")
    if w.embeddings.precomputing:
        lines.append("precomputing all planes (see the activity dock)")
    if w.state is not None and plane is not None:
        r = w.state.result(plane)
        if r is not None and r.n_candidates > 1:
            ious = " | ".join(
                (f"<b>{s:.2f}</b>" if i == r.candidate_index else f"{s:.2f}")
                for i, s in enumerate(r.candidate_scores))
            lines.append(f"candidate {r.candidate_index + 1}/{r.n_candidates}, "
                         f"predicted IoU {ious}")
        elif r is not None:  # many objects: a summary (100 scores took 8 lines, trial 17)
            scores = list(r.scores)
            ious = (", ".join(f"{s:.2f}" for s in scores) if len(scores) <= SCORES_LISTED
                    else f"{min(scores):.2f}-{max(scores):.2f}, median "
                         f"{float(np.median(scores)):.2f}")
            lines.append(f"{count(len(r.masks), 'current object')}, predicted IoU {ious}")
    if w.layers is not None:
        kind = "positive" if point_kind(w.layers.points) else "negative"
        lines.append(f"new points: {kind}" + (" | DELETE MODE: click an object"
                                              if w.delete_mode else ""))
    store = w.store
    if store is not None:
        lines.append(f"{len(store.objects)} committed objects, saved in {store.folder}")
    else:
        lines.append("opening the annotation store ...")
    return "<br>".join(lines)
