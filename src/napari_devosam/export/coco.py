"""COCO run-length encoding of masks and COCO documents from instance label images.

RLE is COCO's, through ``pycocotools.mask``: the mask is read in column-major (Fortran) order
and ``counts`` alternates run lengths of 0s and 1s, starting with 0s. ``rle_encode`` writes
COCO's compressed string (what the bundle's ``annotations.json`` uses) or, on request, the
plain list of run lengths ("uncompressed RLE"); ``rle_decode`` reads both.
"""

from __future__ import annotations

import numpy as np


def rle_encode(mask, compressed: bool = True) -> dict:
    """``{"size": [H, W], "counts": str | list[int]}`` for a 2D bool mask ``(H, W)``.

    Raises ``ValueError`` for a mask that is not 2D.
    """
    from pycocotools import mask as mask_utils

    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2D mask, got shape {mask.shape}")
    size = [int(mask.shape[0]), int(mask.shape[1])]
    if not compressed:
        return {"size": size, "counts": _run_lengths(mask)}
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": size, "counts": rle["counts"].decode("ascii")}


def _run_lengths(mask: np.ndarray) -> list[int]:
    # pycocotools has no writer of uncompressed counts; they are the run lengths of the
    # column-major pixels, starting with a (possibly empty) run of 0s.
    flat = mask.astype(bool).ravel(order="F")
    if flat.size == 0:
        return []
    bounds = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    return [0, *counts] if flat[0] else counts


def rle_decode(rle: dict) -> np.ndarray:
    """The ``(H, W)`` bool mask of a COCO RLE (compressed string or list of counts).

    Raises ``ValueError`` when the counts do not cover exactly ``H * W`` pixels.
    """
    from pycocotools import mask as mask_utils

    h, w = (int(s) for s in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list | tuple):
        if any(int(c) < 0 for c in counts) or sum(int(c) for c in counts) != h * w:
            raise ValueError(f"RLE counts sum to {sum(counts)}, expected {h * w} for size "
                             f"{h}x{w}")
        compressed = mask_utils.frPyObjects({"size": [h, w], "counts": list(counts)}, h, w)
    else:
        text = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
        compressed = {"size": [h, w], "counts": text}
    if int(mask_utils.area(compressed)) > h * w:
        raise ValueError(f"RLE counts sum to more than {h * w} for size {h}x{w}")
    return mask_utils.decode(compressed).astype(bool)


def bbox_xywh(mask) -> list[int]:
    """COCO bounding box ``[x, y, width, height]`` (x = column) of a non-empty mask."""
    rows = np.flatnonzero(np.asarray(mask).any(axis=1))
    cols = np.flatnonzero(np.asarray(mask).any(axis=0))
    if rows.size == 0:
        return [0, 0, 0, 0]
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def coco_document(items, category: str = "cell", info: dict | None = None) -> dict:
    """A COCO instance-segmentation document from label images.

    ``items``: iterable of ``(file_name, labels (H, W) int, extra: dict)``; each non-zero
    label becomes one annotation with a compressed RLE ``segmentation``, ``area``, ``bbox``,
    ``iscrowd: 0`` and ``label`` (the label value in the file); ``extra`` is merged into the
    image record. Image ids are ``1..n`` in the given order, annotation ids ``1..m``.
    """
    images, annotations = [], []
    for image_id, (file_name, labels, extra) in enumerate(items, start=1):
        labels = np.asarray(labels)
        images.append({"id": image_id, "file_name": str(file_name),
                       "height": int(labels.shape[0]), "width": int(labels.shape[1]),
                       **(extra or {})})
        for value in np.unique(labels):
            if value == 0:
                continue
            mask = labels == value
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                "segmentation": rle_encode(mask), "area": int(mask.sum()),
                "bbox": bbox_xywh(mask), "iscrowd": 0, "label": int(value),
            })
    return {"info": info or {}, "images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": category, "supercategory": "cell"}]}


def labels_from_coco(document: dict, file_name: str, dtype=np.uint32) -> np.ndarray:
    """Rebuild the label image of ``file_name`` from a COCO document (inverse of
    ``coco_document`` for that image; the ``label`` field gives each object's value)."""
    image = next((im for im in document["images"] if im["file_name"] == file_name), None)
    if image is None:
        raise ValueError(f"{file_name} is not in the COCO document")
    labels = np.zeros((image["height"], image["width"]), dtype=dtype)
    for k, ann in enumerate(a for a in document["annotations"] if a["image_id"] == image["id"]):
        labels[rle_decode(ann["segmentation"])] = ann.get("label", k + 1)
    return labels
