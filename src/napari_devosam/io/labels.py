"""Whether a label image is one: an intensity image given as labels is refused.

A label image holds one integer per object, each object (mostly) one connected piece. An
intensity image read as labels holds a few hundred grey values, each scattered over many
pieces: new-user trial 20 gave a movie itself as ``devosam track --seed-labels`` and got 214
"tracks" without a word. ``check_label_plane`` counts the connected pieces of equal value
(``skimage.measure.label`` with ``background=0``: one pass) against the values.
"""

from __future__ import annotations

import numpy as np

PIECES_PER_VALUE = 3.0  # more pieces than this per label value on average: not labels
MIN_VALUES = 10  # fewer label values are not judged (a few cells cut by a crop)


def check_label_plane(labels: np.ndarray, what: str = "the labels") -> None:
    """``ValueError`` naming ``what`` when the ``(H, W)`` integer ``labels`` look like an
    intensity image (rule of the module docstring)."""
    from skimage.measure import label

    labels = np.asarray(labels)
    values = np.unique(labels)
    n_values = int(np.count_nonzero(values))
    if n_values < MIN_VALUES:
        return
    pieces = int(label(labels, background=0, connectivity=1).max())
    if pieces > PIECES_PER_VALUE * n_values:
        raise ValueError(
            f"{what} look like an intensity image, not labels: {n_values} values in {pieces} "
            "separate pieces; give a label image (one integer per cell, 0 for background)")
