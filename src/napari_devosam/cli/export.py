"""``devosam export``: committed annotations -> a training bundle (see docs/export.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from napari_devosam.utils.progress import drain
from napari_devosam.utils.text import count


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export committed annotations to a training bundle",
        description=(
            "Write the annotated planes of IMAGE with their instance labels into a bundle "
            "(images/, labels/, manifest.json, measurements.csv, annotations.json). The "
            "labels come from --labels (a label image of the same shape) or from an "
            "annotation store (--store, default: the store next to IMAGE). Exporting again "
            "into the same bundle adds or updates planes and keeps the others."
        ),
    )
    p.add_argument("image", help="the image file (TIFF, PNG, ...)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--labels", help="a label image file of the same shape as IMAGE")
    source.add_argument("--store", help="an annotation store folder (default: IMAGE's store)")
    p.add_argument("--project-dir", default=None,
                   help="the folder the annotator kept stores in (its --project-dir)")
    p.add_argument("--out", required=True, help="the bundle folder (created or updated)")
    p.add_argument("--planes", help="planes to export, comma-separated: 0,3,7 for a (T, Y, X) "
                                    "stack, 1:4,2:0 for (T, Z, Y, X) (default: all with objects)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def _planes(text: str | None):
    if not text:
        return None
    try:
        return [tuple(int(i) for i in part.split(":")) for part in text.split(",") if part]
    except ValueError as exc:
        raise ValueError(f"--planes must be comma-separated integers, got {text!r}") from exc


def _print_progress(value) -> None:
    done, total = value
    print(f"\rexporting {done}/{total}", end="", file=sys.stderr, flush=True)


def run(args) -> int:
    from napari_devosam.annotation.store import AnnotationStore
    from napari_devosam.annotation.store_location import locate_store
    from napari_devosam.cli.image_args import read_image_arg
    from napari_devosam.export.bundle import export_bundle, export_store
    from napari_devosam.utils.paths import output_folder

    output_folder(args.out, what="bundle folder")  # before any compute
    image_path = Path(args.image)
    image = read_image_arg(image_path, "export")
    if args.labels:
        labels = read_image_arg(args.labels, "export", "--labels")
        gen = export_bundle(args.out, image, labels, source=str(image_path.resolve()),
                            plane_indices=_planes(args.planes))
    else:
        folder = (Path(args.store) if args.store else
                  locate_store(image_path.expanduser(), image, args.project_dir).folder)
        if not (folder / "store.json").is_file():
            raise FileNotFoundError(f"no annotation store at {folder}; pass --labels or --store")
        store = AnnotationStore(folder)
        if args.planes:
            raise ValueError("--planes works with --labels; a store exports all its planes")
        gen = export_store(args.out, store, image, source=str(image_path.resolve()))
    summary = drain(gen, None if args.json else _print_progress)
    if args.json:
        print(json.dumps(summary))
    else:
        print(file=sys.stderr)
        print(f"wrote {count(len(summary['files']), 'plane')} "
              f"({count(summary['objects'], 'object')}) to "
              f"{summary['bundle']}; the bundle now holds "
              f"{count(summary['total_files'], 'plane')} and "
              f"{count(summary['total_objects'], 'object')}")
    return 0
