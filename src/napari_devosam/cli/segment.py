"""``devosam segment``: boxes and points on one plane -> an instance label image.

Each ``--box`` becomes one object (ids 1, 2, ... in the order given). ``--point`` prompts
alone make one object; together with exactly one box they refine that box's object. Where
objects overlap, the earlier id keeps the pixel. A single point alone is ambiguous, so SAM's
three candidate masks are computed and the one with the best predicted IoU is kept.
"""

from __future__ import annotations

import sys

import numpy as np

from napari_devosam.cli import MODEL_HELP, add_precision_argument, chosen_model
from napari_devosam.utils.text import count


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "segment",
        help="segment objects from box/point prompts into a label image",
        description=(
            "Segment one plane of IMAGE with SAM: every --box r0,c0,r1,c1 (pixel rows and "
            "columns) is one object; --point r,c[,1|0] prompts (1 = object, 0 = background) "
            "alone make one object, or refine the object of a single --box. Writes an "
            "instance label image (uint16, 0 = background)."
        ),
    )
    p.add_argument("image", help="image file (TIFF, PNG, ...): a plane or a (T, Z, Y, X) stack")
    p.add_argument("--box", action="append", default=[], metavar="R0,C0,R1,C1",
                   help="a box in pixel coordinates (repeatable; one object per box)")
    p.add_argument("--point", action="append", default=[], metavar="R,C[,LABEL]",
                   help="a point in pixel coordinates, label 1 (object, default) or 0 "
                        "(background); repeatable")
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--decoder", default=None, help="a fine-tuned decoder file to apply")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    add_precision_argument(p)
    p.add_argument("--plane", default=None, metavar="INDEX",
                   help="which plane of a stack: a flat index (7) or one per axis (T:Z, e.g. 2:5)")
    p.add_argument("--cache-dir", default=None,
                   help="embedding cache folder (default: the one `devosam embed` fills)")
    p.add_argument("--out", required=True, help="the label image to write (.tif)")
    # --- issue 12: automatic segmentation (--auto, --mode, --stain, --min-area) ---
    from napari_devosam.cli.segment_auto import add_arguments

    add_arguments(p)
    # --- end issue 12 ---
    p.set_defaults(func=run)


def _numbers(text: str, what: str, counts: tuple[int, ...], example: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) not in counts or not all(np.isfinite(values)):
        raise ValueError(f"bad {what} {text!r}: expected {example}")
    return values


def parse_box(text: str) -> np.ndarray:
    """``"r0,c0,r1,c1"`` -> ``(4,)`` float array (napari's row/col order)."""
    return np.array(_numbers(text, "--box", (4,), "four numbers r0,c0,r1,c1"))


def parse_point(text: str) -> tuple[float, float, int]:
    """``"r,c"`` or ``"r,c,label"`` -> ``(row, col, label)`` with label 1 or 0."""
    values = _numbers(text, "--point", (2, 3), "r,c or r,c,label with label 1 or 0")
    label = values[2] if len(values) == 3 else 1
    if label not in (0, 1):
        raise ValueError(f"bad --point {text!r}: the label must be 1 (object) or 0 (background)")
    return values[0], values[1], int(label)


def select_plane(image: np.ndarray, index: str | None) -> np.ndarray:
    """The plane of ``image`` that ``--plane`` names (the image itself if it is one plane)."""
    from napari_devosam.cli.image_args import plane_arg
    from napari_devosam.engine.stacks import plane_count

    n = plane_count(image)
    if index is None:
        if n != 1:
            raise ValueError(
                f"the image has {n} planes (shape {image.shape}); choose one with --plane"
            )
        index = "0"
    return np.asarray(image[plane_arg(index, image)])


def segment_plane(predictor, boxes: list[np.ndarray], points: list[tuple]) -> np.ndarray:
    """Prompts on the predictor's current plane -> ``(H, W)`` instance labels."""
    H, W = predictor.original_size
    if points:
        pts = np.array([(r, c) for r, c, _ in points], dtype=np.float64)
        labels = np.array([lab for _, _, lab in points], dtype=np.int64)
        box = boxes[0] if boxes else None
        single_click = box is None and len(points) == 1
        masks, scores, _ = predictor.predict(box=box, points=pts, point_labels=labels,
                                             multimask=single_click)
        masks = masks[[int(np.argmax(scores))]]
    else:
        masks, _ = predictor.predict_boxes(np.stack(boxes))
    from napari_devosam.io.write import label_dtype

    out = np.zeros((H, W), dtype=label_dtype(len(masks)))
    for obj_id, mask in enumerate(masks, start=1):
        out[mask & (out == 0)] = obj_id
    return out


def run(args) -> int:
    from napari_devosam.cli.checks import check_model_args
    from napari_devosam.cli.image_args import read_image_arg
    from napari_devosam.engine.coords import clip_box_noted, validate_points
    from napari_devosam.engine.image import blank
    from napari_devosam.io.write import write_tiff
    from napari_devosam.utils.paths import output_file

    if getattr(args, "auto", False):  # issue 12: automatic segmentation
        from napari_devosam.cli.segment_auto import run_auto

        return run_auto(args)
    boxes = [parse_box(b) for b in args.box]
    points = [parse_point(p) for p in args.point]
    if not boxes and not points:
        raise ValueError("no prompt: give at least one --box or --point")
    if points and len(boxes) > 1:
        raise ValueError("--point prompts refine a single object: give at most one --box with them")
    output_file(args.out, inputs=(args.image,))  # before any compute
    plane = select_plane(read_image_arg(args.image, "segment"), args.plane)
    shape = plane.shape[:2]
    for i, b in enumerate(boxes):  # check the prompts before the (slow) model loading
        boxes[i], note = clip_box_noted(b, shape)
        if note:
            print(f"devosam segment: warning: {note}", file=sys.stderr)
    if points:
        validate_points([(r, c) for r, c, _ in points], [lab for *_, lab in points], shape)
    check_model_args(args)  # a mistyped --model or --device fails before any heavy import
    if blank(plane):  # SAM would answer any prompt with a mask of nothing
        write_tiff(args.out, np.zeros(shape, dtype=np.uint16))
        print("devosam segment: warning: the plane is constant (no contrast): nothing to "
              "segment; the labels written are empty", file=sys.stderr)
        print(f"wrote 0 objects to {args.out}")
        return 0

    from napari_devosam.engine.predictor import Predictor
    from napari_devosam.models.loading import load_model

    sam = load_model(chosen_model(args), device=args.device, precision=args.precision,
                     decoder=args.decoder)
    from napari_devosam.engine.embeddings import default_cache_dir

    predictor = Predictor(sam, cache_dir=args.cache_dir or default_cache_dir())
    predictor.set_image(plane)
    labels = segment_plane(predictor, boxes, points)
    write_tiff(args.out, labels)
    n_objects = 1 if points else len(boxes)
    counts = np.bincount(labels.ravel(), minlength=n_objects + 1)
    empty = [i for i in range(1, n_objects + 1) if counts[i] == 0]
    # one line: empty objects keep their ids (the order of the prompts), and are said so
    note = "" if not empty else " (empty)" if n_objects == 1 else (
        f" ({len(empty)} of them empty: {', '.join(str(i) for i in empty)})")
    print(f"wrote {count(n_objects, 'object')}{note} to {args.out}")
    return 0
