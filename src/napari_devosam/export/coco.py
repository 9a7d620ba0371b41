"""COCO run-length encoding of masks and COCO documents from instance label images.

RLE follows COCO exactly: the mask is read in column-major (Fortran) order and ``counts``
alternates run lengths of 0s and 1s, starting with 0s (a first count of 0 when the mask
starts with a 1). ``counts`` is either that list of ints ("uncompressed RLE") or COCO's
compressed string (each count, after the first two as a difference to the count two places
earlier, in 5-bit groups offset by 48), which is what ``pycocotools.mask.encode`` writes
and what the bundle's ``annotations.json`` uses. ``rle_decode`` reads both.
"""

from __future__ import annotations

import numpy as np


def rle_counts(mask) -> list[int]:
    """Column-major run lengths of a 2D bool mask, starting with a run of 0s."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2D mask, got shape {mask.shape}")
    flat = mask.astype(bool).ravel(order="F")
    if flat.size == 0:
        return []
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts.insert(0, 0)
    return counts


def counts_to_string(counts) -> str:
    """COCO's compressed string for a list of run lengths."""
    out = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative differences keep their sign
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def string_to_counts(text: str) -> list[int]:
    """Run lengths from COCO's compressed string (inverse of ``counts_to_string``)."""
    counts: list[int] = []
    p = 0
    data = text.encode("ascii")
    while p < len(data):
        x = 0
        k = 0
        more = True
        while more:
            if p >= len(data):
                raise ValueError("truncated compressed RLE string")
            c = data[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_encode(mask, compressed: bool = True) -> dict:
    """``{"size": [H, W], "counts": str | list[int]}`` for a 2D bool mask."""
    mask = np.asarray(mask)
    counts = rle_counts(mask)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])],
            "counts": counts_to_string(counts) if compressed else counts}


def rle_decode(rle: dict) -> np.ndarray:
    """The ``(H, W)`` bool mask of a COCO RLE (compressed string or list of counts)."""
    h, w = (int(s) for s in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    if isinstance(counts, str):
        counts = string_to_counts(counts)
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size and (counts < 0).any():
        raise ValueError("negative run length in RLE")
    if counts.sum() != h * w:
        raise ValueError(f"RLE counts sum to {counts.sum()}, expected {h * w} for size {h}x{w}")
    values = np.arange(counts.size) % 2 == 1
    flat = np.repeat(values, counts)
    return flat.reshape((h, w), order="F")


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
