"""``devosam segment IMAGE --auto``: automatic instance labels for one plane or a stack.

Called from ``cli/segment.py`` when ``--auto`` is given. With ``--plane`` one plane is written
as ``(H, W)`` labels (uint16, uint32 beyond 65,535 objects: ``io.write.label_dtype``);
without it every plane of the image, as an array of the image's
leading shape plus ``(H, W)`` (labels numbered per plane), with neighbour seeding along the
last leading axis. Planes without an embryo come out empty with a warning on stderr. The file
is written only when every plane is done (an interrupted run writes nothing).
"""

from __future__ import annotations

import sys

import numpy as np


def add_arguments(p) -> None:
    """The ``--auto`` flags of ``devosam segment``."""
    from napari_devosam.automatic.core import MODES
    from napari_devosam.automatic.seeds import STAINS

    g = p.add_argument_group("automatic segmentation (--auto)")
    g.add_argument("--auto", action="store_true",
                   help="segment every cell without prompts (one plane with --plane, else all)")
    g.add_argument("--mode", choices=MODES, default="seeded",
                   help="seeded: one prompt per seed from the stain (default); grid: SAM's "
                        "automatic mask generator")
    g.add_argument("--stain", choices=STAINS, default="auto",
                   help="what is bright: membranes or nuclei (default: decided from the "
                        "image, once for a whole stack)")
    g.add_argument("--diameter", type=float, default=None, metavar="PX",
                   help="cell (membrane stain) or nucleus (nuclear stain) diameter in pixels; "
                        "scales the seed detection and the size filter (default: estimated "
                        "from each plane)")
    g.add_argument("--no-second-round", dest="second_round", action="store_false",
                   help="nuclear stain: do not look again, where no object was found, for "
                        "nuclei dimmer than the stain seeds' threshold")
    g.add_argument("--min-area", type=int, default=None,
                   help="smallest object kept, in pixels (default: from the cell size, 30 "
                        "for cells ~14-40 px across)")


def run_auto(args) -> int:
    from napari_devosam.cli.image_args import plane_arg, read_image_arg
    from napari_devosam.engine.stacks import iter_planes, leading_shape
    from napari_devosam.utils.paths import output_file
    from napari_devosam.utils.text import count, plane_name

    if args.box or args.point:
        raise ValueError("--auto takes no --box or --point prompts")
    min_area = args.min_area
    if min_area is not None and min_area < 0:
        raise ValueError(f"--min-area must be >= 0 pixels, got {min_area}")
    diameter = getattr(args, "diameter", None)
    from napari_devosam.automatic.limits import check_diameter, check_plane_size

    check_diameter(diameter, name="--diameter")
    output_file(args.out, inputs=(args.image,))  # before any compute
    image = read_image_arg(args.image, "segment")
    lead = leading_shape(image)
    planes = [plane_arg(args.plane, image)] if args.plane is not None else None
    check_plane_size(image.shape[len(lead):])  # before the model loads
    check_diameter(diameter, image.shape[len(lead):], name="--diameter")
    from napari_devosam.cli.checks import check_model_args

    check_model_args(args)  # the last cheap check: then torch and the model
    from napari_devosam.automatic.core import grid_note, iter_segment_stack
    from napari_devosam.cli import chosen_model
    from napari_devosam.cli.plane_estimate import WorkEstimate, model_key
    from napari_devosam.engine.embeddings import default_cache_dir
    from napari_devosam.engine.predictor import Predictor
    from napari_devosam.io.write import label_dtype, write_tiff
    from napari_devosam.models.loading import load_model
    from napari_devosam.utils.estimate import auto_step

    sam = load_model(chosen_model(args), device=args.device, precision=args.precision,
                     decoder=args.decoder)
    predictor = Predictor(sam, cache_dir=args.cache_dir or default_cache_dir())
    note = grid_note(sam) if args.mode == "grid" else None
    if note:
        print(f"devosam segment: warning: {note}", file=sys.stderr)
    work = WorkEstimate("segment", auto_step(args.mode), sam, model_key(args.model, sam))
    if planes is None and len(lead):  # several planes: say how long before the first
        work.say_before([p for _, p in iter_planes(image)], predictor.cache,
                        normalization=predictor.normalization)
    else:  # one plane: no estimate, but its time is recorded for the next run
        one = image if planes is None else image[planes[0]]
        work.start([np.asarray(one)], predictor.cache, predictor.normalization)
    gen = iter_segment_stack(image, predictor, planes, mode=args.mode, stain=args.stain,
                             min_area=min_area, diameter=diameter,
                             second_round=getattr(args, "second_round", True))
    results = _drain(gen, work)
    work.record_after(len(results))
    shape = image.shape[len(lead):len(lead) + 2]
    if planes is not None:
        out = results[planes[0]].labels
    else:
        out = np.zeros((*lead, *shape), dtype=np.int32)
        for index, res in results.items():
            out[index] = res.labels
    for index, res in results.items():
        if res.message:
            print(f"devosam segment: warning: {plane_name(index)}: {res.message}",
                  file=sys.stderr)
    from napari_devosam.automatic.report import stain_against, summary_lines

    against = stain_against(results)
    for line in summary_lines(results):
        if against is None or line != against.note:  # said once, as a warning
            print(line)
    if against is not None:
        print(f"devosam segment: warning: {against.note}", file=sys.stderr)
    write_tiff(args.out, out.astype(label_dtype(out), copy=False))
    n = sum(r.n_objects for r in results.values())
    print(f"wrote {count(n, 'object')} on {count(len(results), 'plane')} to {args.out} "
          f"({args.mode} mode)")
    return 0


def _drain(gen, work=None):
    """Run the generator to its end, with a progress line on stderr for stacks; ``work``
    (a ``WorkEstimate``) says its estimate measured on the first plane, on its own line."""
    mid_line = False  # the progress line has no newline yet: an interruption ends it first
    try:
        while True:
            try:
                done, total = next(gen)
            except StopIteration as stop:
                return stop.value
            if total > 1:
                mid_line = done < total
                print(f"\rsegmenting planes: {done}/{total}", end="" if mid_line else "\n",
                      file=sys.stderr)
                if work is not None and work.progress(done, total, say=False):
                    print(file=sys.stderr)
                    work.say(work.last)
                    mid_line = False
    except BaseException:
        if mid_line:
            print(file=sys.stderr)
        raise
