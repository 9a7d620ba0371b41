"""``devosam annotate [IMAGE ...] [--sample]``: napari with the image and the SAM annotator docked.

Without an image (or with ``--sample``) it opens the synthetic embryo time-lapse. A folder, a
glob or several files open as an image series (``series.image_series.ImageSeries``): one image
at a time, next/previous, done marks in the series' folder. The model chosen with ``--model``
loads in the background (an official one is downloaded on first use with a progress bar in
napari's activity dock). Default: the one rule of ``models.defaults`` (``$DEVOSAM_CHECKPOINT``,
else the best cached official checkpoint, else the bundled model), said on stderr, so a first
start offline draws real masks and the panel says which model is active.
"""

from __future__ import annotations

from pathlib import Path

from napari_devosam.cli import MODEL_HELP, add_precision_argument, chosen_model


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
    p.add_argument("--model", default=None, help=MODEL_HELP)
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
    from napari_devosam.io.read import read_image

    return read_image(Path(args.image).expanduser().absolute())


def _open_image(viewer, args, data, series) -> None:
    if (args.image is None and series is None) or args.sample:
        from napari_devosam.sample_data import embryo_timelapse

        for data, kwargs, _ in embryo_timelapse():
            viewer.add_image(data, **kwargs)
    if args.image is not None:
        from napari_devosam._qt.image_open import add_image_file

        add_image_file(viewer, args.image, data)


def check_display(env=None, platform: str | None = None) -> None:
    """Refuse to start napari without a screen, before Qt can abort the process.

    On Linux, Qt needs an X11 or Wayland display; without one it aborts (SIGABRT) with a
    misleading message about missing xcb libraries. Raises ``RuntimeError`` with one line naming
    ``DISPLAY`` and ``xvfb-run`` when ``DISPLAY``/``WAYLAND_DISPLAY`` is unset, or names a local
    X server whose socket does not exist. ``QT_QPA_PLATFORM`` set by the user is respected.
    """
    import os
    import sys

    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux") or env.get("QT_QPA_PLATFORM") or \
            env.get("WAYLAND_DISPLAY"):
        return
    hint = ("on a machine without a screen run it under a virtual one: "
            "`xvfb-run -a devosam annotate ...` (Debian/Ubuntu: apt-get install xvfb xauth)")
    display = env.get("DISPLAY", "")
    if not display:
        raise RuntimeError(f"no display: DISPLAY is not set; {hint}")
    host, _, number = display.partition(":")
    number = number.split(".")[0]
    if not host and number.isdigit() and not Path(f"/tmp/.X11-unix/X{number}").exists():
        raise RuntimeError(f"no X server answers at DISPLAY={display}; {hint}")


def run(args) -> int:
    args.image_inputs = list(args.image)
    series = _series(args)
    if args.decoder is not None and not Path(args.decoder).expanduser().is_file():
        raise FileNotFoundError(f"decoder file {args.decoder} does not exist")
    data = _read_image(args)
    check_display()
    # segment_anything (torchvision, triton) before napari's OpenGL: see napari_devosam._qt
    import napari
    import segment_anything  # noqa: F401

    from napari_devosam._qt.annotator_widget import AnnotatorWidget

    viewer = napari.Viewer(title="napari-devosam")
    _open_image(viewer, args, data, series)
    widget = AnnotatorWidget(viewer, project_dir=args.project_dir, autoload=False)
    viewer.window.add_dock_widget(widget, name="SAM annotator", area="right")
    from napari_devosam._qt.presentation import fill_screen

    fill_screen(viewer)  # the window uses the screen; the dock's tabs fit 1600 x 1000
    if series is not None:
        widget.series_panel.open(args.image_inputs)
    widget.model_panel.select(chosen_model(args), args.device, args.precision)
    if args.decoder is not None:
        decoder = str(Path(args.decoder).expanduser())

        def apply_once():
            widget.model_changed.disconnect(apply_once)
            widget.use_decoder(decoder)

        widget.model_changed.connect(apply_once)
    widget.model_panel.load()
    napari.run()
    return 0
