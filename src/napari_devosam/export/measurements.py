"""Per-object measurements of label images (scikit-image ``regionprops_table``).

One row per object. Columns: ``file``, ``plane`` (the source plane index, e.g. ``"3"`` or
``"1,4"``, empty for a 2D image), ``label``, ``area``, ``centroid_row``, ``centroid_col``,
``bbox_row0``, ``bbox_col0``, ``bbox_row1``, ``bbox_col1`` (half-open, napari pixel order),
``mean_intensity`` / ``min_intensity`` / ``max_intensity`` (of the original pixels; RGB
images get one column per channel, suffixed ``_0``, ``_1``, ``_2``), ``eccentricity``,
``perimeter``, ``solidity``, ``major_axis_length``, ``minor_axis_length``,
``orientation`` (radians, scikit-image's convention), ``equivalent_diameter``.
"""

from __future__ import annotations

import csv
import io

import numpy as np

PROPERTIES = (
    "label", "area", "centroid", "bbox", "intensity_mean", "intensity_min", "intensity_max",
    "eccentricity", "perimeter", "solidity", "axis_major_length", "axis_minor_length",
    "orientation", "equivalent_diameter_area",
)

_RENAME = {
    "centroid-0": "centroid_row", "centroid-1": "centroid_col",
    "bbox-0": "bbox_row0", "bbox-1": "bbox_col0", "bbox-2": "bbox_row1", "bbox-3": "bbox_col1",
    "intensity_mean": "mean_intensity", "intensity_min": "min_intensity",
    "intensity_max": "max_intensity", "axis_major_length": "major_axis_length",
    "axis_minor_length": "minor_axis_length", "equivalent_diameter_area": "equivalent_diameter",
}


def _column_name(key: str) -> str:
    if key in _RENAME:
        return _RENAME[key]
    for prefix in ("intensity_mean", "intensity_min", "intensity_max"):
        if key.startswith(prefix + "-"):
            return f"{_RENAME[prefix]}_{key.rsplit('-', 1)[1]}"
    return key


def measure(labels, image=None) -> dict[str, np.ndarray]:
    """Columns of measurements of a 2D label image (``image``: the matching ``(H, W)`` or
    ``(H, W, C)`` pixel data, or None for shape-only columns)."""
    from skimage.measure import regionprops_table

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"expected 2D labels, got shape {labels.shape}")
    props = list(PROPERTIES)
    intensity = None
    if image is not None:
        intensity = np.asarray(image)
        if intensity.shape[:2] != labels.shape:
            raise ValueError(f"image {intensity.shape} and labels {labels.shape} differ in shape")
        if intensity.dtype == bool:
            intensity = intensity.astype(np.uint8)
    else:
        props = [p for p in props if not p.startswith("intensity")]
    table = regionprops_table(labels.astype(np.int64, copy=False), intensity_image=intensity,
                              properties=props)
    return {_column_name(k): np.asarray(v) for k, v in table.items()}


def measurement_rows(file: str, plane, labels, image=None) -> list[dict]:
    """``measure`` as a list of row dicts, each starting with ``file`` and ``plane``."""
    plane_text = ",".join(str(int(i)) for i in plane)
    columns = measure(labels, image)
    n = len(columns.get("label", []))
    rows = []
    for k in range(n):
        row = {"file": file, "plane": plane_text}
        for name, values in columns.items():
            value = values[k].item()
            integral = name in ("label", "area") or name.startswith("bbox")
            row[name] = int(value) if integral else value
        rows.append(row)
    return rows


def rows_to_csv(rows: list[dict]) -> str:
    """CSV text with a header; columns are the union over rows, in first-seen order."""
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
