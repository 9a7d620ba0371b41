"""Training data for fine-tuning: annotated planes read from bundles or image/label folders.

A data folder is a bundle written by ``devosam export`` or any folder with ``images/`` and
``labels/`` holding files of matching names (TIFF or PNG); ``export.bundle.find_pairs``
matches them.
Every file is read and checked before anything is trained, and a problem is reported as one
``ValueError`` / ``FileNotFoundError`` naming the file:

- a folder without ``images/`` or ``labels/``, without image files, or a name without partner;
- a label file that is not a single-channel integer image, or whose shape differs from its
  image's plane shape;
- a label file without any object (all pixels 0).

Stacks (leading T/Z axes) are split into planes; planes without objects inside a stack that
has objects elsewhere are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MIN_OBJECT_AREA = 4  # pixels; smaller objects vanish on the decoder's 4x-downsampled grid


def usable_ids(labels: np.ndarray) -> np.ndarray:
    """Object ids with at least ``MIN_OBJECT_AREA`` pixels and a box at least 2 px each way
    (a prompt box needs an area); smaller specks are ignored, never trained or scored."""
    from scipy import ndimage

    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    keep = []
    slices = ndimage.find_objects(labels) if ids.size else []
    for obj_id, count in zip(ids, counts, strict=True):
        sl = slices[int(obj_id) - 1]
        tall, wide = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        if count >= MIN_OBJECT_AREA and tall > 1 and wide > 1:
            keep.append(obj_id)
    return np.asarray(keep, dtype=np.int64)


@dataclass
class TrainingPlane:
    """One annotated plane.

    Attributes:
      name: ``"<folder>/<file>"``, with ``"[i, j]"`` appended for a plane of a stack.
      source: the image file it came from (planes of one file share it: the split by image
        keeps them together).
      image: ``(H, W)`` of any real dtype, or ``(H, W, 3|4)`` colour.
      labels: ``(H, W)`` int64 instance labels, 0 = background.
      object_ids: the ids used for training and scoring (``usable_ids``), sorted.
    """

    name: str
    source: str
    image: np.ndarray
    labels: np.ndarray
    object_ids: np.ndarray = field(default=None, repr=False)

    def __post_init__(self):
        if self.object_ids is None:
            self.object_ids = usable_ids(self.labels)


def _as_folders(data_dirs) -> list[Path]:
    if isinstance(data_dirs, str | os.PathLike):
        data_dirs = [data_dirs]
    folders = [Path(d).expanduser() for d in data_dirs]
    if not folders:
        raise ValueError("no data folder given")
    for folder in folders:
        if folder.is_file():
            raise ValueError(
                f"{folder} is a file; fine-tuning and evaluation read a folder with images/ and "
                f"labels/ (a bundle): make one with `devosam export {folder.name} --labels "
                f"LABELS.tif --out bundle/` and pass bundle/")
        if not folder.is_dir():
            raise FileNotFoundError(f"data folder {folder} does not exist")
    return folders


def _integer_labels(labels: np.ndarray, path: Path) -> np.ndarray:
    if labels.dtype == bool:
        return labels.astype(np.int64)
    if np.issubdtype(labels.dtype, np.floating):
        if not np.all(np.isfinite(labels)) or not np.array_equal(labels, np.round(labels)):
            raise ValueError(f"label file {path} has non-integer values; labels must be "
                             "instance ids (0 = background)")
    elif not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"label file {path} has dtype {labels.dtype}, not integer labels")
    out = labels.astype(np.int64)
    if out.size and out.min() < 0:
        raise ValueError(f"label file {path} has negative labels")
    return out


def _planes_of_pair(folder: Path, image_path: Path, label_path: Path) -> list[TrainingPlane]:
    from napari_devosam.engine.stacks import iter_planes, leading_shape, plane_ndim
    from napari_devosam.io.read import read_image

    image = read_image(image_path)
    labels = read_image(label_path)
    if labels.ndim >= 3 and labels.shape[-1] in (3, 4) and labels.shape != image.shape:
        raise ValueError(f"label file {label_path} is a colour image (shape {labels.shape}); "
                         "labels must be single-channel instance ids")
    plane_shape = image.shape[-plane_ndim(image):]
    if labels.shape[-2:] != plane_shape[:2] or labels.shape[:-2] != leading_shape(image):
        raise ValueError(f"label file {label_path} has shape {labels.shape} but its image "
                         f"{image_path.name} has shape {image.shape}")
    labels = _integer_labels(labels, label_path)
    if not labels.any():
        raise ValueError(f"label file {label_path} has no objects (all pixels are 0)")
    planes = []
    multi = len(leading_shape(image)) > 0
    for index, plane in iter_planes(image):
        lab = labels[index]
        if not lab.any():
            continue
        suffix = f"[{', '.join(str(i) for i in index)}]" if multi else ""
        planes.append(TrainingPlane(f"{folder.name}/{image_path.name}{suffix}", str(image_path),
                            np.asarray(plane), np.ascontiguousarray(lab)))
    planes = [p for p in planes if len(p.object_ids)]
    if not planes:
        raise ValueError(f"label file {label_path} has no object of at least "
                         f"{MIN_OBJECT_AREA} pixels")
    return planes


def load_planes(data_dirs: str | os.PathLike | Iterable) -> list[TrainingPlane]:
    """Read and check every image/label pair in ``data_dirs`` (one folder or several).

    Returns the annotated planes in folder order, then file-name order. Raises
    ``FileNotFoundError`` / ``ValueError`` naming the offending folder or file (see the
    module docstring) before returning anything.
    """
    from napari_devosam.export.bundle import find_pairs

    planes: list[TrainingPlane] = []
    for folder in _as_folders(data_dirs):
        pairs = find_pairs(folder)
        if not pairs:
            raise ValueError(f"no image/label pairs in {folder}")
        for image_path, label_path in pairs:
            planes.extend(_planes_of_pair(folder, Path(image_path), Path(label_path)))
    return planes


def split_planes(planes: list[TrainingPlane], val_fraction: float, seed: int = 0
                 ) -> tuple[list[TrainingPlane], list[TrainingPlane]]:
    """Split by image file (planes of one file stay together), seeded.

    ``val_fraction`` of the files (at least one) go to validation when there are at least two
    files; with one file its planes are split instead. ``val_fraction=0`` or a single plane
    gives an empty validation list (the caller then validates on the training planes).
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if val_fraction == 0 or len(planes) < 2:
        return list(planes), []
    groups: dict[str, list[TrainingPlane]] = {}
    for p in planes:
        groups.setdefault(p.source, []).append(p)
    units = list(groups.values()) if len(groups) >= 2 else [[p] for p in planes]
    order = np.random.default_rng(seed).permutation(len(units))
    n_val = min(len(units) - 1, max(1, int(round(val_fraction * len(units)))))
    val_ids = set(order[:n_val].tolist())
    train = [p for i, u in enumerate(units) if i not in val_ids for p in u]
    val = [p for i, u in enumerate(units) if i in val_ids for p in u]
    return train, val


def summarize(planes: list[TrainingPlane]) -> dict:
    """Plane, object and file counts, plane shapes and dtypes (for metadata and reports)."""
    return {
        "planes": len(planes),
        "objects": int(sum(len(p.object_ids) for p in planes)),
        "files": len({p.source for p in planes}),
        "shapes": sorted({str(tuple(p.image.shape)) for p in planes}),
        "dtypes": sorted({str(p.image.dtype) for p in planes}),
    }
