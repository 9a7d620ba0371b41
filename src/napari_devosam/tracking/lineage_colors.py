"""One colour per track, daughters near their mother's hue (no Qt; used by the dock and layers).

Root tracks (no mother) take hues spread by the golden ratio of their own track id, so
neighbouring ids differ clearly and a track keeps its colour when others are added, deleted
or edited (by rank among the roots, one deleted track recoloured 49 of 93 others in new-user
trial 19). A daughter takes her mother's hue shifted a little (one sister one way, the other
the other way, the shift halving each generation) and a slightly different lightness: a
family reads as one hue family in the tree, in ``objects`` and in the ``tracks`` layer.
"""

from __future__ import annotations

import colorsys

import numpy as np

from napari_devosam.tracking.lineage import forest

GOLDEN = 0.618033988749895
SISTER_SHIFT = 0.05  # hue step between a mother and her daughters (fraction of the wheel)


def track_colors(info: dict) -> dict[int, tuple[float, float, float]]:
    """``{track: (r, g, b)}`` floats in 0..1 for ``{track: TrackInfo}`` (``parent``,
    ``first``)."""
    roots, children = forest(info)
    hls: dict[int, tuple[float, float, float]] = {}
    todo = []
    for root in sorted(roots, key=lambda t: (info[t].first, t)):
        hls[root] = ((root * GOLDEN) % 1.0, 0.55, 0.85)
        todo.append((root, 0))
    while todo:
        t, depth = todo.pop()
        h, light, sat = hls[t]
        shift = SISTER_SHIFT / (2 ** depth)
        kids = sorted(children.get(t, []), key=lambda k: (info[k].first, k))
        for j, kid in enumerate(kids):
            if kid in hls:
                continue
            sign = -1.0 if j % 2 == 0 else 1.0
            hls[kid] = ((h + sign * shift * (1 + j // 2)) % 1.0,
                        min(0.75, max(0.4, light + (0.06 if j % 2 else -0.06))), sat)
            todo.append((kid, depth + 1))
    for t in info:  # tracks in a parent cycle (refused by the core, but never crash)
        hls.setdefault(t, ((t * GOLDEN) % 1.0, 0.55, 0.85))
    return {t: colorsys.hls_to_rgb(*v) for t, v in hls.items()}


def object_colors(objects_tracks: dict[int, int], colors: dict) -> dict[int, tuple]:
    """``{object id: (r, g, b, a)}`` for a ``DirectLabelColormap`` of ``objects``, from
    ``{object id: track}`` and ``track_colors``; objects of tracks without a colour are left
    out (they take the colormap's default)."""
    return {oid: (*colors[t], 1.0) for oid, t in objects_tracks.items() if t in colors}


def rgba_array(colors: dict, tracks) -> np.ndarray:
    """``(len(tracks), 4)`` float32 RGBA of ``tracks`` (grey for a track without colour)."""
    out = np.full((len(tracks), 4), 0.6, dtype=np.float32)
    out[:, 3] = 1.0
    for i, t in enumerate(tracks):
        c = colors.get(int(t))
        if c is not None:
            out[i, :3] = c
    return out
