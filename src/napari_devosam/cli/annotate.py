"""``devosam annotate [IMAGE ...] [--sample]``: napari with the image and the SAM annotator docked.

Without an image (or with ``--sample``) it opens the synthetic embryo time-lapse. A folder, a
glob or several files open as an image series (``series.ImageSeries``): one image at a time,
next/previous, done marks in the series' folder. The model
chosen with ``--model`` loads in the background (an official one is downloaded on first use
with a progress bar in napari's activity dock). Default: ``$DEVOSAM_CHECKPOINT``, else the
first cached official model, else the bundled ``embryo_tiny`` (alias ``demo``), so a first
start offline draws real masks and the panel says which model is active.
"""

from __future__ import annotations

from pathlib import Path

from napari_devosam.cli import add_precision_argument


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "annotate",
        help="open napari with an image (or the sample) and the SAM annotator",
        description="Open napari with IMAGE (default: the synthetic embryo sample) and the SAM "
                    "annotator docked. Committed objects are saved at once in an annotation "
                    "store next to the image (or in --project-dir, or the user data folder "
                    "for the sample) and restored when the same image is opened again.",
    )
    p.add_argument("image", nargs="*", default=[],
                   help="image file (TIFF, PNG, ...): a plane or a stack with T/Z axes first; "
                        "a folder, a glob or several files open as an image series")
    p.add_argument("--sample", action="store_true",
                   help="open the synthetic membrane-stained embryo time-lapse")
    p.add_argument("--model", default=None,
                   help="embryo_tiny (bundled, offline; alias demo), vit_b, vit_l, vit_h or a "
                        "checkpoint path; default: $DEVOSAM_CHECKPOINT, else the first cached "
                        "official model, else embryo_tiny")
    p.add_argument("--decoder", default=None, help="a fine-tuned decoder file to use")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or mps (default: auto, or "
                                                  "$DEVOSAM_DEVICE)")
    add_precision_argument(p)
    p.add_argument("--project-dir", default=None,
                   help="folder for annotation stores (default: next to the image)")
    p.set_defaults(func=run)


def _series(args):
    """The ``ImageSeries`` the arguments name (a folder, a glob, several files), else None;
    read before napari opens, so that naming no image fails here."""
    single = len(args.image) == 1 and Path(args.image[0]).expanduser().is_file()
    if not args.image or single:
        args.image = args.image[0] if single else None
        return None
    from napari_devosam.series.image_series import ImageSeries

    args.image = None
    return ImageSeries.open(args.image_inputs)


def _read_image(args):
    """The image's pixels, read before napari opens: a file that is not an image fails here."""
    if args.image is None:
        return None
    from napari_devosam.export.image_io import read_image

    return read_image(Path(args.image).expanduser().absolute())


def _open_image(viewer, args, data, series) -> None:
    if (args.image is None and series is None) or args.sample:
        from napari_devosam.sample_data import embryo_timelapse

        for data, kwargs, _ in embryo_timelapse():
            viewer.add_image(data, **kwargs)
    if args.image is not None:
        from napari_devosam._qt.image_open import add_image_file

        add_image_file(viewer, args.image, data)


def run(args) -> int:
    args.image_inputs = list(args.image)
    series = _series(args)
    if args.decoder is not None and not Path(args.decoder).expanduser().is_file():
        raise FileNotFoundError(f"decoder file {args.decoder} does not exist")
    data = _read_image(args)
    # segment_anything (torchvision, triton) before napari's OpenGL: see napari_devosam._qt
    import napari
    import segment_anything  # noqa: F401

    from napari_devosam._qt.annotator_widget import AnnotatorWidget

    viewer = napari.Viewer(title="napari-devosam")
    _open_image(viewer, args, data, series)
    widget = AnnotatorWidget(viewer, project_dir=args.project_dir, autoload=False)
    viewer.window.add_dock_widget(widget, name="SAM annotator", area="right")
    if series is not None:
        widget.series_panel.open(args.image_inputs)
    widget.model_panel.select(args.model, args.device, args.precision)
    if args.decoder is not None:
        decoder = str(Path(args.decoder).expanduser())

        def apply_once():
            widget.model_changed.disconnect(apply_once)
            widget.use_decoder(decoder)

        widget.model_changed.connect(apply_once)
    widget.model_panel.load()
    napari.run()
    return 0
