"""The one place where napari's (row, col) coordinates become SAM's (x, y) input frame.

napari gives points as ``(row, col)`` and boxes as ``(row0, col0, row1, col1)`` in pixel
coordinates of the plane; SAM takes points as ``(x, y) = (col, row)`` and boxes as
``(x0, y0, x1, y1)``, in its input frame: the plane resized so that its long side is the
encoder's ``img_size`` (``input_size``; ``segment_anything``'s ``ResizeLongestSide``, whose
arithmetic ``to_input_frame`` and ``input_size`` repeat exactly). Everything else in the
package speaks napari's convention.
"""

from __future__ import annotations

import numpy as np

from napari_devosam.utils.text import numbers


def points_rc_to_xy(points: np.ndarray) -> np.ndarray:
    """``(N, 2)`` (row, col) -> ``(N, 2)`` float64 (x, y)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return points[:, ::-1].copy()


def box_rc_to_xyxy(box: np.ndarray) -> np.ndarray:
    """``(4,)`` or ``(B, 4)`` (row0, col0, row1, col1) -> same shape (x0, y0, x1, y1), float64."""
    box = np.asarray(box, dtype=np.float64)
    return box[..., [1, 0, 3, 2]].copy()


def input_size(original_size: tuple[int, int], img_size: int) -> tuple[int, int]:
    """``(h, w)`` of a plane of ``original_size`` ``(H, W)`` resized so that its long side is
    ``img_size`` (``ResizeLongestSide.get_preprocess_shape``: sides rounded half up)."""
    h, w = original_size
    scale = img_size * 1.0 / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def to_input_frame(xy: np.ndarray, original_size: tuple[int, int],
                   resized: tuple[int, int]) -> np.ndarray:
    """``(..., 2)`` plane ``(x, y)`` -> float64 ``(x, y)`` in the resized plane ``resized``
    ``(h, w)`` (``ResizeLongestSide.apply_coords`` with ``resized = input_size(...)``)."""
    xy = np.array(xy, dtype=np.float64)
    xy[..., 0] = xy[..., 0] * (resized[1] / original_size[1])
    xy[..., 1] = xy[..., 1] * (resized[0] / original_size[0])
    return xy


def points_to_input(points: np.ndarray, original_size: tuple[int, int],
                    img_size: int) -> np.ndarray:
    """``(..., 2)`` plane (row, col) -> same shape float64 input-frame (x, y)."""
    points = np.asarray(points, dtype=np.float64)
    xy = points_rc_to_xy(points).reshape(points.shape)
    return to_input_frame(xy, original_size, input_size(original_size, img_size))


def boxes_to_input(boxes: np.ndarray, original_size: tuple[int, int],
                   img_size: int) -> np.ndarray:
    """``(B, 4)`` plane (row0, col0, row1, col1) -> ``(B, 4)`` float64 input-frame
    (x0, y0, x1, y1) (``ResizeLongestSide.apply_boxes``)."""
    xyxy = box_rc_to_xyxy(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
    resized = input_size(original_size, img_size)
    return to_input_frame(xyxy.reshape(-1, 2, 2), original_size, resized).reshape(-1, 4)


def resize_image(rgb: np.ndarray, img_size: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> ``(h, w, 3)`` uint8 at ``input_size`` (``ResizeLongestSide.
    apply_image``: bilinear, as SAM was trained)."""
    from segment_anything.utils.transforms import ResizeLongestSide

    return ResizeLongestSide(img_size).apply_image(np.ascontiguousarray(rgb))


def validate_points(points, labels, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Check ``(N, 2)`` (row, col) points and their 0/1 labels against a plane of ``shape``.

    Pixel ``i`` covers ``i - 0.5 .. i + 0.5`` (napari's convention), so a point within half
    a pixel of the border is inside the image; it is moved onto the border pixel's centre.
    Returns float64 points and int64 labels. Points further outside, NaN coordinates,
    labels other than 0/1 or a count mismatch raise ``ValueError``.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.size % 2 or (pts.ndim == 2 and pts.shape[1] != 2) or pts.ndim > 2:
        raise ValueError(f"points must be (row, col) pairs, shape (N, 2), got {pts.shape}")
    pts = pts.reshape(-1, 2)
    if labels is None:
        labels = np.ones(len(pts), dtype=np.int64)
    lab = np.asarray(labels).reshape(-1)
    if len(lab) != len(pts):
        raise ValueError(f"{len(pts)} points but {len(lab)} point labels")
    if not np.all(np.isin(lab, (0, 1))):
        raise ValueError("point labels must be 1 (positive) or 0 (negative)")
    if not np.all(np.isfinite(pts)):
        raise ValueError("point coordinates must be finite numbers")
    h, w = shape
    inside = ((pts[:, 0] >= -0.5) & (pts[:, 0] <= h - 0.5)
              & (pts[:, 1] >= -0.5) & (pts[:, 1] <= w - 0.5))
    if not np.all(inside):
        bad = pts[~inside][0]
        raise ValueError(
            f"point (row={bad[0]:g}, col={bad[1]:g}) lies outside the {h}x{w} image"
        )
    pts = np.stack([np.clip(pts[:, 0], 0, h - 1), np.clip(pts[:, 1], 0, w - 1)], axis=1)
    return pts, lab.astype(np.int64)


class BoxClippedWarning(UserWarning):
    """A box reached outside the plane and was clipped to it."""


def clip_box_noted(box, shape: tuple[int, int]) -> tuple[np.ndarray, str | None]:
    """``clip_box`` without the warning: ``(clipped box, note)``, where ``note`` says how a
    box reaching more than one pixel outside the plane was clipped (else None). Raises
    ``ValueError`` as ``clip_box`` does."""
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4,):
        raise ValueError(f"a box needs 4 numbers (row0, col0, row1, col1), got {b.size}")
    if not np.all(np.isfinite(b)):
        raise ValueError("box coordinates must be finite numbers")
    r0, c0, r1, c1 = b
    if r1 < r0 or c1 < c0:
        raise ValueError(f"inverted box {numbers(b)}: need row0 <= row1 and col0 <= col1")
    h, w = shape
    if r1 < 0 or c1 < 0 or r0 > h - 1 or c0 > w - 1:
        raise ValueError(f"box {numbers(b)} lies entirely outside the {h}x{w} image: "
                         "nothing of it can be segmented")
    clipped = np.array(
        [max(r0, 0), max(c0, 0), min(r1, h - 1), min(c1, w - 1)], dtype=np.float64
    )
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        raise ValueError(f"box {numbers(b)} has zero area inside the {h}x{w} image")
    note = None
    if r0 < -1 or c0 < -1 or r1 > h or c1 > w:  # a box drawn up to the edge is not news
        note = (f"box {numbers(b)} reaches outside the {h}x{w} image: clipped to "
                f"{numbers(clipped)}")
    return clipped, note


def clip_box(box, shape: tuple[int, int]) -> np.ndarray:
    """Validate a (row0, col0, row1, col1) box and clip it to a plane of ``shape``.

    Corners may come in any order as long as the box is not inverted: row0 <= row1 and
    col0 <= col1 (napari's rectangles are normalised before they reach here). A box partly
    outside the plane is clipped to it, with a ``BoxClippedWarning`` when it reached more
    than one pixel outside. A box with NaN coordinates, an inverted box, a zero-area box
    (after clipping) or a box entirely outside the plane raises ``ValueError``.
    """
    clipped, note = clip_box_noted(box, shape)
    if note:
        import warnings

        warnings.warn(note, BoxClippedWarning, stacklevel=2)
    return clipped


def normalise_box(corners) -> np.ndarray:
    """A box from two opposite corners in any order -> (row0, col0, row1, col1) with 0 <= 1."""
    c = np.asarray(corners, dtype=np.float64).reshape(-1, 2)
    return np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()])


def usable_prompts(boxes, points, shape: tuple[int, int]
                   ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Which prompts SAM can answer on a plane of ``shape``, one by one.

    ``boxes`` ``(B, 4)`` (row0, col0, row1, col1) and ``points`` ``(N, 2)`` (row, col).
    Returns boolean keep-masks ``(B,)`` and ``(N,)`` and one message per dropped prompt (a
    box with zero area or outside the plane, a point outside it, NaN coordinates) or clipped
    box (kept: SAM answers the part inside the plane), so that
    one bad prompt never stops the others from being answered.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    keep_boxes, keep_points, problems = np.ones(len(boxes), bool), np.ones(len(points), bool), []
    for i, box in enumerate(boxes):
        try:
            note = clip_box_noted(box, shape)[1]
        except ValueError as exc:
            keep_boxes[i] = False
            problems.append(f"box dropped: {exc}")
        else:
            if note:
                problems.append(note)
    for i, point in enumerate(points):
        try:
            validate_points(point[None], None, shape)
        except ValueError as exc:
            keep_points[i] = False
            problems.append(f"point dropped: {exc}")
    return keep_boxes, keep_points, problems


BOX_MARGIN = 2  # pixels a box's mask may reach beyond the box


def mask_within_box(masks: np.ndarray, box, margin: int = BOX_MARGIN) -> np.ndarray:
    """Zero ``masks`` ``(..., H, W)`` bool outside ``box`` ``(row0, col0, row1, col1)`` grown
    by ``margin`` pixels; in place, returns ``masks``.

    The one rule for "a box says where its object is": SAM sometimes paints a neighbour far
    outside the box; the predictor (so the API, the CLI and the annotator) drops those pixels.
    """
    h, w = masks.shape[-2:]
    r0, c0 = (max(int(np.floor(v)) - margin, 0) for v in box[:2])
    r1, c1 = (min(int(np.ceil(v)) + margin + 1, n) for v, n in ((box[2], h), (box[3], w)))
    keep = np.zeros((h, w), dtype=bool)
    keep[r0:r1, c0:c1] = True
    masks &= keep
    return masks
