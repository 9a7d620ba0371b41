"""``devosam import-tracks``: a tracking result made by another tool into a movie's store.

``devosam import-tracks RESULT_DIR --image MOVIE`` reads a Cell Tracking Challenge result
(``maskNNN.tif`` + ``res_track.txt``); with ``--geff FILE``, RESULT_DIR is the mask folder
and the tracks come from the GEFF graph. The tracks land in MOVIE's annotation store (one
undo step), where SAM corrections, propagation and the lineage edits work on them; ``devosam
track MOVIE --annotations --export-only`` writes them back out.
"""

from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "import-tracks",
        help="import a CTC result or a GEFF graph into a movie's annotation store",
        description=(
            "Read the tracks of another tool (a Cell Tracking Challenge result folder: "
            "maskNNN.tif + res_track.txt; or a GEFF graph with its mask folder) into the "
            "annotation store of MOVIE, checked first: nothing is written when the masks "
            "and tracks disagree or do not fit the movie."
        ),
    )
    p.add_argument("result_dir", metavar="RESULT_DIR",
                   help="CTC result folder, or CTC tracking truth (man_trackNNN.tif + "
                        "man_track.txt); with --geff: the folder of maskNNN.tif files")
    p.add_argument("--image", required=True, metavar="MOVIE",
                   help="the movie the tracks belong to: (T, Y, X) or (T, Z, Y, X)")
    p.add_argument("--geff", default=None, metavar="FILE",
                   help="a GEFF graph (zarr) giving the tracks; needs the geff package")
    p.add_argument("--replace", action="store_true",
                   help="replace the objects the movie's store already holds")
    p.add_argument("--project-dir", default=None, help="where the annotation store lives")
    p.set_defaults(func=run)


def run(args) -> int:
    from napari_devosam.annotation.store import AnnotationStore
    from napari_devosam.cli.image_args import read_image_arg
    from napari_devosam.tracking.import_tracks import (
        TrackImportError,
        import_ctc,
        import_geff,
        mask_files,
    )
    from napari_devosam.utils.progress import drain_with_bar

    mask_files(args.result_dir)  # a wrong folder is refused before the movie is read
    image = read_image_arg(args.image, "import-tracks")
    store = AnnotationStore.for_image(args.image, image, args.project_dir)
    if args.geff:
        gen = import_geff(store, args.geff, args.result_dir, replace=args.replace)
    else:
        gen = import_ctc(store, args.result_dir, replace=args.replace)
    try:
        summary = drain_with_bar(gen, desc="importing", unit="frame")
    except TrackImportError as exc:
        if exc.needs_replace:
            raise TrackImportError(f"{exc}; run again with --replace") from None
        raise
    print(f"{summary.text()} into {store.folder}")
    return 0
