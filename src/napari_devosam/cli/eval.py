"""``devosam eval``: mean IoU of box- and point-prompted masks on annotated data."""

from __future__ import annotations

import json

from napari_devosam.cli import MODEL_HELP, add_precision_argument, chosen_model
from napari_devosam.utils.progress import drain_with_bar


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="measure a model/decoder on annotated images (mean IoU)",
        description=(
            "Predict one mask per ground-truth object from its box and one from a single "
            "point at its interior-most pixel, compare with the ground truth at full "
            "resolution and print the mean IoU per prompt kind. DATA is a bundle or a folder "
            "with images/ and labels/ of matching names. Compare decoders with --decoder."
        ),
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="bundle or images/+labels/ folder")
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--decoder", default=None, help="fine-tuned decoder file to apply")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    add_precision_argument(p)
    p.add_argument("--cache-dir", default=None,
                   help="embedding cache folder (default: the user cache dir's embeddings/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true",
                   help="print the result as one JSON object on the last line")
    p.set_defaults(func=run)


def run(args) -> int:
    from napari_devosam.cli.checks import check_model_args
    from napari_devosam.finetune.data import load_planes

    load_planes(args.data)  # bad data and arguments fail before any heavy import
    check_model_args(args)
    from napari_devosam.engine.embeddings import EmbeddingCache, default_cache_dir
    from napari_devosam.finetune.evaluate import iter_evaluate
    from napari_devosam.models.loading import load_model

    sam = load_model(chosen_model(args), device=args.device, precision=args.precision,
                     decoder=args.decoder)
    cache = EmbeddingCache(args.cache_dir or default_cache_dir(), max_items=0)
    scores = drain_with_bar(iter_evaluate(args.data, sam, cache=cache), desc="evaluating",
                            unit="plane", enabled=not args.no_progress)
    n = scores["n_objects"]
    print(f"box prompts:   mean IoU {scores['box_iou']:.3f}  ({n} objects)")
    print(f"point prompts: mean IoU {scores['point_iou']:.3f}  ({n} objects)")
    print(f"overall:       mean IoU {scores['mean_iou']:.3f}  ({scores['n_planes']} planes)")
    if args.json:
        print(json.dumps({"model": args.model, "decoder": args.decoder, **scores}))
    return 0
