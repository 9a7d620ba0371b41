"""The annotator's keyboard shortcuts, chosen not to clash with napari 0.9's own.

napari resolves a key through the active layer's own bindings, then its class's defaults,
then the viewer's. Each shortcut is bound on our prompt/label layers where the key is free for
that layer type (or where we deliberately take it over: ``Escape`` on ``boxes`` and ``points``)
and on the viewer as a fallback. The image layer's own ``C`` (auto-contrast), the Shapes
layer's ``T`` (path mode) and ``current object``'s ``Ctrl+Z`` / ``Escape`` stay napari's; on
``objects`` ``Ctrl+Z`` undoes commits, deletes and brush strokes alike (one undo stack).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shortcut:
    key: str  # napari key-binding syntax
    action: str  # AnnotatorWidget method name, called without arguments
    description: str
    layers: tuple[str, ...]  # our layer roles that bind it; the viewer always does too
    note: str = ""


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("c", "commit", "commit the current object(s) of this plane",
             ("boxes", "points", "current", "objects"), "not while the image layer is active"),
    Shortcut("Escape", "clear_prompts", "clear this plane's prompts", ("boxes", "points")),
    Shortcut("n", "next_candidate", "next of SAM's 3 candidates (one ambiguous prompt)",
             ("boxes", "points", "current", "objects")),
    Shortcut("t", "toggle_point_kind", "toggle positive / negative points", ("points",),
             "not while boxes is active"),
    Shortcut("Control-z", "undo", "undo the last commit, delete or correction",
             ("boxes", "points", "objects")),
    Shortcut("Control-Shift-z", "redo", "redo", ("boxes", "points", "objects")),
    Shortcut("Shift-d", "toggle_delete_mode", "delete mode: click an object to delete it",
             ("boxes", "points", "current", "objects")),
    Shortcut("PageDown", "next_image", "next image of the series",
             ("boxes", "points", "current", "objects")),
    Shortcut("PageUp", "previous_image", "previous image of the series",
             ("boxes", "points", "current", "objects")),
)


def display_key(key: str) -> str:
    """napari syntax -> what users read: "Control-Shift-z" -> "Ctrl+Shift+Z"."""
    parts = key.replace("Control", "Ctrl").split("-")
    return "+".join(p.upper() if len(p) == 1 else p for p in parts)


def bind_shortcuts(widget, viewer, layers: dict) -> list:
    """Bind every shortcut on ``layers`` (role -> napari layer) and on ``viewer``.

    Returns the viewer bindings made, for ``unbind_viewer``.
    """
    from napari.utils.key_bindings import coerce_keybinding

    made = []
    for sc in SHORTCUTS:
        def call(_target=None, _name=sc.action):
            getattr(widget, _name)()

        for role in sc.layers:
            layer = layers.get(role)
            if layer is not None:
                layer.bind_key(sc.key, call, overwrite=True)
        existing = viewer.keymap.get(coerce_keybinding(sc.key))
        if existing is None or getattr(existing, "_devosam", False):
            call._devosam = True
            viewer.bind_key(sc.key, call, overwrite=True)
            made.append(sc.key)
    return made


def unbind_viewer(viewer, keys) -> None:
    for key in list(keys):
        viewer.bind_key(key, None)  # None unbinds


def html_table() -> str:
    rows = "".join(
        f"<tr><td><b>{display_key(sc.key)}</b></td><td>{sc.description}"
        + (f" <i>({sc.note})</i>" if sc.note else "") + "</td></tr>"
        for sc in SHORTCUTS
    )
    return f"<table cellspacing='2'>{rows}</table>"
