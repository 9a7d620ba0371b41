"""``devosam embed``: precompute the SAM embeddings of every plane into the on-disk cache.

Later ``devosam segment --cache-dir``, ``Predictor(cache_dir=...)`` and the annotator find
them there (the cache is keyed by pixel data, normalisation, model and package version, so a
changed image or model is recomputed, never mixed up).
"""

from __future__ import annotations

import time

from napari_devosam.cli import MODEL_HELP, add_precision_argument, chosen_model
from napari_devosam.utils.progress import drain_with_bar
from napari_devosam.utils.text import count


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "embed",
        help="precompute and cache the SAM embeddings of an image or stack",
        description=(
            "Compute SAM image embeddings for every plane of IMAGE_OR_STACK (leading T and/or "
            "Z axes before Y, X) and store them in the embedding cache (fp16, one file per "
            "plane). Planes already cached are skipped."
        ),
    )
    p.add_argument("image", metavar="IMAGE_OR_STACK", help="image file (TIFF, PNG, ...)")
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    add_precision_argument(p)
    p.add_argument("--cache-dir", default=None,
                   help="cache folder (default: the user cache dir's embeddings/, or "
                        "$DEVOSAM_CACHE_DIR/embeddings)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="planes per encoder batch (default: 1 on the CPU, 4 on a GPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from napari_devosam.cli.checks import check_model_args
    from napari_devosam.cli.image_args import read_image_arg
    from napari_devosam.utils.paths import output_folder

    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    from napari_devosam.utils.cache import cache_root  # no torch, unlike engine/

    cache_dir = output_folder(args.cache_dir or cache_root() / "embeddings",  # the default
                              what="cache folder")  # of engine.embeddings.default_cache_dir
    stack = read_image_arg(args.image, "embed")
    check_model_args(args)  # before the heavy imports

    from napari_devosam.cli.plane_estimate import model_key, record_after, say_before
    from napari_devosam.engine.embeddings import EmbeddingCache, embed_stack
    from napari_devosam.engine.stacks import iter_planes
    from napari_devosam.models.loading import load_model

    sam = load_model(chosen_model(args), device=args.device, precision=args.precision)
    batch_size = args.batch_size or (1 if sam.pixel_mean.device.type == "cpu" else 4)
    cache = EmbeddingCache(cache_dir, max_items=0)
    encoded: list[int] = []  # planes that went through the encoder (the rest were cached)
    hook = sam.image_encoder.register_forward_hook(lambda m, i, out: encoded.append(len(out)))
    key = model_key(args.model, sam)
    start = time.perf_counter()
    try:
        planes = [plane for _, plane in iter_planes(stack)]
        total = len(planes)
        say_before("embed", sam, planes, cache, key)  # before the planes are embedded
        drain_with_bar(embed_stack(sam, stack, cache=cache, batch_size=batch_size, keep=False),
                       desc="embedding", unit="plane", enabled=not args.no_progress)
    finally:
        hook.remove()
    elapsed = time.perf_counter() - start
    computed = sum(encoded)
    if cache.disk_error is not None:  # filling the cache is this command's whole job
        raise RuntimeError(f"{cache.disk_error}; choose another folder with --cache-dir")
    record_after(key, sam)
    cached = total - computed
    if computed == 0:
        what = "the plane was" if total == 1 else f"all {count(total, 'plane')} were"
        print(f"{what} already cached; cache: {cache_dir}")
    else:
        also = f" ({cached} more already cached)" if cached else ""
        print(f"embedded {count(computed, 'plane')} in {elapsed:.1f} s{also}; cache: {cache_dir}")
    return 0
