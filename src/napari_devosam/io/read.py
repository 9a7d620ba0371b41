"""Reading image files: the one reader of the package (CLI, GUI, series, batch).

TIFF (OME-TIFF included) goes through tifffile, PNG/JPEG (and whatever else scikit-image
understands) through scikit-image, CZI/ND2/LIF through ``bioio`` (optional:
``pip install 'napari-devosam[bioio]'``; without it they raise ``BioioMissingError`` naming
that extra). Pixels come back as stored (original dtype, leading T/Z axes kept) after the one
channel rule of ``engine.stacks.canonical_axes``.
"""

from __future__ import annotations

import logging
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from napari_devosam.engine.stacks import canonical_axes, first_plane
from napari_devosam.utils.paths import TIFF_SUFFIXES

PLAIN_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
BIOIO_SUFFIXES = (".czi", ".nd2", ".lif")
IMAGE_SUFFIXES = PLAIN_SUFFIXES + BIOIO_SUFFIXES
BIOIO_HINT = "pip install 'napari-devosam[bioio]'"
# pixels: a stack whose last axis is shorter (and not RGB/RGBA) has its channels or Z last
MIN_STACK_X = 16


class BioioMissingError(RuntimeError):
    """A microscopy file (CZI/ND2/LIF) needs the optional ``bioio`` readers."""


class FolderGivenError(ValueError):
    """A folder was given where one image file is read; ``path`` is the folder."""

    def __init__(self, path: Path):
        super().__init__(f"{path} is a folder, not an image file")
        self.path = path


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The pixel data of an image file, original dtype, shape as stored (e.g. ``(T, Z, Y, X)``)
    except for channel axes: a trailing lone channel or gray + alpha axis is reduced to the gray
    channel (``engine.stacks.canonical_axes``, the rule the API and the GUI follow too). A
    CZI/ND2/LIF file becomes ``(T, Z, Y, X)`` of its first channel, length-1 T/Z dropped.

    Raises ``FolderGivenError`` (a ``ValueError``) for a folder, ``FileNotFoundError`` for a
    missing file, ``BioioMissingError`` (a ``RuntimeError``) for a CZI/ND2/LIF file without
    bioio, and ``ValueError`` for a file that cannot be read as an image.
    """
    path = _existing_file(path)
    if path.suffix.lower() in BIOIO_SUFFIXES:
        data = _bioio_read(path, "TZYX")
        lead = [n for n in data.shape[:2] if n > 1]
        return checked_image(data.reshape(*lead, *data.shape[2:]), path)
    tiff = path.suffix.lower() in TIFF_SUFFIXES
    axes, imagej = None, False
    try:
        if tiff:
            data, axes, imagej = _read_tiff(path)
        else:
            from skimage import io as skio

            data = np.asarray(skio.imread(path))
    except Exception as exc:  # noqa: BLE001 - any reader failure means: not an image we can read
        what = ("it is not a readable TIFF file" if tiff
                else f"no image reader understands this {path.suffix or 'extension-less'} file")
        raise ValueError(f"cannot read {path} as an image: {what} (damaged, or another "
                         f"format; the reader said: {exc})") from exc
    data = _first_channel(data, axes if imagej else None, path)
    _say_if_two_channels(data, path)
    samples_last = None if axes is None else axes.endswith("S")
    return checked_image(canonical_axes(data), path, samples_last)


def _say_if_two_channels(data: np.ndarray, path: Path) -> None:
    """A ``UserWarning`` when a trailing axis of 2 (read as gray + alpha, the gray kept)
    holds a second channel of image data rather than an alpha mask (values other than its
    lowest and highest): that channel is dropped."""
    if data.ndim < 3 or data.shape[-1] != 2:
        return
    second = data[(0,) * (data.ndim - 3)][..., 1]  # the first plane's: enough to tell
    if np.unique(second).size > 2:
        warnings.warn(f"{path.name} has 2 channels per pixel and the second is not a plain "
                      "alpha mask: using the first; save the channel to segment as a file of "
                      "its own to use the other", UserWarning, stacklevel=3)


def _first_channel(data: np.ndarray, axes: str | None, path: Path) -> np.ndarray:
    """``data`` without its channel axis when the file names one (``axes``, an ImageJ
    hyperstack's, e.g. ``TZCYX``: a ``C`` of length > 1), keeping the first channel
    as the bioio formats do, with a ``UserWarning`` saying so. Without it, the channels were
    taken for Z planes (a two-channel time-lapse segmented as twice the planes, the dim
    channel among them)."""
    if not axes or len(axes) != data.ndim or "C" not in axes:
        return data
    axis = axes.index("C")
    n = data.shape[axis]
    if n > 1:
        warnings.warn(f"{path.name} has {n} channels (axes {axes}): using the first; save "
                      "the channel to segment as a file of its own to use another",
                      UserWarning, stacklevel=3)
    return np.take(data, 0, axis=axis)


def _read_tiff(path: Path) -> tuple[np.ndarray, str | None, bool]:
    """``(data, axes, imagej)`` of a TIFF, opened once: the first series' pixels (as
    ``tifffile.imread``), tifffile's axes for them (``TZCYX``, ``QYXS``: ``S`` last for RGB
    samples; None when it names none) and whether the file is an ImageJ hyperstack. Only
    ImageJ's channel axes are trusted: ImageJ writes one only when it holds channels, while
    tifffile names the first axis of an OME-TIFF written without axes ``C`` (a plain Z or T
    stack). Raises what tifffile raises for an unreadable file."""
    import tifffile

    with _tifffile_quiet(), tifffile.TiffFile(path) as tif:
        data = np.asarray(tif.asarray())
        axes = str(tif.series[0].axes) if tif.series else None
        return data, axes, bool(tif.is_imagej)


def read_first_plane(path: str | os.PathLike) -> np.ndarray:
    """The first plane of ``path`` (index 0 of every leading T/Z axis, as
    ``engine.stacks.first_plane(read_image(path))``), reading only that plane where the format
    allows: one TIFF page, one bioio plane. ``(Y, X)`` or ``(Y, X, C)``, original dtype.

    Raises what ``read_image`` raises.
    """
    path = _existing_file(path)
    suffix = path.suffix.lower()
    if suffix in BIOIO_SUFFIXES:
        return checked_image(_bioio_read(path, "YX", T=0, Z=0), path)
    if suffix in TIFF_SUFFIXES:
        page = _tiff_first_page(path)
        if page is not None:
            return first_plane(checked_image(canonical_axes(page), path))
    return first_plane(read_image(path))


def checked_image(data: np.ndarray, path, samples_last: bool | None = None) -> np.ndarray:
    """``data`` read from ``path`` if it is a plane or a stack (>= 2D, no empty axis, numbers,
    a last axis that can be X, or RGB(A) unless ``samples_last`` is False: the file names its
    last axis X); else ``ValueError``: a damaged file can "read" as an empty or 1D array, and
    a stack saved channels-last (Y, X, C) would be read as C-pixel-wide planes."""
    if data.ndim < 2 or 0 in data.shape or data.dtype.kind not in "uifb":
        raise ValueError(f"cannot read {path} as an image: it gives {data.ndim}D data of "
                         f"shape {data.shape} ({data.dtype}), not a plane or a stack")
    n = data.shape[-1]
    rgb = n in (3, 4) and samples_last is not False  # the file says: no colour samples
    if data.ndim >= 3 and not rgb and n < MIN_STACK_X:
        raise ValueError(f"{path} holds data of shape {data.shape}: its last axis ({n}) is "
                         "too short for a plane's X axis (channels or Z last?); planes are "
                         "the last two axes (Y, X), with T, Z or channels before them: move "
                         "that axis first, e.g. numpy.moveaxis(image, -1, 0)")
    return data


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path).expanduser()
    if path.is_dir():
        raise FolderGivenError(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}")
    return path


def _bioio_read(path: Path, order: str, **index) -> np.ndarray:
    """``bioio``'s pixels of ``path`` in axis ``order``, first channel (a ``UserWarning`` when
    it has several and the whole file is read), ``index`` fixed."""
    try:
        from bioio import BioImage
    except ImportError:
        raise BioioMissingError(
            f"reading {path.suffix} files needs bioio: {BIOIO_HINT}") from None
    try:
        image = BioImage(path)
        channels = int(image.dims.C)
        if channels > 1 and not index:  # the whole file: say which channel is used
            warnings.warn(f"{path.name} has {channels} channels: using the first; save the "
                          "channel to segment as a file of its own to use another",
                          UserWarning, stacklevel=3)
        return np.asarray(image.get_image_data(order, C=0, **index))
    except Exception as exc:  # noqa: BLE001 - any reader failure: not an image we can read
        raise ValueError(f"cannot read {path} with bioio: {exc}") from exc


@contextmanager
def _tifffile_quiet():
    """tifffile logs what it finds wrong in a damaged file before it raises; the user gets our
    one line (which quotes tifffile's exception) instead of two."""
    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _tiff_first_page(path: Path) -> np.ndarray | None:
    """Page 0 of the first series when the series is a stack of such pages (its shape ends
    with the page's shape), else ``None`` (then the caller reads the whole file)."""
    import tifffile

    try:
        with _tifffile_quiet(), tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            page = series.keyframe
            shape, page_shape = tuple(series.shape), tuple(page.shape)
            if len(page_shape) < 2 or shape[len(shape) - len(page_shape):] != page_shape:
                return None
            if len(shape) > 2 and shape[-1] < MIN_STACK_X and not series.axes.endswith("S"):
                return None  # X too short: read_image says what is wrong
            return np.asarray(tif.asarray(key=0, series=0)).reshape(page_shape)
    except Exception:  # noqa: BLE001 - read_image gives the one readable error for a bad file
        return None
