"""A plane's pedestal (its darkest value) taken off before Gaussian-derivative filters.

A camera offset, a background-subtracted float plane or a shifted 16-bit range adds a
constant to every pixel. Derivatives ignore a constant in theory, not in practice:
``scipy.ndimage.gaussian_laplace`` samples and truncates its kernel, which then does not sum
to zero (sigma 1 px: a constant 40000 answers -5.8), and ``skimage.feature.hessian_matrix``
pads the plane with 0, so its rim becomes a wall as high as the offset. The cell size
(``scale.blob_scale``), the stain's ridge scores (``stain``) and the second round's blobs
(``residual``) then read the offset as structure: a new-user trial's DSB2018 plane minus
40000 as float32 came out with a 7 px diameter and 174 objects instead of 22 px and 110.
With the floor taken off, every offset gives the same answer, and a plane whose darkest
value is 0 (most 8- and 16-bit planes) is unchanged.
"""

from __future__ import annotations

import numpy as np


def floor_free(image: np.ndarray) -> np.ndarray:
    """``image`` ``(H, W)`` real -> float64 ``image - min(image)`` (NaN-free input)."""
    data = np.asarray(image, dtype=np.float64)
    return data - float(data.min()) if data.size else data
