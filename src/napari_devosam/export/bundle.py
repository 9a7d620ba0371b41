"""The training bundle: annotated planes, their instance labels and everything about them.

A bundle folder holds ``images/`` and ``labels/`` (TIFF, same file names), ``manifest.json``,
``measurements.csv`` and ``annotations.json`` (COCO, compressed RLE); see docs/export.md.

Exporting again into a bundle merges: an entry is identified by ``(source, plane)``; a new
one is added, an existing one replaced, all others kept. All files of an export are first
written into a hidden staging folder inside the bundle; only when everything succeeded are
they moved into place by renames (``manifest.json`` last), so a failure or a cancelled
export (closing the generator) leaves the previous bundle as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from napari_devosam._version import __version__
from napari_devosam.annotation.store import image_hash
from napari_devosam.engine.image import DEFAULT_NORMALIZATION
from napari_devosam.export import coco
from napari_devosam.export.measurements import measurement_rows, rows_to_csv
from napari_devosam.io.read import read_image
from napari_devosam.io.write import label_dtype, write_tiff
from napari_devosam.utils.jsonable import jsonable
from napari_devosam.utils.progress import drain

FORMAT = "devosam-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PAIR_SUFFIXES = (".tif", ".tiff", ".png")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _split_planes(image, labels):
    image, labels = np.asarray(image), np.asarray(labels)
    if labels.ndim < 2:
        raise ValueError(f"labels must have at least 2 dimensions, got shape {labels.shape}")
    rgb_match = image.ndim == labels.ndim + 1 and image.shape[-1] in (3, 4)
    if image.shape != labels.shape and not (rgb_match and image.shape[:-1] == labels.shape):
        raise ValueError(f"image shape {image.shape} does not match labels shape {labels.shape}")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must not be negative")
    return image, labels


def _planes_with_objects(labels, plane_indices):
    lead = labels.shape[:-2]
    if plane_indices is None:
        candidates = list(np.ndindex(*lead)) if lead else [()]
    else:
        candidates = []
        for p in plane_indices:
            p = tuple(int(i) for i in np.atleast_1d(p)) if np.size(p) else ()
            if len(p) != len(lead) or any(not 0 <= i < n for i, n in zip(p, lead, strict=True)):
                raise ValueError(f"plane index {p} does not fit labels of shape {labels.shape}")
            candidates.append(p)
    return [p for p in dict.fromkeys(candidates) if labels[p].any()]


def _stem(source: str) -> str:
    name = Path(str(source)).name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".png", ".jpg", ".npy", ".zarr"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"


def _file_name(source, plane, existing: dict, taken: dict) -> str:
    """Reuse the name of the same (source, plane); else a fresh one not used by another source."""
    key = (source, tuple(plane))
    if key in existing:
        return existing[key]["file"]
    base = _stem(source) + ("_" + "-".join(f"{i:04d}" for i in plane) if plane else "")
    name = f"{base}.tif"
    if name in taken and taken[name] != key:
        name = f"{base}_{hashlib.sha1(str(source).encode()).hexdigest()[:6]}.tif"
    return name


def _read_manifest(out: Path) -> dict | None:
    path = out / MANIFEST
    if not path.exists():
        if out.exists() and any(not p.name.startswith(".") for p in out.iterdir()):
            raise ValueError(f"{out} is not empty and not a {FORMAT}; choose a new folder")
        return None
    return load_bundle(out)


def export_bundle(out_dir, image, labels, *, source: str, plane_indices=None, prompts=None,
                  normalization=None, model_info=None):
    """Export the planes of ``labels`` that hold objects into the bundle ``out_dir``.

    Generator: yields ``(done, total)`` and returns a summary dict (``bundle``, ``files``
    written, ``planes``, ``objects`` written, ``total_objects`` and ``total_files`` in the
    bundle). ``image``: the pixel data, ``(..., H, W)`` or ``(..., H, W, 3|4)``; ``labels``:
    ``(..., H, W)`` non-negative ints, 0 = background; ``source``: what identifies the
    image (its path); ``plane_indices``: leading indices to consider (default: all);
    ``prompts``: object id -> the prompts that made it; ``normalization``: a
    ``Normalization`` or dict (default: the default one); ``model_info``: a dict such as
    ``{"name": "vit_b", "hash": ...}``.
    """
    out = Path(out_dir)
    image, labels = _split_planes(image, labels)
    old = _read_manifest(out)
    planes = _planes_with_objects(labels, plane_indices)
    from napari_devosam.io.labels import check_label_plane

    for plane in planes:  # before anything is written
        check_label_plane(labels[plane], "the labels")
    if not planes:
        raise ValueError("nothing to export: no plane has an object")
    if hasattr(normalization, "to_dict"):
        normalization = normalization.to_dict()
    normalization = normalization or DEFAULT_NORMALIZATION.to_dict()
    prompts = {int(k): v for k, v in (prompts or {}).items()}
    old_entries = list(old["entries"]) if old else []
    existing = {(e["source"], tuple(e["plane"])): e for e in old_entries}
    taken = {e["file"]: (e["source"], tuple(e["plane"])) for e in old_entries}
    staging = out / f".staging-{uuid.uuid4().hex[:12]}"
    total = len(planes) + 1
    try:
        new_entries = []
        for k, plane in enumerate(planes):
            name = _file_name(source, plane, existing, taken)
            taken[name] = (source, plane)
            lab = labels[plane]
            ids = [int(i) for i in np.unique(lab) if i != 0]
            dtype = label_dtype(lab)
            write_tiff(staging / "images" / name, image[plane])
            write_tiff(staging / "labels" / name, lab.astype(dtype))
            new_entries.append({
                "file": name, "image": f"images/{name}", "labels": f"labels/{name}",
                "source": str(source), "plane": list(plane), "shape": list(image[plane].shape),
                "image_dtype": str(image.dtype), "labels_dtype": np.dtype(dtype).name,
                "image_hash": image_hash(image[plane]), "object_count": len(ids),
                "object_ids": ids,
                "prompts": {str(i): jsonable(prompts[i]) for i in ids if i in prompts},
                "normalization": normalization, "model": jsonable(model_info),
                "exported": _now(),
            })
            yield (k + 1, total)
        new_keys = {(e["source"], tuple(e["plane"])) for e in new_entries}
        entries = [e for e in old_entries if (e["source"], tuple(e["plane"])) not in new_keys]
        entries = sorted(entries + new_entries, key=lambda e: e["file"])
        _write_derived(out, staging, entries, {e["file"] for e in new_entries})
        manifest = {
            "format": FORMAT, "version": FORMAT_VERSION, "package_version": __version__,
            "created": old.get("created", _now()) if old else _now(), "updated": _now(),
            "labels": "instance ids, 0 = background; values match object ids in prompts",
            "rle": "COCO compressed RLE (column-major)",
            "normalization": normalization, "model": jsonable(model_info),
            "object_count": sum(e["object_count"] for e in entries),
            "file_count": len(entries), "entries": entries,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        for entry in new_entries:  # the swap: renames only, manifest last
            for sub in ("images", "labels"):
                (out / sub).mkdir(parents=True, exist_ok=True)
                os.replace(staging / sub / entry["file"], out / sub / entry["file"])
        for name in ("measurements.csv", "annotations.json", MANIFEST):
            os.replace(staging / name, out / name)
        yield (total, total)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"bundle": str(out), "files": [e["file"] for e in new_entries],
            "planes": [list(p) for p in planes],
            "objects": sum(e["object_count"] for e in new_entries),
            "total_objects": manifest["object_count"], "total_files": len(entries)}


def _write_derived(out: Path, staging: Path, entries, new_files) -> None:
    """measurements.csv and annotations.json over all entries of the merged bundle."""
    rows, items = [], []
    for e in entries:
        root = staging if e["file"] in new_files else out
        img = read_image(root / "images" / e["file"])
        lab = read_image(root / "labels" / e["file"])
        rows.extend(measurement_rows(e["file"], e["plane"], lab, img))
        items.append((e["image"], lab, {"source": e["source"], "plane": e["plane"],
                                        "labels_file": e["labels"]}))
    (staging / "measurements.csv").write_text(rows_to_csv(rows))
    document = coco.coco_document(items, info={"description": f"{FORMAT} {FORMAT_VERSION}",
                                               "version": __version__, "date_created": _now()})
    (staging / "annotations.json").write_text(json.dumps(document))


def write_bundle(out_dir, image, labels, **kwargs) -> dict:
    """``export_bundle`` run to the end; returns its summary."""
    return drain(export_bundle(out_dir, image, labels, **kwargs))


def export_store(out_dir, store, image, *, source: str | None = None, **kwargs):
    """``export_bundle`` for an ``AnnotationStore``: its labels, planes and prompts."""
    if store.image_hash and image_hash(image) != store.image_hash:
        raise ValueError(f"the annotation store {store.folder} belongs to other pixel data")
    source = source or store.image_path or f"blake2b:{store.image_hash}"
    prompts = {i: o.get("prompts", {}) for i, o in store.objects.items()}
    models = [o["model"] for o in store.objects.values() if o.get("model")]
    kwargs.setdefault("model_info", models[-1] if models else None)
    return (yield from export_bundle(out_dir, image, store.labels, source=source,
                                     plane_indices=store.planes(), prompts=prompts, **kwargs))


# -- reading ----------------------------------------------------------------------------------
def load_bundle(path) -> dict:
    """The manifest of a bundle (``FileNotFoundError`` without one, ``ValueError`` if it is
    not a readable devosam bundle)."""
    path = Path(path)
    manifest_path = path / MANIFEST if path.is_dir() or not path.exists() else path
    if not manifest_path.is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {path}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{manifest_path} is not readable JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{manifest_path} is not a {FORMAT} manifest")
    if int(manifest.get("version", 0)) > FORMAT_VERSION:
        raise ValueError(f"{manifest_path} was written by a newer napari-devosam")
    return manifest


def find_pairs(folder) -> list[tuple[Path, Path]]:
    """``(image, labels)`` paths from ``folder/images`` and ``folder/labels``, matched by
    file name without suffix (.tif, .tiff, .png), sorted. Raises ``FileNotFoundError`` for a
    missing sub-folder and ``ValueError`` naming the file for a name without partner."""
    folder = Path(folder)
    found = []
    for sub in ("images", "labels"):
        d = folder / sub
        if not d.is_dir():
            raise FileNotFoundError(f"{folder} has no {sub}/ folder")
        files: dict[str, Path] = {}
        for p in sorted(d.iterdir()):
            if p.name.startswith(".") or p.suffix.lower() not in PAIR_SUFFIXES:
                continue
            if p.stem in files:
                raise ValueError(f"{p} and {files[p.stem]} have the same name")
            files[p.stem] = p
        found.append(files)
    images, labels = found
    for stem, p in images.items():
        if stem not in labels:
            raise ValueError(f"{p} has no label file of the same name in {folder / 'labels'}")
    for stem, p in labels.items():
        if stem not in images:
            raise ValueError(f"{p} has no image file of the same name in {folder / 'images'}")
    if not images:
        raise ValueError(f"no .tif/.tiff/.png images in {folder / 'images'}")
    return [(images[s], labels[s]) for s in sorted(images)]


def iter_pairs(folder):
    """Yield ``(image, labels, image_path)`` arrays for every pair of ``find_pairs``; a
    labels file whose shape differs from its image's plane raises ``ValueError`` naming it."""
    for image_path, label_path in find_pairs(folder):
        img, lab = read_image(image_path), read_image(label_path)
        plane_shape = img.shape[:-1] if img.ndim == lab.ndim + 1 else img.shape
        if plane_shape != lab.shape:
            raise ValueError(
                f"{label_path} has shape {lab.shape} but its image {image_path.name} has "
                f"{img.shape}"
            )
        yield img, lab, image_path

