"""``devosam track``: propagate seed objects through a T or Z stack; write CTC results + CSV.

Seeds come from a label image (``--seed-labels``: one plane ``(H, W)`` or the whole stack's
labels, label value = track id) or from the image's annotation store (``--annotations``,
read only). Writes ``maskNNN.tif`` + ``res_track.txt`` (Cell Tracking Challenge format),
``tracks.csv``, ``review.csv`` (planes to check) and, with ``--geff``, ``tracks.geff``.
"""

from __future__ import annotations

import sys

import numpy as np

from napari_devosam.cli import MODEL_HELP, add_precision_argument, chosen_model
from napari_devosam.utils.text import count

AXES = ("T", "Z")


def add_parser(subparsers) -> None:
    from napari_devosam.automatic.seeds import STAINS  # in the parser, as segment's

    p = subparsers.add_parser(
        "track",
        help="carry seed objects through time or Z with SAM; write CTC tracks + CSV",
        description=(
            "Propagate the objects of one plane of STACK to the other planes along T or Z "
            "(SAM prompted with each object's previous mask, box and logits), detect "
            "divisions, and write Cell Tracking Challenge results and a tracks CSV."
        ),
    )
    p.add_argument("stack", help="image stack (T, Y, X), (Z, Y, X) or (T, Z, Y, X)")
    seeds = p.add_mutually_exclusive_group(required=True)
    seeds.add_argument("--seed-labels", metavar="LABELS.tif",
                       help="seed labels: a plane (Y, X) or labels of the whole stack")
    seeds.add_argument("--annotations", action="store_true",
                       help="seeds from the image's annotation store (<STACK>.devosam)")
    p.add_argument("--project-dir", default=None, help="where the annotation store lives")
    p.add_argument("--seed-plane", default="0", metavar="INDEX",
                   help="the seed plane: its index along --axis (default 0), or T:Z")
    p.add_argument("--axis", default="T", type=str.upper, choices=AXES,
                   help="follow objects along T (default) or Z")
    p.add_argument("--direction", default="forward", choices=("forward", "backward", "both"))
    p.add_argument("--last", type=int, default=None,
                   help="stop plane index (inclusive; negative counts from the end)")
    p.add_argument("--params", default=None, metavar="FILE.json",
                   help="propagation parameters from a JSON object, flat ({\"min_area\": 20}) "
                        "or by section ({\"track_ends\": {\"min_area\": 20}}); every field "
                        "of PropagationParams (docs/tracking.md); the flags below override it")
    p.add_argument("--stain", choices=STAINS, default=None,
                   help="the movie's stain (default: the --params file's, else auto: decided "
                        "once from up to 9 of the planes tracked)")
    p.add_argument("--no-divisions", action="store_true", help="never split a track")
    p.add_argument("--whole-embedding", action="store_true",
                   help="decode every object on the whole image embedding (SAM's own masks; "
                        "for vit_b 3-7x more decoder time on a CPU, about the same for "
                        "embryo_tiny) instead of a window around it")
    p.add_argument("--window-context", type=float, default=None, metavar="F",
                   help="context around each object's box in its window, as a fraction of "
                        "the box's longer side (default 0; 0.5 decodes like the whole "
                        "embedding on the phantom benchmark)")
    p.add_argument("--window-context-cells", type=int, default=None, metavar="N",
                   help="at least this many embedding grid cells of context (default 3)")
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--decoder", default=None, help="a fine-tuned decoder file to apply")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    add_precision_argument(p)
    p.add_argument("--cache-dir", default=None, help="embedding cache folder")
    p.add_argument("--geff", action="store_true", help="also write tracks.geff (needs geff)")
    p.add_argument("--export-only", action="store_true",
                   help="with --annotations: write the store's tracks as they are (your "
                        "corrections included), without propagating")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run)


def leading_axis(shape: tuple[int, ...], axis: str) -> int:
    """Which leading axis of an image of ``shape`` is ``axis`` ("T" or "Z")."""
    n_lead = len(shape) - 2
    if n_lead < 1:
        raise ValueError(f"the image of shape {shape} has no T or Z axis to track along")
    if n_lead > 2:
        raise ValueError(f"expected (T|Z, Y, X) or (T, Z, Y, X), got shape {shape}")
    index = 0 if n_lead == 1 else AXES.index(axis)
    if shape[index] < 2:
        raise ValueError(f"the {axis} axis has length 1: nothing to propagate to")
    return index


def seed_plane(text: str, shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    """``--seed-plane``: an index along ``axis`` (others 0) or one index per leading axis."""
    from napari_devosam.cli.image_args import plane_arg

    lead = shape[:-2]
    if ":" in text or "," in text:
        return plane_arg(text, np.empty(lead + (1, 1), dtype=np.uint8), "--seed-plane")
    try:
        i = int(text)
    except ValueError:
        raise ValueError(f"bad --seed-plane {text!r}: give an integer or T:Z") from None
    if not -lead[axis] <= i < lead[axis]:
        raise ValueError(f"--seed-plane {i} is outside the axis of length {lead[axis]}")
    plane = [0] * len(lead)
    plane[axis] = i % lead[axis]
    return tuple(plane)


def run(args) -> int:
    from napari_devosam.cli.image_args import read_image_arg
    from napari_devosam.tracking import track_files
    from napari_devosam.utils.paths import output_folder

    inputs = [args.stack] + ([args.seed_labels] if args.seed_labels else [])
    output_folder(args.out, inputs=inputs, writes=track_files.writes_name)  # before any compute
    track_files.check_result_folder(args.out)
    image = read_image_arg(args.stack, "track")
    shape = tuple(image.shape)
    axis = leading_axis(shape, args.axis)
    plane = seed_plane(args.seed_plane, shape, axis)
    if args.export_only and not args.annotations:
        raise ValueError("--export-only writes the tracks of the annotation store: add "
                         "--annotations")
    if args.annotations:
        from napari_devosam.annotation.store import AnnotationStore
        from napari_devosam.tracking.store_tracks import seeds_from_store

        store = AnnotationStore.for_image(args.stack, image, args.project_dir)
        if args.export_only:
            return _export_store(args, store, plane, axis)
        seeds = seeds_from_store(store, plane)
    else:
        from napari_devosam.tracking.request import seeds_from_labels

        labels = read_image_arg(args.seed_labels, "track", "--seed-labels")
        try:
            seeds = seeds_from_labels(labels, shape, plane)
        except ValueError as exc:  # which file is wrong (trial 18)
            raise ValueError(f"--seed-labels: {exc}") from None
    return _track(args, image, _request(args, shape, plane, axis, seeds))


def _request(args, shape, plane, axis, seeds):
    """The ``TrackingRequest`` the arguments describe (``ValueError`` for a bad ``--last``
    or bad parameters)."""
    from pathlib import Path

    from napari_devosam.tracking.request import TrackingRequest

    bounds = None
    if args.last is not None:
        n = shape[axis]
        if not -n <= args.last < n:
            raise ValueError(f"--last {args.last} is outside the axis of length {n} "
                             f"(0..{n - 1}, or -1 for the last plane)")
        last, start = args.last % n, plane[axis]
        bounds = (min(last, start), max(last, start))
    params = _params(args)
    request = TrackingRequest(shape, plane, axis, args.direction, bounds, params, seeds,
                              along_z=args.axis == "Z", out=Path(args.out), geff=args.geff)
    if bounds is not None and not request.route.total:
        raise ValueError(f"--last {args.last} leaves nothing to propagate {args.direction} "
                         f"from the seed plane {plane[axis]}: choose a stop plane "
                         f"{'after' if args.direction == 'forward' else 'before'} it, or "
                         "another --direction")
    return request


def _params(args):
    """``PropagationParams`` from ``--params FILE.json`` (defaults without it), overridden by
    the explicit flags; divisions only along T (``ValueError`` for a bad file or value)."""
    from dataclasses import replace

    from napari_devosam.tracking.params import PropagationParams

    params = PropagationParams() if args.params is None else PropagationParams.from_file(
        args.params)
    flags = {name: value for name, value in (("window_context", args.window_context),
                                             ("window_context_cells", args.window_context_cells))
             if value is not None}
    if args.stain is not None:
        flags["stain"] = args.stain
    if args.whole_embedding:
        flags["decode_window"] = False
    if args.no_divisions or args.axis != "T":
        flags["detect_divisions"] = False
    return replace(params, **flags)


def _track(args, image, request) -> int:
    from napari_devosam.cli.checks import check_model_args

    check_model_args(args)  # the last cheap check, before torch and the model
    from napari_devosam.cli.plane_estimate import WorkEstimate, model_key
    from napari_devosam.engine.embeddings import EmbeddingCache, default_cache_dir
    from napari_devosam.models.loading import load_model
    from napari_devosam.tracking.request import run_tracking
    from napari_devosam.utils.progress import drain_with_bar

    sam = load_model(chosen_model(args), device=args.device, precision=args.precision,
                     decoder=args.decoder)
    cache = EmbeddingCache(args.cache_dir or default_cache_dir())
    work = WorkEstimate("track", "track", sam, model_key(args.model, sam))
    visits = list(dict.fromkeys([tuple(request.plane), *request.route.planes]))
    n_steps = request.route.total  # planes propagated to (the seed plane is embedded only)
    work.say_before([np.asarray(image[p]) for p in visits], cache, n_steps,
                    objects=len(request.seeds or ()), detects=request.params.new_tracks)
    gen = run_tracking(sam, image, request, cache=cache)
    from napari_devosam.tracking.records import RunTally

    tally = RunTally()
    done = drain_with_bar(_pairs(gen, tally), desc="propagating", unit="plane",
                          estimate="plane" if work.first is not None else None)
    work.record_after(n_steps, tally.object_planes, tally.detect_seconds)
    result = done.result
    from napari_devosam.tracking.records import division_count
    from napari_devosam.tracking.result_files import real_track_ids
    from napari_devosam.tracking.review_events import review_events

    # counted in what was written (tracks.csv), so the line and the files agree
    tracks = len({r["track_id"] for r in done.csv_rows})
    n_div = division_count({r["track_id"]: r["parent_id"] for r in done.csv_rows
                            if r["parent_id"]})
    ids = real_track_ids(request.seeds or (), result)
    shown = {r["track_id"] for r in done.csv_rows} if request.out is not None else None
    review = count(len(review_events(result, request.axis, tracks=ids, visible=shown)),
                   'event')
    where = f" (listed in {request.out / 'review.csv'})" if request.review else ""
    from napari_devosam.tracking.track_files import tracks_text

    _say_stain(result.stain)
    print(f"wrote {tracks_text(tracks, len(done.tracks))}, {count(n_div, 'division')} to "
          f"{request.out}; {review} to review{where}")
    _say_blank_planes(result)
    if not result.objects:
        print("devosam track: warning: no object could be followed beyond the seed plane",
              file=sys.stderr)
    return 0


def _say_stain(stain) -> None:
    """The run's stain and why, before the summary (as ``devosam segment`` says it); when
    ``--stain`` names the stain the movie does not read as, nothing: ``_pairs`` warned on
    stderr as the run started (trial 18: at its end, the warning came too late)."""
    if stain is not None and not stain.contradicted:  # a contradicted one: said before
        print(stain.note)


def _say_blank_planes(result) -> None:
    """One warning line naming the blank planes the run stepped over (as ``devosam segment``
    warns of them), not only their rows in review.csv."""
    from napari_devosam.tracking.plane_checks import BLANK
    from napari_devosam.utils.text import plane_name

    blanks = sorted({item.plane for item in result.review if item.reason == BLANK})
    if blanks:
        names = ", ".join(plane_name(p) for p in blanks[:5]) + (", ..." if len(blanks) > 5 else "")
        print(f"devosam track: warning: {count(len(blanks), 'blank plane')} (no finite value, "
              f"or constant) skipped, tracks go on after: {names}", file=sys.stderr)


def _export_store(args, store, plane, axis) -> int:
    from napari_devosam.tracking.store_tracks import export_store_tracks

    done = export_store_tracks(args.out, store, plane, axis, geff=args.geff,
                               along_z=args.axis == "Z")
    from napari_devosam.tracking.track_files import tracks_text

    print(f"wrote {tracks_text(done['tracks'], done['ctc_tracks'])}, "
          f"{count(done['divisions'], 'division')} "
          f"as annotated (nothing propagated) to {done['folder']}")
    return 0


def _pairs(gen, tally=None):
    """``Progress`` -> ``(done, total)`` for the progress bar, keeping the return value;
    ``tally`` (a ``RunTally``) adds each event up, for ``utils.estimate.record_run``."""
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        if tally is not None:
            tally.add(p)
        if p.done == 0 and getattr(p.stain, "contradicted", False):  # before the run, not
            print(f"devosam track: warning: {p.stain.note}", file=sys.stderr)  # after it
        yield p.done, p.total
