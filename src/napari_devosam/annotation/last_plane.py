"""The plane the user last worked on, remembered in an annotation store's folder.

``view.json`` next to ``store.json`` holds ``{"plane": [t, ...]}``: the leading indices of the
last plane where something was committed or corrected. The annotator opens a stack there (else
at its first plane). The file is written atomically and is only a convenience: a missing,
unreadable or out-of-range one reads as None, never as an error, and the store's objects never
depend on it.
"""

from __future__ import annotations

import json
from pathlib import Path

from napari_devosam.utils.atomic import write_text

VIEW_FILE = "view.json"


def remember_plane(folder, plane) -> None:
    """Write ``plane`` (a tuple of leading indices; ``()`` for a 2D image) as the last plane
    worked on in store folder ``folder`` (created if needed). Raises ``OSError`` when the
    folder cannot be written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / VIEW_FILE, json.dumps({"plane": [int(i) for i in plane]}))


def last_plane(folder, shape) -> tuple[int, ...] | None:
    """The plane remembered in ``folder`` for an image of ``shape`` (its leading T/Z axes
    then ``(H, W)``), or None when none is remembered or it does not fit ``shape``."""
    n_lead = len(shape) - 2
    try:
        plane = json.loads((Path(folder) / VIEW_FILE).read_text())["plane"]
        plane = tuple(int(i) for i in plane)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if n_lead <= 0 or len(plane) != n_lead:
        return None
    if any(not 0 <= i < n for i, n in zip(plane, shape[:n_lead], strict=True)):
        return None
    return plane
