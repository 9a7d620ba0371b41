"""Planes of an image stack: leading T and/or Z axes before ``(Y, X)`` or ``(Y, X, 3|4)``.

The one rule for channel and singleton axes, used by the API, the CLI and the GUI
(``canonical_axes`` and ``as_plane``): on an array with at least 3 dimensions, a trailing axis
of length 1 is a lone channel and is dropped, one of length 2 is gray + alpha (PNG "LA") and
keeps its gray channel, one of length 3 or 4 is colour (RGB/RGBA) and is kept. After that, a
trailing axis of length 3 or 4 means a stack of RGB(A) planes; everything else has 2D planes
over its last two axes. Leading axes of length 1 are kept in stacks (the CLI and the store
name such a plane ``(0,)``) and dropped where one plane is expected (``as_plane``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from napari_devosam.utils.text import count

PlaneIndex = tuple[int, ...]
"""A plane of a stack: its indices along the leading (T and/or Z) axes; ``()`` for 2D."""


def canonical_axes(image):
    """``image`` with a trailing lone-channel (length 1) or gray + alpha (length 2) axis reduced
    to its gray channel; anything else unchanged. Slicing only, so lazy arrays stay lazy."""
    if len(image.shape) >= 3 and image.shape[-1] in (1, 2):
        return image[..., 0]
    return image


def as_plane(image) -> np.ndarray:
    """One plane, ``(H, W)`` or ``(H, W, 3|4)``, from ``image`` after ``canonical_axes`` and
    without leading axes of length 1 (``(1, H, W)`` is one plane).

    Raises ``ValueError`` when ``image`` holds several planes or fewer than 2 dimensions.
    """
    image = canonical_axes(np.asarray(image) if not hasattr(image, "shape") else image)
    lead = leading_shape(image)
    if any(n != 1 for n in lead):
        raise ValueError(
            f"expected one plane, got {plane_count(image)} planes (shape {tuple(image.shape)}): "
            "pick one plane, e.g. image[0]"
        )
    return np.asarray(image[(0,) * len(lead)] if lead else image)


def plane_ndim(stack: np.ndarray) -> int:
    """2 for grayscale planes, 3 for RGB(A) planes ``(Y, X, 3|4)``."""
    stack = np.asarray(stack) if not hasattr(stack, "shape") else stack
    if len(stack.shape) < 2:
        raise ValueError(f"an image needs at least 2 dimensions (Y, X), got shape {stack.shape}")
    return 3 if len(stack.shape) >= 3 and stack.shape[-1] in (3, 4) else 2


def leading_shape(stack: np.ndarray) -> tuple[int, ...]:
    """The shape of the axes before the planes (``()`` for a single plane)."""
    return tuple(stack.shape[: len(stack.shape) - plane_ndim(stack)])


def plane_count(stack: np.ndarray) -> int:
    return int(np.prod(leading_shape(stack), dtype=np.int64))


def plane_indices(stack: np.ndarray) -> list[tuple[int, ...]]:
    """Indices into the leading axes of every plane, in C order (``[()]`` for one plane)."""
    return list(itertools.product(*(range(n) for n in leading_shape(stack))))


def iter_planes(stack: np.ndarray) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """Yield ``(index, plane)`` for every plane; works with lazy arrays (dask, zarr)."""
    for index in plane_indices(stack):
        yield index, np.asarray(stack[index])


def first_plane(data):
    """The plane the annotator shows first: ``(Y, X)`` (or ``(Y, X, C)``) at index 0 of every
    leading T/Z axis (``iter_planes`` order). Raises ``ValueError`` for an image without a
    plane."""
    for _, plane in iter_planes(data):
        return plane
    raise ValueError("the image has no plane")


def parse_plane_index(text: str | int | tuple, stack: np.ndarray) -> tuple[int, ...]:
    """A plane's index from user input: ``"7"`` (flat, C order) or ``"2:5"`` / ``"2,5"`` (one
    number per leading axis, e.g. T then Z).

    Negative numbers count from the end. Raises ``ValueError`` for malformed or out-of-range
    input.
    """
    lead = leading_shape(stack)
    if isinstance(text, int):
        parts = [text]
    elif isinstance(text, tuple):
        parts = list(text)
    else:
        try:
            cleaned = str(text).replace(" ", "").replace(",", ":")
            parts = [int(p) for p in cleaned.split(":") if p != ""]
        except ValueError:
            raise ValueError(f"bad plane index {text!r}: give integers like 3 or 1:3") from None
        if not parts:
            raise ValueError(f"bad plane index {text!r}: give integers like 3 or 1:3")
    total = plane_count(stack)
    if len(parts) == 1 and len(lead) != 1:
        flat = parts[0]
        if not -total <= flat < total:
            raise ValueError(f"plane {flat} does not exist: the image has {count(total, 'plane')}")
        return tuple(int(i) for i in np.unravel_index(flat % total, lead)) if lead else ()
    if len(parts) != len(lead):
        raise ValueError(
            f"plane index {text!r} has {count(len(parts), 'number')} but the image has "
            f"{len(lead)} axes before its planes (shape {tuple(stack.shape)})"
        )
    index = []
    for i, n in zip(parts, lead, strict=True):
        if not -n <= i < n:
            raise ValueError(f"plane index {text!r} is outside the axes {lead}")
        index.append(i % n)
    return tuple(index)
