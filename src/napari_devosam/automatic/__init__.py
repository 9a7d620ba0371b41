"""Automatic segmentation: every cell of a plane or stack at once, for the user to correct.

``segment_all`` (one plane) and ``iter_segment_stack`` (a generator over planes) in
``core.py``; seeds from the stain in ``seeds.py``; SAM's automatic mask generator, made fast,
in ``grid.py``; post-processing in ``postprocess.py``; a scikit-image seeded watershed
baseline in ``baseline.py``. Documented in docs/automatic.md. Importing this package is
cheap: torch and segment_anything load inside the functions.
"""

from napari_devosam.automatic.core import MODES, AutoResult, iter_segment_stack, segment_all
from napari_devosam.automatic.grid import GridParams
from napari_devosam.automatic.seeds import STAINS

__all__ = ["MODES", "STAINS", "AutoResult", "GridParams", "iter_segment_stack", "segment_all"]
