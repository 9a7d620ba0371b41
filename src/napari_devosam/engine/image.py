"""Grayscale microscopy -> SAM's RGB input.

SAM was trained on 8-bit RGB photographs. Microscopy planes are grayscale of any dtype
(often uint16), with a few hot pixels and sometimes NaN/Inf from processing. ``to_rgb``
stretches the plane between robust percentiles of its finite values and repeats it on three
channels. Rules, by input:

- ``(H, W)`` or ``(H, W, 1)``, any real dtype (bool, int, uint, float): percentile stretch
  ``low..high`` of the finite values to 0..255 (min..max where the two percentiles coincide);
  NaN and -Inf map to 0, +Inf to 255. A constant or all-NaN plane maps to 0 everywhere.
- ``(H, W, 3)`` uint8: returned unchanged (so ``to_rgb`` is idempotent on its own output).
- ``(H, W, 4)`` uint8 (RGBA, as PNG files often are): the alpha channel is dropped.
- ``(H, W, 3|4)`` of another dtype: alpha dropped, then one stretch shared by the channels.
- anything else (2 channels, more than 4, complex numbers, not 2D): ``ValueError``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from napari_devosam.engine.stacks import as_plane


@dataclass(frozen=True)
class Normalization:
    """How a plane becomes uint8: a stretch between two percentiles of its finite values."""

    low: float = 0.5
    high: float = 99.5
    method: str = "percentile"

    def __post_init__(self):
        if not 0 <= self.low < self.high <= 100:
            raise ValueError(f"need 0 <= low < high <= 100, got low={self.low}, high={self.high}")

    def key(self) -> str:
        """A short string that identifies this normalisation (part of cache signatures)."""
        return f"{self.method}-{self.low:g}-{self.high:g}-v1"

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_NORMALIZATION = Normalization()


def blank(pixels) -> bool:
    """True for a plane with no finite value or a single value (an acquisition gap, an empty
    frame): SAM has nothing to segment on it, whatever the prompt."""
    x = np.asarray(pixels)
    if x.dtype.kind == "f":
        x = x[np.isfinite(x)]
    return x.size == 0 or x.min() == x.max()


def is_rgb(plane: np.ndarray) -> bool:
    """True for ``(H, W, 3)`` or ``(H, W, 4)`` arrays: colour planes rather than grayscale."""
    return plane.ndim == 3 and plane.shape[-1] in (3, 4)


def intensity_range(plane: np.ndarray, normalization: Normalization = DEFAULT_NORMALIZATION):
    """The ``(low_value, high_value)`` that ``to_rgb`` maps to 0 and 255; NaN-free floats.

    When the two percentiles coincide but the plane is not constant (sparse bright objects on
    a flat background), the full range of the finite values is used instead. Returns
    ``(0.0, 0.0)`` when the plane has no finite value.
    """
    values = np.asarray(plane)
    if values.dtype == bool:
        values = values.astype(np.uint8)
    if np.issubdtype(values.dtype, np.floating):
        values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 0.0
    lo, hi = np.percentile(values, [normalization.low, normalization.high])
    if hi <= lo:  # e.g. a few bright cells on a flat background: keep them visible
        lo, hi = values.min(), values.max()
    return float(lo), float(hi)


def _stretch(plane: np.ndarray, normalization: Normalization) -> np.ndarray:
    lo, hi = intensity_range(plane, normalization)
    data = plane.astype(np.float32) if plane.dtype != np.float64 else plane
    if hi <= lo:
        out = np.zeros(plane.shape, dtype=np.uint8)
        if np.issubdtype(plane.dtype, np.floating):
            out[np.isposinf(plane)] = 255
        return out
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = (data - lo) * (255.0 / (hi - lo))
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def encoded_gray(rgb: np.ndarray) -> np.ndarray | None:
    """The grayscale plane an ``(H, W, 3)`` image carries, or None for a true colour image.

    Microscopes and movie exports often store one stain as RGB: three equal channels (gray),
    or the signal in one channel (e.g. a green nuclear marker, the others near black). Such a
    plane is returned as ``(H, W)`` float32 (the channels' mean, or the signal channel) so it
    gets the same percentile stretch as any grayscale plane; passed through as colour, a dim
    one-channel frame reaches SAM with almost no contrast. Judged on a subsample of pixels:
    channels within 2 % of the image's range of each other are gray; a channel whose standard
    deviation is at least 5x every other's carries the signal.
    """
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 65536)))
    sample = rgb[::step, ::step].reshape(-1, 3).astype(np.float32)
    finite = np.isfinite(sample).all(axis=1)
    sample = sample[finite]
    if sample.size == 0:
        return None
    span = float(sample.max() - sample.min())
    if span == 0:
        return rgb[..., 0].astype(np.float32)
    spread = np.abs(sample - sample.mean(axis=1, keepdims=True)).mean()
    if spread <= 0.02 * span:
        return rgb.astype(np.float32).mean(axis=-1)
    stds = sample.std(axis=0)
    order = np.argsort(stds)[::-1]
    if stds[order[0]] > 0 and stds[order[1]] * 5 <= stds[order[0]]:
        return rgb[..., int(order[0])].astype(np.float32)
    return None


def to_rgb(image, normalization: Normalization | None = None) -> np.ndarray:
    """Convert one plane to SAM's input: ``(H, W, 3)`` uint8, C-contiguous.

    Arguments:
      image: ``(H, W)`` grayscale of any real dtype, or ``(H, W, 3|4)`` colour; channel and
        singleton axes follow ``stacks.as_plane`` (``(H, W, 1)``, gray + alpha ``(H, W, 2)``
        and ``(1, H, W)`` are one grayscale plane).
      normalization: the percentile stretch (default 0.5..99.5) for grayscale input, for
        grayscale carried as RGB (``encoded_gray``) and for non-uint8 colour; uint8 colour
        images pass through.

    Raises ``ValueError`` for non-numeric or complex data, empty planes and several planes.
    """
    normalization = normalization or DEFAULT_NORMALIZATION
    plane = np.asarray(image)
    if np.iscomplexobj(plane) or not (
        np.issubdtype(plane.dtype, np.number) or plane.dtype == bool
    ):
        raise ValueError(f"cannot convert an image of dtype {plane.dtype} to RGB")
    plane = as_plane(plane)
    if plane.ndim == 2:
        if min(plane.shape) == 0:
            raise ValueError(f"empty image of shape {plane.shape}")
        gray = _stretch(plane, normalization)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=-1))
    if plane.ndim == 3 and plane.shape[-1] in (3, 4):
        rgb = plane[..., :3]
        gray = encoded_gray(rgb)
        if gray is not None:  # grayscale in RGB clothes: stretched like any grayscale plane
            return to_rgb(gray, normalization)
        if rgb.dtype == np.uint8:
            return np.ascontiguousarray(rgb)
        return np.ascontiguousarray(_stretch(rgb, normalization))
    if plane.ndim == 3:
        raise ValueError(
            f"image with {plane.shape[-1]} channels (shape {plane.shape}): give a single "
            "channel (H, W) or an RGB(A) image (H, W, 3|4)"
        )
    raise ValueError(f"expected a 2D plane (H, W) or RGB (H, W, 3), got shape {plane.shape}")


def plane_rgb(plane, normalization: Normalization | None = None) -> np.ndarray:
    """SAM's input for a whole plane: ``to_rgb`` of it with the constant fill of a padded,
    registered or rotated plane given the value of the data at its edge
    (``engine.fill.without_fill``): otherwise the fill squeezes the data into a few grey
    levels of the stretch. Automatic segmentation's views crop the corrected plane
    (``zoom.embed_views``); a single view (``zoom.embed_view``, a click's) is a plane of its
    own here, checked on its crop: the whole plane's check costs ~12 ms on a DevoLearn
    frame. Same arguments and result as ``to_rgb``."""
    from napari_devosam.engine.fill import without_fill

    data = np.asarray(plane)
    return to_rgb(without_fill(data) if data.ndim == 2 else data, normalization)
