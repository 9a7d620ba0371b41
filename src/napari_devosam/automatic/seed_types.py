"""The seed types of automatic segmentation (``Seeds``, ``PlaneAnalysis``) and two small
helpers the seed finders share; split from ``automatic.seeds`` so that ``membrane_seeds`` and
``seeds`` both build on them without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage


@dataclass
class Seeds:
    """Prompts for one plane: ``points`` ``(N, 2)`` (row, col) float64, ``boxes`` ``(N, 4)``
    (row0, col0, row1, col1) float64 (NaN rows: no box), ``source`` one name per seed.
    ``diameter``: the cell (membrane) or nucleus diameter in pixels the stain seeds were
    found with, ``diameter_source`` ``"given"`` or ``"estimated"`` (None for other seeds)."""

    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    source: list[str] = field(default_factory=list)
    diameter: float | None = None
    diameter_source: str | None = None

    def __len__(self) -> int:
        return len(self.points)

    def __add__(self, other: Seeds) -> Seeds:
        """Both seed sets; the diameter is the first one's (else the second's)."""
        first = self if self.diameter is not None else other
        return Seeds(np.concatenate([self.points, other.points]),
                     np.concatenate([self.boxes, other.boxes]), self.source + other.source,
                     first.diameter, first.diameter_source)


@dataclass
class PlaneAnalysis:
    """What ``analyse_plane`` found: the smoothed plane ``(H, W)`` float32, the thresholds,
    the embryo mask ``(H, W)`` bool (the whole plane when only separate bright objects were
    found), the stain used (a ``stain.StainDecision``, a str) and a message when there is no
    embryo. ``region`` ``(H, W)`` bool: where the stain and the cell size are judged (the
    embryo less its rim, or the bright objects grown by 3 px). ``quantum``: the plane's
    intensity step (1 for integer data, 0 for float). ``blank``: the plane holds no image at
    all (all NaN, constant, or too few grey levels), as opposed to an image without an
    embryo. ``ramp``: the uneven background taken off the plane before it was analysed
    (``flatfield.background_ramp``, ``(H, W)`` float32 in the plane's units), or None.
    ``marks``: ``(H, W)`` bool, a scale bar or text drawn into the pixels, painted over before
    the analysis (``burned_in``), or None."""

    smooth: np.ndarray | None
    t_low: float = 0.0
    t_high: float = 0.0
    embryo: np.ndarray | None = None
    stain: str | None = None
    message: str | None = None
    region: np.ndarray | None = None
    sparse: bool = False
    quantum: float = 0.0  # the plane's intensity step: 1 for integer data, 0 for float
    blank: bool = False  # no image at all (NaN, constant, a few grey levels): an acquisition gap
    ramp: np.ndarray | None = None
    marks: np.ndarray | None = None

    @property
    def prepared(self) -> tuple[str, ...]:
        """What was done to the plane before it was read, one phrase each (``report``)."""
        done = []
        if self.ramp is not None:
            done.append("background ramp taken off")
        if self.marks is not None:
            done.append(f"marks drawn into the image (a scale bar, text: "
                        f"{int(self.marks.sum())} px) left out")
        return tuple(done)

    @property
    def stain_note(self) -> str | None:
        """One line on which stain was used and why (``stain.StainDecision.note``)."""
        return getattr(self.stain, "note", None if self.stain is None else
                       f"stain: {self.stain}")

    @property
    def found(self) -> bool:
        return self.message is None


def _largest_region(mask: np.ndarray) -> np.ndarray:
    lab, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def _box_rows(boxes: np.ndarray, shape) -> np.ndarray:
    h, w = shape
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, h - 1)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, w - 1)
    return boxes
