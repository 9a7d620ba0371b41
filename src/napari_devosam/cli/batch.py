"""``devosam batch``: many images through embed / auto / track / export on a dask cluster.

Outputs in ``--out``: the labels (``<stem>.ome.zarr`` or ``<stem>_labels.tif``),
``<stem>_tracks/`` (CTC + tracks.csv), ``<stem>_bundle/`` and ``manifest.json`` (the state of
each task; rerunning the same command resumes). Exit code 1 when any input failed.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from napari_devosam.cli import MODEL_HELP, add_precision_argument, chosen_model
from napari_devosam.utils.text import count

STEPS_HELP = ("comma-separated steps (default embed,auto): embed = fill the embedding cache; "
              "auto = label every plane as `devosam segment --auto`; track = propagate the "
              "objects of the first plane through T (seeds: --seed-labels, else the auto "
              "labels of plane 0) into <stem>_tracks/; export = a training bundle of the auto "
              "labels in <stem>_bundle/. Not available in batch yet: finetune, eval")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "batch", help="run many images through embed/auto/track/export on a dask cluster",
        description=(
            "Process INPUT files, folders (their images) or globs on a dask.distributed "
            "cluster: a local one of --workers processes, or --scheduler ADDRESS. One task "
            "per file and step; manifest.json in --out records each; rerunning the same "
            "command skips finished work. See docs/batch.md."))
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files (TIFF, OME-TIFF, PNG; CZI/ND2/LIF with the bioio "
                        "extra), folders or quoted globs")
    p.add_argument("--out", required=True, help="output folder (not inside an input folder)")
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--decoder", default=None, help="a fine-tuned decoder file to apply")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ... (on each worker)")
    add_precision_argument(p)
    p.add_argument("--steps", default="embed,auto", help=STEPS_HELP)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=2,
                       help="worker processes of the local cluster (default 2, 1 thread each)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="connect to a running dask scheduler (tcp://host:8786) instead")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for --scheduler (default 10)")
    p.add_argument("--format", dest="fmt", choices=("zarr", "tif"), default="zarr",
                   help="labels as OME-Zarr <stem>.ome.zarr (default; needs ome-zarr) or "
                        "<stem>_labels.tif")
    p.add_argument("--seed-labels", default=None, metavar="PATTERN",
                   help="track seeds: a label file, or a pattern with {stem}, e.g. "
                        "seeds/{stem}_seeds.tif")
    p.add_argument("--cache-dir", default=None, help="embedding cache folder (shared)")
    p.add_argument("--retries", type=int, default=1,
                   help="retries of a task that raised (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    from napari_devosam.automatic.core import MODES
    from napari_devosam.automatic.seeds import STAINS

    p.add_argument("--mode", choices=MODES, default="seeded", help="auto step: as segment")
    p.add_argument("--stain", choices=STAINS, default="auto", help="auto step: as segment")
    p.add_argument("--min-area", type=int, default=None,
                   help="auto step: smallest object kept, pixels (default 30)")
    p.set_defaults(func=run)


def _options(args):
    from napari_devosam.automatic.postprocess import MIN_AREA
    from napari_devosam.batch.outputs import zarr_available
    from napari_devosam.batch.runner import BatchOptions
    from napari_devosam.models.precision import resolve_precision

    if args.fmt == "zarr" and not zarr_available():
        raise RuntimeError("--format zarr needs ome-zarr: pip install "
                           "'napari-devosam[zarr]', or use --format tif")
    opts = BatchOptions(
        steps=_steps(args),
        model=args.model, device=args.device, decoder=args.decoder,
        precision=resolve_precision(args.precision),  # here, not on each worker's environment
        fmt=args.fmt,
        cache_dir=args.cache_dir, mode=args.mode, stain=args.stain,
        min_area=MIN_AREA if args.min_area is None else args.min_area,
        seed_labels=args.seed_labels, retries=args.retries)
    opts.check()
    return opts


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def run(args) -> int:
    from napari_devosam.batch.runner import BatchOptions
    from napari_devosam.cli.checks import check_model_args
    from napari_devosam.io.find import find_inputs
    from napari_devosam.utils.paths import output_folder

    # the cheap checks first: no torch, no cluster yet
    BatchOptions(steps=_steps(args), seed_labels=args.seed_labels).check()
    out = output_folder(args.out)
    files = find_inputs(args.inputs, out)
    check_model_args(args)
    opts = _options(args)
    if _nothing_to_do(args, files, out, opts):
        return 0
    from napari_devosam.batch.cluster import open_client
    from napari_devosam.batch.runner import run_batch
    from napari_devosam.cli.batch_estimate import record_after_batch, say_before_batch

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)  # SIGTERM: close the cluster, keep manifest
    start = time.perf_counter()
    with open_client(args.workers, args.scheduler, args.timeout) as client:
        opts.model = chosen_model(args)  # said once inputs and cluster are known good
        say_before_batch(files, out.expanduser().resolve(), opts)  # before any task starts
        gen = run_batch(client, files, out, opts)
        manifest = _drive(gen, not args.no_progress and sys.stdout.isatty())
    record_after_batch(manifest, files, opts)
    return _report(manifest, files, opts.steps, time.perf_counter() - start)


def _nothing_to_do(args, files, out, opts) -> bool:
    """True (and said on stdout) when the manifest of ``out`` has every step of every file
    done for these settings: then no cluster is started and no model loaded."""
    from dataclasses import replace

    from napari_devosam.batch.manifest import NAME
    from napari_devosam.cli.batch_estimate import files_to_do
    from napari_devosam.models.defaults import resolve_model

    out = out.expanduser().resolve()
    settings = replace(opts, model=resolve_model(args.model)[0]).settings()
    if not files or files_to_do(files, out, settings, opts.steps):
        return False
    what = "the image is" if len(files) == 1 else f"all {count(len(files), 'image')} are"
    print(f"devosam batch: {what} already done (manifest {out / NAME}); nothing to do")
    return True


def _steps(args) -> tuple[str, ...]:
    return tuple(s.strip() for s in args.steps.split(",") if s.strip())


def _drive(gen, bar: bool):
    """Run the batch generator; dask's progress bar (distributed.progress) in a thread."""
    from distributed import progress

    try:
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                return stop.value
            if bar and p.done == 0 and p.futures:
                threading.Thread(target=progress, args=(p.futures,), daemon=True).start()
    finally:
        gen.close()


def _report(manifest, files, steps, seconds: float) -> int:
    rows, failed, planes = [], 0, 0
    for path in files:
        rec = manifest.files.get(str(path), {})
        states = {s: rec.get("steps", {}).get(s, {}) for s in steps}
        bad = [f"{s}: {r.get('error', '')}" for s, r in states.items()
               if r.get("state") == "failed"]
        failed += bool(bad)
        planes += rec.get("planes") or 0
        took = sum(r.get("seconds", 0) for r in states.values())
        status = "FAILED " + "; ".join(bad) if bad else "ok"
        rows.append((path.name, str(rec.get("planes") or "-"), f"{took:.1f}", status))
    width = max([len(r[0]) for r in rows] + [4])
    print(f"\n{'file':<{width}}  planes  seconds  status")
    for name, n, took, status in rows:
        print(f"{name:<{width}}  {n:>6}  {took:>7}  {status}")
    print(f"{count(len(files), 'file')}, {count(planes, 'plane')}, {seconds:.1f} s, "
          f"{count(failed, 'failure')}; "
          f"manifest: {manifest.path}")
    return 1 if failed else 0
