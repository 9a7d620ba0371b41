"""PNG overlays of ``bench_real.py``: a plane in gray, truth outlines green, results magenta.

Panels are ``(H, W, 3)`` uint8; ``save_png`` puts them side by side (a white gap between) and
shrinks the strip to at most ``max_width`` pixels wide, so a file stays small (< 300 KB).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

GREEN = (40, 230, 40)
MAGENTA = (255, 40, 255)


def gray(plane: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 of a 2D plane scaled between its 1st and 99.8th percentiles."""
    p = np.asarray(plane, dtype=np.float64)
    lo, hi = np.percentile(p, (1, 99.8))
    g = np.clip((p - lo) / max(hi - lo, 1e-9), 0, 1)
    return np.repeat((g * 255).astype(np.uint8)[..., None], 3, axis=2)


def outline(rgb: np.ndarray, labels: np.ndarray | None, colour) -> np.ndarray:
    """``rgb`` with the inner outlines of ``labels`` (int, or bool masks ``(n, H, W)``)."""
    from skimage.segmentation import find_boundaries

    if labels is None:
        return rgb
    lab = np.asarray(labels)
    edge = (np.any([find_boundaries(m, mode="inner") for m in lab], axis=0) if lab.ndim == 3
            else find_boundaries(lab, mode="inner"))
    out = rgb.copy()
    if np.size(edge):
        out[edge] = colour
    return out


def panel(plane, truth=None, result=None) -> np.ndarray:
    return outline(outline(gray(plane), truth, GREEN), result, MAGENTA)


def _palette():
    """62 gray levels, the two outline colours and white (the gaps): exact colours."""
    from PIL import Image

    greys = [v for g in np.linspace(0, 255, 61).round().astype(int) for v in (g, g, g)]
    pal = Image.new("P", (1, 1))
    pal.putpalette(greys + [*GREEN, *MAGENTA, 255, 255, 255] + [0] * 3 * (256 - 64))
    return pal


def save_png(path: str | Path, panels: list[np.ndarray], max_width: int = 1300) -> Path:
    """Write ``panels`` side by side (same height required) as one PNG, atomically."""
    from PIL import Image

    from napari_devosam.utils.atomic import atomic_write

    h = max(p.shape[0] for p in panels)
    gap = np.full((h, 8, 3), 255, dtype=np.uint8)
    parts = []
    for p in panels:
        pad = np.full((h - p.shape[0], p.shape[1], 3), 255, dtype=np.uint8)
        parts += [np.concatenate([p, pad]), gap]
    strip = np.concatenate(parts[:-1], axis=1)
    img = Image.fromarray(strip)
    if img.width > max_width:
        img = img.resize((max_width, round(img.height * max_width / img.width)),
                         Image.Resampling.LANCZOS)
    img = img.quantize(palette=_palette(), dither=Image.Dither.NONE)  # a third of the bytes
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        f.write(buf.getvalue())
    return path
