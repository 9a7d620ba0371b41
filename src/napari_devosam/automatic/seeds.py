"""Seeds for automatic segmentation from the stain (from a neighbouring plane's labels:
``neighbour_seeds``).

Everything here is classical image analysis (numpy, scipy, scikit-image), no SAM. Points are
napari ``(row, col)`` pixel coordinates; boxes ``(row0, col0, row1, col1)`` (inclusive pixel
extents, as ``Predictor.predict`` takes them).

How the plane is read (``analyse_plane``): NaN becomes the median of the finite values, +Inf
and -Inf the largest and smallest (as ``engine.image.to_rgb`` shows them to SAM),
the constant fill of a padded or rotated plane takes the value of the data at its edge
(``fill.without_fill``), hot pixels go (3x3 median), the plane is smoothed (Gaussian,
sigma 1 px) and split into three intensity classes with
``skimage.filters.threshold_multiotsu`` on a log scale: background < ``t_low`` <= embryo
(cytoplasm) < ``t_high`` <= bright stain (membranes or nuclei).

- **No embryo**: the plane has no finite value, is constant, or the contrast between the
  embryo class and the background, ``(median(fg) - median(bg)) / noise``, is below
  ``MIN_CONTRAST`` (noise: 1.4826 * MAD of the plane minus its smoothed self; pure noise
  gives < 1, the phantoms > 10), or the largest
  foreground region (holes filled) is smaller than ``MIN_EMBRYO_FRACTION`` of the plane.
  Otherwise, or when the largest region holds under half the foreground (separate nuclei
  without visible cytoplasm), the **sparse path**: the plane smoothed at sigma 2, regions
  (>= ``min_area`` px) above both its Otsu threshold and background + ``SIGNAL_SIGMAS``
  (6) x noise are the signal; none of those: no embryo. A lone nucleus is found this way.
  The embryo is then the whole plane, ``t_high`` background + 6 x noise.
- **Nuclear embryo**: when the stain is nuclei, the embryo also takes every other foreground
  part holding bright stain (``with_bright_parts``): the cytoplasm between nuclei can be too
  dim to join them into one region.
- **Stain rule** (``stain="auto"``): ``stain.decide_stain`` (lines or blobs, by a Hessian
  ridge score at the bright structures' own width); the stain is a ``StainDecision`` (a str
  carrying its ``note``).
- **Colour planes**: the channel with the highest (99.9th percentile - median) / noise.
- **Membrane seeds**: the membranes are found by their ridge shape, not their brightness
  (``stain.membrane_map``: Hessian ridge strength at the membranes' own width, hysteresis
  threshold); the interiors are the embryo less the membranes. One seed per dome of their
  Euclidean distance transform (smoothed, sigma 1 px) that stands at least ``DOME_DEPTH``
  (0.3) times the cell radius above its saddle to a higher one (``skimage.morphology.
  h_maxima``) and is at least a third of that radius high: the radius is half the given
  ``diameter``, else ``scale.interior_radius`` (area-weighted median interior radius).
  A depth, not a distance between maxima, decides: a notch or a speck inside one cell
  leaves a shallow saddle (one seed), a membrane gap between two cells a deep one (two
  seeds); interiors under ``min_area`` px give no seed. The box of a seed is the extent of
  its basin in a seeded watershed inside the embryo that floods the
  interiors down their distance transform, then the membranes by ridge strength.
- **Nuclei seeds**: ``skimage.feature.blob_log`` at sigma 0.6-1.5 x ``diameter / (2
  sqrt 2)`` (given, else ``scale.blob_scale``; large nuclei on a coarser grid, on which
  the smallest sigma stays >= ``COARSE_SIGMA_PX``) on the plane
  scaled to 0..1 between ``t_low`` and the 99.5th percentile; blobs whose centre is not
  in the bright class are dropped; the box is the centre +- 1.3 * sqrt(2) * sigma, grown
  to the bright part holding the centre when that part is one nucleus
  (``_fit_single_nuclei``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_devosam.automatic import flatfield
from napari_devosam.automatic.burned_in import burned_in, painted_over
from napari_devosam.automatic.median import median3x3
from napari_devosam.automatic.seed_types import (  # noqa: F401 - re-exported
    PlaneAnalysis,
    Seeds,
    _box_rows,
    _largest_region,
)

STAINS = ("membrane", "nuclei", "auto")
MIN_CONTRAST = 5.0
MIN_EMBRYO_FRACTION = 0.005
SIGNAL_SIGMAS = 6.0
MIN_PARTS = 3  # bright parts inside an embryo for the separate-objects rule to judge them
ONE_NUCLEUS_EXTENT = 2.0  # diameters: a bright part at most this wide can be one nucleus
ONE_NUCLEUS_AREA = 1.5  # typical nuclear areas: ... and at most this large
COARSE_SIGMA_PX = 2.5  # blob_log's smallest sigma on a coarser grid stays at least this
# (5 px: cells3d automatic F1 0.729 -> 0.769, but CHO 0.844 -> 0.831, HeLa 0.885 -> 0.880 and
# DevoLearn nuclear tracking, frames 30-36, 42 -> 36 tracks over all 7 frames: not kept)



def _clean(plane: np.ndarray) -> np.ndarray | None:
    data = np.asarray(plane, dtype=np.float32)
    if data.ndim == 3:  # colour: the channel that shows the most (alpha ignored)
        data = data[..., int(np.argmax([_channel_snr(data[..., k])
                                        for k in range(min(3, data.shape[-1]))]))]
    finite = np.isfinite(data)
    if not finite.any():
        return None
    if not finite.all():  # +-Inf: the brightest / darkest value, as to_rgb shows them to
        # SAM (a new-user trial's nuclei set to +Inf read as background); NaN: the median
        vals = data[finite]
        data = np.where(np.isposinf(data), vals.max(), np.where(np.isneginf(data), vals.min(),
                                                               data))
        data = np.where(np.isnan(data), np.median(vals), data)
    from napari_devosam.engine.fill import without_fill

    return without_fill(data)


def _channel_snr(channel: np.ndarray) -> float:
    """How much one colour channel shows: (99.9th percentile - median) of the channel
    smoothed (sigma 2) over the noise (1.4826 x MAD of the channel minus that)."""
    finite = np.where(np.isfinite(channel), channel, 0)
    smooth = ndimage.gaussian_filter(finite, 2.0)
    residual = finite - smooth
    noise = 1.4826 * float(np.median(np.abs(residual - np.median(residual)))) + 1e-6
    return (float(np.percentile(smooth, 99.9)) - float(np.median(smooth))) / noise


def decide_stain(smooth: np.ndarray, region: np.ndarray, *_unused, dark_lines: bool = True):
    """The stain of an analysed plane (``stain.decide_stain``: a ``StainDecision``, a str
    ``"membrane"``/``"nuclei"`` carrying its ``note``)."""
    from napari_devosam.automatic.stain import decide_stain as decide

    return decide(smooth, region, dark_lines)


def _thresholds(smooth: np.ndarray, classes: int = 3) -> tuple[float | None, ...]:
    """Three-class (or ``classes``) Otsu thresholds, found on a log scale (bright stain
    spans a decade more than the dim cytoplasm) and returned in the plane's units."""
    from skimage.filters import threshold_multiotsu

    lo, hi = (float(v) for v in np.percentile(smooth, [0.5, 99.5]))
    if hi <= lo:
        lo, hi = float(smooth.min()), float(smooth.max())
    scale = (hi - lo) / 100.0
    logs = np.log1p(np.maximum(smooth - lo, 0) / scale)
    try:
        t = np.atleast_1d(threshold_multiotsu(logs, classes=classes))
    except ValueError:  # too few distinct values for three classes
        return (None,) * (classes - 1)
    return tuple(lo + scale * float(np.expm1(v)) for v in t)


def _robust(values: np.ndarray) -> tuple[float, float]:
    """(median, 1.4826 x MAD) of ``values``."""
    med = float(np.median(values))
    return med, 1.4826 * float(np.median(np.abs(values - med)))


def background(smooth: np.ndarray, split: float) -> tuple[float, float]:
    """``(level, noise)`` of the background: the median and robust spread (1.4826 x MAD, at
    least half the standard deviation: a background of one value, as in 8-bit movies
    clipped at 0, has MAD 0) of the pixels of ``smooth`` under ``split`` (all of them when
    there is none)."""
    low = smooth[smooth < split]
    if low.size == 0:
        low = smooth.ravel()
    floor = 1e-6 * (float(smooth.max()) - float(smooth.min())) + 1e-12
    level, noise = _robust(low)
    return level, max(noise, 0.5 * float(low.std()), floor)


def _sparse_signal(data: np.ndarray, min_area: int):
    """The sparse path of ``analyse_plane``: ``(smooth, background, noise, signal)``:
    ``smooth`` the plane smoothed at sigma 2; ``background``/``noise`` those of the pixels
    below the plane's Otsu threshold (``background``; they set the nuclei seeds' gate);
    ``signal`` ``(H, W)`` bool: the regions of >= ``min_area`` px above both that threshold
    and the whole plane's median + ``SIGNAL_SIGMAS`` x its spread (None when there is
    none)."""
    from skimage.filters import threshold_otsu

    smooth = ndimage.gaussian_filter(median3x3(data), 2.0)
    split = float(threshold_otsu(smooth))
    bg, noise = background(smooth, split)
    # is anything there: judged against the whole plane's spread (mostly background here),
    # which the lower half alone underestimates (noise clipped at 0 would pass)
    all_bg, all_noise = _robust(smooth)
    all_noise = max(all_noise, noise)
    fg = ndimage.binary_opening(smooth > max(split, all_bg + SIGNAL_SIGMAS * all_noise))
    lab, n = ndimage.label(fg)
    sizes = np.bincount(lab.ravel())[1:] if n else np.zeros(0, dtype=np.int64)
    big = np.flatnonzero(sizes >= max(min_area, 4)) + 1
    return smooth, bg, noise, (np.isin(lab, big) if big.size else None)


def _no_embryo(contrast: float, embryo: np.ndarray) -> str:
    """Why a plane has no embryo, naming the test that failed."""
    if contrast < MIN_CONTRAST:
        why = f"contrast {contrast:.1f}, under {MIN_CONTRAST:g}"
    else:
        why = (f"contrast {contrast:.1f}, but the foreground is "
               f"{100 * embryo.sum() / max(embryo.size, 1):.0f} % of the plane, in pieces")
    return (f"no embryo detected ({why}; and nothing {SIGNAL_SIGMAS:g} x noise above the "
            "background)")


def _foreground(smooth: np.ndarray, t_low: float) -> np.ndarray:
    """``smooth >= t_low``, opened, holes filled: the parts the embryo is chosen among."""
    return ndimage.binary_fill_holes(ndimage.binary_opening(smooth >= t_low, iterations=1))


def with_bright_parts(embryo: np.ndarray, smooth: np.ndarray, t_low: float, t_high: float,
                      min_area: int, foreground: np.ndarray | None = None) -> np.ndarray:
    """``embryo`` ``(H, W)`` bool plus every other foreground part (``smooth >= t_low``,
    opened, holes filled; ``foreground`` when the caller has it) that holds at least
    ``min_area`` px of bright stain (``smooth >= t_high``, opened). On a nuclear stain the
    cytoplasm can be too dim to join all nuclei into one region: DevoLearn nuclear frame 10
    left 7 of 24 nuclei, the brightest among them, outside its largest region, and their
    seeds were dropped."""
    fg = _foreground(smooth, t_low) if foreground is None else foreground
    lab, n = ndimage.label(fg)
    if n <= 1:
        return embryo
    bright = ndimage.binary_opening(smooth >= t_high)
    counts = np.bincount(lab[bright], minlength=n + 1)
    counts[0] = 0
    keep = np.flatnonzero(counts >= max(min_area, 1))
    return embryo | np.isin(lab, keep) if keep.size else embryo


def analyse_plane(plane, stain: str = "auto", min_area: int = 30) -> PlaneAnalysis:
    """Smooth, threshold and find the embryo of one ``(H, W)`` plane (any real dtype; RGB:
    the channel that shows the most). Never raises for content: an empty, NaN or constant
    plane gives an analysis with ``message`` set. ``stain``: "auto" (decided from the
    plane), "membrane", "nuclei", or a ``stain.StainDecision`` made elsewhere (a stack's:
    ``automatic.stack_stain``), kept with its note. Raises ``ValueError`` for an unknown
    ``stain``."""
    from napari_devosam.automatic.stain import StainDecision, given

    if stain not in STAINS:
        raise ValueError(f"unknown stain {stain!r}: choose one of {', '.join(STAINS)}")
    data = _clean(plane)
    if data is None:
        return PlaneAnalysis(None, message="no finite value (all NaN/Inf): nothing to segment",
                             blank=True)
    if float(data.max()) <= float(data.min()):
        return PlaneAnalysis(None, message="every pixel has the same value: no embryo to segment",
                             blank=True)
    marks = burned_in(data)  # a scale bar or text would read as structure
    data = data if marks is None else painted_over(data, marks)
    ramp = flatfield.background_ramp(data)  # it would skew the global thresholds
    data = data if ramp is None else data - ramp
    smooth = ndimage.gaussian_filter(median3x3(data), 1.0)  # hot pixels out
    t_low, t_high = _thresholds(smooth)
    if t_low is None:
        return PlaneAnalysis(smooth, message="too few grey levels: no embryo detected",
                             blank=True)
    bg, fg = smooth[smooth < t_low], smooth[smooth >= t_low]
    residual = data - smooth
    sigma = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    sigma = max(sigma, 1e-3 * (float(smooth.max()) - float(smooth.min())))
    contrast = (float(np.median(fg)) - float(np.median(bg))) / sigma \
        if bg.size and fg.size else 0.0
    filled = _foreground(smooth, t_low)
    embryo = _largest_region(filled)
    region = ndimage.binary_erosion(embryo, iterations=3)
    foreground = int(np.count_nonzero(smooth >= t_low))
    sparse = False
    if (contrast < MIN_CONTRAST or embryo.sum() < MIN_EMBRYO_FRACTION * embryo.size
            or np.count_nonzero(embryo & (smooth >= t_low)) < 0.5 * foreground):
        # no one embryo-sized foreground: bright objects on a dark plane (a lone nucleus,
        # nuclei without visible cytoplasm, low signal-to-noise) still count
        smooth2, level, noise, signal = _sparse_signal(data, min_area)
        if signal is None:
            return PlaneAnalysis(smooth, t_low, t_high,
                                 message=_no_embryo(contrast, embryo))
        smooth, t_low, t_high = smooth2, level + 2 * noise, level + SIGNAL_SIGMAS * noise
        embryo = np.ones(smooth.shape, dtype=bool)  # its extent is unknown: the plane
        sparse = True
        region = ndimage.binary_dilation(ndimage.binary_fill_holes(signal), iterations=3)
    if not isinstance(stain, StainDecision):  # a stack's decision keeps its own note
        reading = decide_stain(smooth, region if region.any() else embryo, t_high, min_area,
                               dark_lines=not sparse)  # separate objects: no gaps between
        from napari_devosam.automatic.stain import (
            SOLID_IN_EMBRYO,
            bright_parts,
            separate_objects_rule,
        )

        if sparse:
            reading = separate_objects_rule(reading, signal)
        elif reading == "membrane":  # small separate nuclei can read as lines too (CTC HeLa
            parts, n = bright_parts(smooth, t_high, embryo, min_area)  # at half its size)
            if n >= MIN_PARTS:  # one bright blob is no "separate objects"
                reading = separate_objects_rule(reading, parts, SOLID_IN_EMBRYO)
        stain = reading if stain == "auto" else given(stain, reading)
    if stain == "nuclei" and not sparse:
        embryo = with_bright_parts(embryo, smooth, t_low, t_high, min_area, filled)
    quantum = 1.0 if np.issubdtype(np.asarray(plane).dtype, np.integer) else 0.0
    return PlaneAnalysis(smooth, t_low, t_high, embryo, stain,
                         region=region if region.any() else embryo, sparse=sparse,
                         quantum=quantum, ramp=ramp, marks=marks)


def nuclei_seeds(a: PlaneAnalysis, min_area: int = 30, diameter: float | None = None
                 ) -> Seeds:
    """Seeds of a nuclei-stained plane (see the module docstring); ``diameter``: the
    nuclei's diameter in pixels (None: estimated with ``scale.blob_scale``)."""
    from skimage.feature import blob_log

    from napari_devosam.automatic.scale import blob_scale

    source = "given"
    if diameter is None:
        diameter, source = blob_scale(a.smooth, a.region if a.region is not None
                                      else a.embryo), "estimated"
    if diameter is None:
        return Seeds()
    top = float(np.percentile(a.smooth[a.embryo], 99.5))
    scaled = np.clip((a.smooth - a.t_low) / max(top - a.t_low, 1e-6), 0, 1)
    sigma = float(diameter) / (2 * np.sqrt(2))
    f = max(1, int(0.6 * sigma // COARSE_SIGMA_PX))  # large nuclei: a coarser grid
    if f > 1:
        h, w = (scaled.shape[0] // f) * f, (scaled.shape[1] // f) * f
        scaled = scaled[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    min_sigma = max(1.0, 0.6 * sigma / f)
    blobs = blob_log(scaled, min_sigma=min_sigma,
                     max_sigma=max(min_sigma + 0.5, 1.5 * sigma / f), num_sigma=5,
                     threshold=0.05, overlap=0.3, exclude_border=False)
    blobs[:, :2] = blobs[:, :2] * f + (f - 1) / 2
    blobs[:, 2] *= f
    if len(blobs) == 0:
        return Seeds(diameter=float(diameter), diameter_source=source)
    rc = blobs[:, :2].astype(np.int64)
    keep = (a.smooth[rc[:, 0], rc[:, 1]] >= a.t_high) & a.embryo[rc[:, 0], rc[:, 1]]
    blobs = blobs[keep]
    r = 1.3 * np.sqrt(2) * blobs[:, 2]
    boxes = np.stack([blobs[:, 0] - r, blobs[:, 1] - r, blobs[:, 0] + r, blobs[:, 1] + r], 1)
    boxes = _fit_single_nuclei(boxes, blobs[:, :2], a, float(diameter))
    return Seeds(blobs[:, :2].astype(np.float64), _box_rows(boxes, a.smooth.shape),
                 ["nuclei"] * len(blobs), diameter=float(diameter), diameter_source=source)


def _fit_single_nuclei(boxes: np.ndarray, centres: np.ndarray, a: PlaneAnalysis,
                       diameter: float) -> np.ndarray:
    """``boxes`` ``(n, 4)`` (row0, col0, row1, col1), each grown to cover the bright part
    (``smooth >= t_high``, holes filled) holding its seed's centre ``(n, 2)`` when that part
    is one nucleus: at most ``ONE_NUCLEUS_EXTENT`` diameters across and
    ``ONE_NUCLEUS_AREA`` typical areas (a disc ``diameter`` across). An elongated nucleus
    gives the LoG two small blobs at its ends, each a box over half of it, and SAM outlined
    the halves (cells3d, CTC CHO); a clump of touching nuclei is larger than one and keeps
    its blob boxes. Measured in one run against the blob boxes alone, automatic F1@0.5:
    cells3d 0.729 -> 0.788, DSB2018 0.833 -> 0.833, HeLa 0.885 -> 0.883, CHO 0.844 -> 0.831;
    without the area rule two touching DevoLearn nuclei (frame 5) became one object."""
    bright = ndimage.binary_fill_holes(a.smooth >= a.t_high)
    lab, _ = ndimage.label(bright)
    parts = ndimage.find_objects(lab)
    areas = np.bincount(lab.ravel())
    rc = np.round(centres).astype(np.int64)
    typical = np.pi * (0.5 * diameter) ** 2
    out = boxes.copy()
    for k, i in enumerate(lab[rc[:, 0], rc[:, 1]].tolist()):
        if i == 0:
            continue
        ys, xs = parts[i - 1]
        if (max(ys.stop - ys.start, xs.stop - xs.start) > ONE_NUCLEUS_EXTENT * diameter
                or areas[i] > ONE_NUCLEUS_AREA * typical):
            continue
        out[k] = [min(out[k, 0], ys.start - 2), min(out[k, 1], xs.start - 2),
                  max(out[k, 2], ys.stop + 1), max(out[k, 3], xs.stop + 1)]
    return out


def stain_seeds(a: PlaneAnalysis, min_area: int = 30, diameter: float | None = None
                ) -> Seeds:
    """The seeds of an analysed plane for its stain (none when no embryo was found);
    ``diameter``: the cells' (membrane) or nuclei's diameter in pixels, None to estimate
    it from the plane (``Seeds.diameter`` holds the one used). Raises ``ValueError`` for a
    ``diameter`` <= 0 or larger than the plane (``limits.check_diameter``)."""
    from napari_devosam.automatic.limits import check_diameter

    check_diameter(diameter, None if a.smooth is None else a.smooth.shape)
    if not a.found:
        return Seeds()
    from napari_devosam.automatic.membrane_seeds import membrane_seeds

    seed = membrane_seeds if a.stain == "membrane" else nuclei_seeds
    return seed(a, min_area, diameter)
