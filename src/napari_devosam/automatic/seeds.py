"""Seeds for automatic segmentation from the stain, and from a neighbouring plane's labels.

Everything here is classical image analysis (numpy, scipy, scikit-image), no SAM. Points are
napari ``(row, col)`` pixel coordinates; boxes ``(row0, col0, row1, col1)`` (inclusive pixel
extents, as ``Predictor.predict`` takes them).

How the plane is read (``analyse_plane``): NaN/Inf become the median of the finite values,
hot pixels go (3x3 median), the plane is smoothed (Gaussian, sigma 1 px) and split into three
intensity classes with ``skimage.filters.threshold_multiotsu`` on a log scale: background <
``t_low`` <= embryo (cytoplasm) < ``t_high`` <= bright stain (membranes or nuclei).

- **No embryo**: the plane has no finite value, is constant, or the contrast between the
  embryo class and the background, ``(median(fg) - median(bg)) / noise``, is below
  ``MIN_CONTRAST`` (noise: 1.4826 * MAD of the plane minus its smoothed self; pure noise
  gives < 1, the phantoms > 10), or the largest
  foreground region (holes filled) is smaller than ``MIN_EMBRYO_FRACTION`` of the plane.
- **Stain rule** (``stain="auto"``): membranes enclose dark interiors, nuclei are bright
  blobs inside one dark cytoplasm. Bright regions whose pixels lie on average at least
  ``NUCLEUS_DEPTH_PX`` (5) from the nearest dark pixel are blobs, not lines: nuclei
  (measured: phantom membranes 1.8-2.0 px, the real membrane image of the team's data 3.5
  px, real nuclei 6.7 px, phantom nuclei 3.2-11 px). Otherwise count the connected bright
  regions ``n_bright`` and the connected dark regions inside the embryo ``n_dark`` (both >=
  ``min_area`` pixels): ``n_dark > n_bright`` -> membrane, ``n_bright > n_dark`` -> nuclei;
  on a tie (one cell) that mean distance decides (< 2 px: thin membranes; else nuclei).
  Counts alone took the real nuclear image for membranes (9 dark regions between 7 nuclei).
- **Membrane seeds**: maxima (``skimage.feature.peak_local_max``, min distance 0.7 times the
  median interior radius) of the Euclidean distance transform of the dark interiors enclosed
  by bright membranes; maxima shallower than a third of that radius are dropped. The box of a
  seed is the extent of its basin in a seeded watershed of the smoothed plane inside the
  embryo (a membrane gap therefore still gives two boxes).
- **Nuclei seeds**: ``skimage.feature.blob_log`` on the plane scaled to 0..1 between
  ``t_low`` and the 99.5th percentile; blobs whose centre is not in the bright class are
  dropped; the box is the centre +- 1.3 * sqrt(2) * sigma.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from napari_devosam.automatic.median import median3x3

STAINS = ("membrane", "nuclei", "auto")
MIN_CONTRAST = 5.0
MIN_EMBRYO_FRACTION = 0.005


@dataclass
class Seeds:
    """Prompts for one plane: ``points`` ``(N, 2)`` (row, col) float64, ``boxes`` ``(N, 4)``
    (row0, col0, row1, col1) float64 (NaN rows: no box), ``source`` one name per seed."""

    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    source: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.points)

    def __add__(self, other: Seeds) -> Seeds:
        return Seeds(np.concatenate([self.points, other.points]),
                     np.concatenate([self.boxes, other.boxes]), self.source + other.source)


@dataclass
class PlaneAnalysis:
    """What ``analyse_plane`` found: the smoothed plane ``(H, W)`` float32, the thresholds,
    the embryo mask ``(H, W)`` bool, the stain used and a message when there is no embryo."""

    smooth: np.ndarray | None
    t_low: float = 0.0
    t_high: float = 0.0
    embryo: np.ndarray | None = None
    stain: str | None = None
    message: str | None = None

    @property
    def found(self) -> bool:
        return self.message is None


def _clean(plane: np.ndarray) -> np.ndarray | None:
    data = np.asarray(plane, dtype=np.float32)
    if data.ndim == 3:  # colour: the mean of the channels
        data = data[..., :3].mean(axis=-1)
    finite = np.isfinite(data)
    if not finite.any():
        return None
    if not finite.all():
        data = np.where(finite, data, np.median(data[finite]))
    return data


def _largest_region(mask: np.ndarray) -> np.ndarray:
    lab, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def _components(mask: np.ndarray, min_area: int) -> int:
    lab, n = ndimage.label(mask)
    if n == 0:
        return 0
    return int(np.sum(np.bincount(lab.ravel())[1:] >= min_area))


NUCLEUS_DEPTH_PX = 5.0  # mean depth of bright pixels above which they are blobs (module doc)


def decide_stain(smooth: np.ndarray, embryo: np.ndarray, t_high: float, min_area: int) -> str:
    """``"membrane"`` or ``"nuclei"`` by the rule in the module docstring."""
    bright = (smooth >= t_high) & embryo
    dark = embryo & ~bright
    depth = float(ndimage.distance_transform_edt(bright)[bright].mean()) if bright.any() else 0.0
    if depth >= NUCLEUS_DEPTH_PX:
        return "nuclei"
    n_bright, n_dark = _components(bright, min_area), _components(dark, min_area)
    if n_dark != n_bright:
        return "membrane" if n_dark > n_bright else "nuclei"
    if not bright.any():
        return "membrane"
    return "membrane" if depth < 2.0 else "nuclei"


def _thresholds(smooth: np.ndarray) -> tuple[float | None, float | None]:
    """Three-class Otsu thresholds, found on a log scale (bright stain spans a decade more
    than the dim cytoplasm) and returned in the plane's units."""
    from skimage.filters import threshold_multiotsu

    lo, hi = (float(v) for v in np.percentile(smooth, [0.5, 99.5]))
    if hi <= lo:
        lo, hi = float(smooth.min()), float(smooth.max())
    scale = (hi - lo) / 100.0
    logs = np.log1p(np.maximum(smooth - lo, 0) / scale)
    try:
        t = threshold_multiotsu(logs, classes=3)
    except ValueError:  # too few distinct values for three classes
        return None, None
    t_low, t_high = (lo + scale * float(np.expm1(v)) for v in t)
    return t_low, t_high


def analyse_plane(plane, stain: str = "auto", min_area: int = 30) -> PlaneAnalysis:
    """Smooth, threshold and find the embryo of one ``(H, W)`` plane (any real dtype; RGB is
    averaged). Never raises for content: an empty, NaN or constant plane gives an analysis
    with ``message`` set. Raises ``ValueError`` for an unknown ``stain``."""
    if stain not in STAINS:
        raise ValueError(f"unknown stain {stain!r}: choose one of {', '.join(STAINS)}")
    data = _clean(plane)
    if data is None:
        return PlaneAnalysis(None, message="no finite value (all NaN/Inf): nothing to segment")
    if float(data.max()) <= float(data.min()):
        return PlaneAnalysis(None, message="constant: no embryo to segment")
    smooth = ndimage.gaussian_filter(median3x3(data), 1.0)  # hot pixels out
    t_low, t_high = _thresholds(smooth)
    if t_low is None:
        return PlaneAnalysis(smooth, message="too few grey levels: no embryo detected")
    bg, fg = smooth[smooth < t_low], smooth[smooth >= t_low]
    residual = data - smooth
    sigma = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    sigma = max(sigma, 1e-3 * (float(smooth.max()) - float(smooth.min())))
    contrast = (float(np.median(fg)) - float(np.median(bg))) / sigma \
        if bg.size and fg.size else 0.0
    embryo = _largest_region(ndimage.binary_fill_holes(
        ndimage.binary_opening(smooth >= t_low, iterations=1)))
    if contrast < MIN_CONTRAST or embryo.sum() < MIN_EMBRYO_FRACTION * embryo.size:
        return PlaneAnalysis(smooth, t_low, t_high,
                             message=f"no embryo detected (contrast {contrast:.1f} < "
                                     f"{MIN_CONTRAST:g} or too small a foreground)")
    if stain == "auto":
        stain = decide_stain(smooth, embryo, t_high, min_area)
    return PlaneAnalysis(smooth, t_low, t_high, embryo, stain)


def _box_rows(boxes: np.ndarray, shape) -> np.ndarray:
    h, w = shape
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, h - 1)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, w - 1)
    return boxes


def membrane_seeds(a: PlaneAnalysis, min_area: int = 30) -> Seeds:
    """Seeds of a membrane-stained plane (see the module docstring)."""
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    bright = ndimage.binary_dilation(a.smooth >= a.t_high) & a.embryo
    interior = a.embryo & ~bright
    interior = ndimage.binary_opening(interior)
    dist = ndimage.distance_transform_edt(interior)
    lab, n = ndimage.label(interior)
    if n == 0:
        return Seeds()
    radii = ndimage.maximum(dist, lab, np.arange(1, n + 1))
    sizes = np.bincount(lab.ravel())[1:]
    big = radii[sizes >= min_area]
    r_typ = float(np.median(big)) if big.size else float(np.max(radii))
    peaks = peak_local_max(ndimage.gaussian_filter(dist, 1.0), labels=lab,
                           min_distance=max(2, int(0.7 * r_typ)),
                           threshold_abs=max(1.5, r_typ / 3), exclude_border=False)
    keep = sizes[lab[peaks[:, 0], peaks[:, 1]] - 1] >= min_area
    peaks = peaks[keep] if len(peaks) else peaks
    if len(peaks) == 0:
        return Seeds()
    markers = np.zeros(lab.shape, dtype=np.int32)
    markers[peaks[:, 0], peaks[:, 1]] = np.arange(1, len(peaks) + 1)
    basins = watershed(a.smooth, markers, mask=a.embryo)
    boxes = np.full((len(peaks), 4), np.nan)
    for i, sl in enumerate(ndimage.find_objects(basins, max_label=len(peaks))):
        if sl is not None:
            boxes[i] = (sl[0].start, sl[1].start, sl[0].stop - 1, sl[1].stop - 1)
    return Seeds(peaks.astype(np.float64), boxes, ["membrane"] * len(peaks))


def nuclei_seeds(a: PlaneAnalysis, min_area: int = 30) -> Seeds:
    """Seeds of a nuclei-stained plane (see the module docstring)."""
    from skimage.feature import blob_log

    top = float(np.percentile(a.smooth[a.embryo], 99.5))
    scaled = np.clip((a.smooth - a.t_low) / max(top - a.t_low, 1e-6), 0, 1)
    min_sigma = max(1.0, np.sqrt(min_area / np.pi) / np.sqrt(2))
    max_sigma = max(min_sigma + 1, min(a.smooth.shape) / 12)
    blobs = blob_log(scaled, min_sigma=min_sigma, max_sigma=max_sigma, num_sigma=8,
                     threshold=0.05, overlap=0.3, exclude_border=False)
    if len(blobs) == 0:
        return Seeds()
    rc = blobs[:, :2].astype(np.int64)
    keep = (a.smooth[rc[:, 0], rc[:, 1]] >= a.t_high) & a.embryo[rc[:, 0], rc[:, 1]]
    blobs = blobs[keep]
    r = 1.3 * np.sqrt(2) * blobs[:, 2]
    boxes = np.stack([blobs[:, 0] - r, blobs[:, 1] - r, blobs[:, 0] + r, blobs[:, 1] + r], 1)
    return Seeds(blobs[:, :2].astype(np.float64), _box_rows(boxes, a.smooth.shape),
                 ["nuclei"] * len(blobs))


def stain_seeds(a: PlaneAnalysis, min_area: int = 30) -> Seeds:
    """The seeds of an analysed plane for its stain (none when no embryo was found)."""
    if not a.found:
        return Seeds()
    return membrane_seeds(a, min_area) if a.stain == "membrane" else nuclei_seeds(a, min_area)


def seeds_from_labels(labels: np.ndarray, min_area: int = 30) -> Seeds:
    """Neighbour seeding: one seed per object of a neighbouring plane's ``labels`` ``(H, W)``
    (int): its most interior pixel (maximum of the distance transform) and its box."""
    labels = np.asarray(labels)
    points, boxes = [], []
    for obj, sl in enumerate(ndimage.find_objects(labels.astype(np.int64)), start=1):
        if sl is None:
            continue
        mask = np.pad(labels[sl] == obj, 1)
        if mask.sum() < min_area:
            continue
        dist = ndimage.distance_transform_edt(mask)
        r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
        points.append((sl[0].start + r - 1, sl[1].start + c - 1))
        boxes.append((sl[0].start, sl[1].start, sl[0].stop - 1, sl[1].stop - 1))
    return Seeds(np.asarray(points, dtype=np.float64).reshape(-1, 2),
                 np.asarray(boxes, dtype=np.float64).reshape(-1, 4), ["neighbour"] * len(points))


def merge_neighbour_seeds(own: Seeds, neighbour: Seeds) -> Seeds:
    """``own`` plus the ``neighbour`` seeds whose box holds none of ``own``'s points (where
    the stain found nothing, e.g. a faint cell): a divided cell keeps its own two seeds."""
    if len(own) == 0:
        return neighbour
    extra = []
    for i, box in enumerate(neighbour.boxes):
        p = own.points
        inside = ((p[:, 0] >= box[0]) & (p[:, 0] <= box[2])
                  & (p[:, 1] >= box[1]) & (p[:, 1] <= box[3]))
        if not inside.any():
            extra.append(i)
    return own + Seeds(neighbour.points[extra], neighbour.boxes[extra],
                       [neighbour.source[i] for i in extra])
