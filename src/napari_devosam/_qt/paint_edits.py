"""Which pixels a napari Labels paint event changed, per plane (brush, eraser, fill).

napari 0.9 emits ``Labels.events.paint`` once per undo item: a whole brush stroke (mouse
press to release), one fill or one polygon, with ``value`` the list of history atoms. Atoms
are ``_MaskedPaintAtom(slice_key, mask, old_values, new_value)`` (paint, fill, polygon) or
``(indices, old_values, new_values)`` tuples (``data_setitem``). Both values come from the
atoms: outside a stroke napari emits the event *before* it writes the array.
"""

from __future__ import annotations

import numpy as np


def _atom_coords(atom, ndim):
    """``(coords (N, ndim), old values (N,), new values (N,))`` of one history atom."""
    if hasattr(atom, "slice_key"):
        starts = np.array([s.start or 0 for s in atom.slice_key], dtype=np.int64)
        if atom.mask is None:
            sizes = [s.stop - (s.start or 0) for s in atom.slice_key]
            coords = np.indices(sizes).reshape(len(sizes), -1).T
            old = np.asarray(atom.old_values).reshape(-1)
        else:
            coords = np.argwhere(atom.mask)
            old = np.asarray(atom.old_values).reshape(-1)
        return coords + starts, old, np.full(len(coords), atom.new_value)
    indices, old, new = atom
    coords = np.stack([np.asarray(i, dtype=np.int64).reshape(-1) for i in indices], axis=1)
    n = len(coords)
    return (coords, np.broadcast_to(np.asarray(old).reshape(-1), n),
            np.broadcast_to(np.asarray(new).reshape(-1), n))


def changed_pixels(item, shape) -> dict[tuple[int, ...], tuple[np.ndarray, ...]]:
    """``{plane: (flat pixel indices, values before, values after)}`` of one paint event's
    ``value``.

    ``shape``: the labels' shape (leading axes, then ``(H, W)``). A pixel changed twice in
    one stroke keeps its first "before" and its last "after" value.
    """
    ndim = len(shape)
    parts = [_atom_coords(atom, ndim) for atom in item]
    if not parts:
        return {}
    coords = np.concatenate([p[0] for p in parts])
    old = np.concatenate([p[1] for p in parts])
    new = np.concatenate([p[2] for p in parts])
    flat = coords[:, -2] * shape[-1] + coords[:, -1]
    if ndim == 2:
        planes, inverse = [()], np.zeros(len(flat), dtype=np.int64)
    else:
        planes, inverse = np.unique(coords[:, :-2], axis=0, return_inverse=True)
    out = {}
    for k, plane in enumerate(planes):
        rows = inverse.reshape(-1) == k
        pixels, first = np.unique(flat[rows], return_index=True)
        _, last = np.unique(flat[rows][::-1], return_index=True)
        out[tuple(int(i) for i in plane)] = (pixels, old[rows][first],
                                             new[rows][::-1][last])
    return out
