"""Label files of a batch: OME-Zarr (default) or TIFF, each written atomically, and their names
(``stems``: one unique name per input file).

``--format tif``: ``<stem>_labels.tif``, the input's leading shape plus ``(H, W)``, uint16
(uint32 when a plane has more than 65535 labels). ``--format zarr``: ``<stem>.ome.zarr``, an
OME-Zarr image (the input's pixels) with the labels at ``labels/auto`` (``ome-zarr``; optional:
``pip install 'napari-devosam[zarr]'``). Both are written under a temporary name in the output
folder and renamed (``os.replace``), so a crash or a full disk leaves no partial file under the
final name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from napari_devosam.io.write import label_dtype

FORMATS = ("zarr", "tif")
LABELS_NAME = "auto"


def stems(paths: list[Path]) -> dict[Path, str]:
    """A unique output name per input: its stem (``.ome`` dropped), ``-2``, ``-3`` on clashes."""
    taken: dict[str, int] = {}
    out = {}
    for p in paths:
        stem = p.name[: -len(p.suffix)] if p.suffix else p.name
        stem = stem[:-4] if stem.lower().endswith(".ome") else stem
        n = taken.get(stem, 0) + 1
        taken[stem] = n
        out[p] = stem if n == 1 else f"{stem}-{n}"
    return out


def label_path(out_dir: str | os.PathLike, stem: str, fmt: str) -> Path:
    out_dir = Path(out_dir)
    return out_dir / (f"{stem}.ome.zarr" if fmt == "zarr" else f"{stem}_labels.tif")


def zarr_available() -> bool:
    try:
        import ome_zarr.writer  # noqa: F401
    except ImportError:
        return False
    return True


def write_labels(path: Path, labels: np.ndarray, image: np.ndarray | None = None) -> Path:
    """Write ``labels`` to ``path`` (``.tif`` or ``.ome.zarr``), atomically."""
    labels = np.asarray(labels).astype(label_dtype(labels), copy=False)
    if path.suffix.lower() in (".tif", ".tiff"):
        from napari_devosam.io.write import write_tiff

        return write_tiff(path, labels)
    return _write_zarr(path, labels, image)


def _axes(ndim: int) -> str:
    return {2: "yx", 3: "tyx", 4: "tzyx"}[ndim]


def _write_zarr(path: Path, labels: np.ndarray, image: np.ndarray | None) -> Path:
    if not zarr_available():
        raise RuntimeError("--format zarr needs ome-zarr: pip install 'napari-devosam[zarr]' "
                           "(or use --format tif)")
    import zarr
    from ome_zarr.writer import write_image, write_labels

    axes = _axes(labels.ndim)
    with atomic_folder(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w")
        pixels = np.zeros(labels.shape, np.uint8) if image is None else np.asarray(image)
        write_image(pixels, root, scale_factors=(), axes=axes)  # one level, no pyramid
        write_labels(labels, root, name=LABELS_NAME, scale_factors=(), axes=axes,
                     scaler=None)
    return path


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """The labels a batch wrote at ``path`` (``.tif`` or ``.ome.zarr``)."""
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        return np.asarray(tifffile.imread(path))
    import zarr

    group = zarr.open_group(str(path), mode="r")[f"labels/{LABELS_NAME}"]
    attrs = dict(group.attrs)
    first = attrs.get("ome", attrs)["multiscales"][0]["datasets"][0]["path"]
    return np.asarray(group[first])


@contextlib.contextmanager
def atomic_folder(path: Path):
    """Yield a temporary folder next to ``path``; on success it becomes ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    from napari_devosam.utils.atomic import default_file_mode

    return 0o666 & ~default_file_mode()
