"""npe2 sample data: a synthetic membrane-stained embryo time-lapse (16-bit).

No napari import: the contribution returns napari's LayerData tuples.
"""

from __future__ import annotations

import numpy as np

from napari_devosam.synthetic.phantoms import make_timelapse

SAMPLE_SHAPE = (4, 384, 512)
SAMPLE_SEED = 2024


def embryo_timelapse() -> list[tuple]:
    """``[(stack, kwargs, "image")]``: a ``(4, 384, 512)`` uint16 time-lapse whose 4 cells divide.

    Generated on the fly (well under a second); the contrast limits are robust percentiles of
    the whole stack so that a few hot pixels do not make it look black.
    """
    stack, labels = make_timelapse(
        n_timepoints=SAMPLE_SHAPE[0], shape=SAMPLE_SHAPE[1:], n_cells=4, seed=SAMPLE_SEED
    )
    low, high = np.percentile(stack[:, ::4, ::4], [0.5, 99.8])
    metadata = {
        "source": "napari-devosam synthetic phantom "
                  "(napari_devosam.synthetic.phantoms.make_timelapse)",
        "seed": SAMPLE_SEED,
        "stain": "membrane",
        "axes": "TYX",
        "cells_per_timepoint": [int(lab.max()) for lab in labels],
    }
    kwargs = {
        "name": "embryo (synthetic)",
        "contrast_limits": [float(low), float(high)],
        "colormap": "gray",
        "metadata": metadata,
    }
    return [(stack, kwargs, "image")]
