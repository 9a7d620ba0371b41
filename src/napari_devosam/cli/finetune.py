"""``devosam finetune``: train SAM's mask decoder on annotated data (see docs/finetune.md)."""

from __future__ import annotations

import json
import sys
import time

from napari_devosam.cli import MODEL_HELP, add_precision_argument, chosen_model
from napari_devosam.utils.text import count

NO_GAIN_EXIT_CODE = 3  # the run finished but did not beat the starting decoder


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune SAM's mask decoder on annotated images",
        description=(
            "Train the mask decoder of a SAM model on annotated planes: each DATA is a bundle "
            "written by 'devosam export' or a folder with images/ and labels/ holding files of "
            "matching names (TIFF/PNG). The image encoder stays frozen (embeddings are computed "
            "once, through the embedding cache); --train-whole on (or auto: the bundled models) "
            "trains the encoder too (the file written is then a model for --model). The best "
            "decoder by validation IoU is written to --out (safetensors); load it with --decoder "
            "or in the annotator. Before training it prints an estimate of the run time, measured"
            " on a few steps. Training counts optimisation steps: it stops at the step budget "
            "(--steps), at --max-minutes (default 8), or after --patience validation rounds "
            "without gain (counted from --min-steps on). When no validation round beats the "
            "starting decoder, nothing is written and the "
            f"exit code is {NO_GAIN_EXIT_CODE}."
        ),
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="bundle or images/+labels/ folder")
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--out", required=True, help="decoder file to write (.safetensors)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    add_precision_argument(p)
    add_settings_arguments(p)
    p.add_argument("--cache-dir", default=None,
                   help="embedding cache folder (default: the user cache dir's embeddings/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true",
                   help="print the result as one JSON object on the last line")
    p.set_defaults(func=run)


class _Bars:
    """tqdm bars on stderr for the embedding and training phases."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.phase = None
        self.first = None  # utils.clocks.FirstUnit of the phase
        self.last = time.perf_counter()  # when the previous event came: a phase starts there

    def update(self, ev) -> None:
        previous, self.last = self.last, time.perf_counter()
        if ev.phase == "validate":
            line = f"{ev.message}" if ev.message else f"validation IoU {ev.val_iou:.3f}"
            self._write(line)
            return
        if ev.phase == "embed" and ev.message:  # the run's estimate, measured before it
            self._write(ev.message)
        if not self.enabled or ev.phase not in ("embed", "train"):
            return
        if self.phase != ev.phase:
            self.close()
            from tqdm import tqdm

            desc = "embedding" if ev.phase == "embed" else "training"
            unit = "plane" if ev.phase == "embed" else "step"
            self.bar = tqdm(total=ev.total_steps, desc=desc, unit=unit, file=sys.stderr)
            self.phase = ev.phase
            from napari_devosam.utils.clocks import FirstUnit

            self.first = FirstUnit(unit, started=previous)
        self.bar.update(ev.step - self.bar.n)
        line = self.first(ev.step, ev.total_steps or 0)
        if line:
            self._write(f"{self.bar.desc}: {line}")
        if ev.phase == "train":
            from napari_devosam.utils.estimate import duration

            eta = {} if ev.eta is None else {"left": duration(ev.eta)}
            self.bar.set_postfix(epoch=ev.epoch, lr=f"{ev.lr:.2g}", loss=f"{ev.loss:.3f}",
                                 best_iou=f"{ev.best_val_iou:.3f}", **eta, refresh=False)

    def _write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = None
        self.phase = None


def add_settings_arguments(p) -> None:
    """One flag per field of ``finetune.settings.RunSettings`` (``--min-steps N``, ``--loss``,
    ``--no-patience``, ``--mixed-precision auto|on|off``, ...), help and choices from its
    declaration. Read without importing torch."""
    from napari_devosam.finetune.settings import RunSettings
    from napari_devosam.utils.params import add_arguments

    add_arguments(p, RunSettings)


def run_settings(args):
    """The ``RunSettings`` the flags describe (flags not given: the defaults; ``ValueError``
    naming a bad value)."""
    from napari_devosam.finetune.settings import RunSettings
    from napari_devosam.utils.params import given

    return RunSettings.from_dict(given(args, RunSettings))


def _drive(gen, bars: _Bars):
    """Run the fine-tuning generator to its end with ``bars``. A first Ctrl-C is passed on to
    the generator (``throw``): in training it stops cleanly and the run ends as at any other
    stop, with the best weights written (``stopped == "interrupted"``); before training, or
    at a second Ctrl-C, ``KeyboardInterrupt`` propagates (nothing to keep)."""
    throw = passed_on = False  # a Ctrl-C to pass on; one was passed on
    try:
        while True:
            try:
                if throw:
                    throw, passed_on = False, True
                    event = gen.throw(KeyboardInterrupt())
                else:
                    event = next(gen)
                bars.update(event)
            except StopIteration as stop:
                return stop.value
            except KeyboardInterrupt:
                if passed_on or throw:
                    raise
                throw = True
                bars.close()
    finally:
        gen.close()
        bars.close()


def run(args) -> int:
    """Exit code 0: a better decoder was written; ``NO_GAIN_EXIT_CODE`` (3): the run ended
    without beating the starting decoder and wrote nothing; 130: stopped by Ctrl-C (the best
    weights validated so far written when they beat the start); 1: an error (one stderr
    line)."""
    from napari_devosam.cli.checks import check_model_args
    from napari_devosam.finetune.data import load_planes

    settings = run_settings(args)  # bad settings and data fail before any heavy import
    planes = load_planes(args.data)
    check_model_args(args)
    from napari_devosam.engine.embeddings import EmbeddingCache, default_cache_dir
    from napari_devosam.finetune import finetune
    from napari_devosam.models.loading import load_model

    sam = load_model(chosen_model(args), device=args.device, precision=args.precision)
    cache = EmbeddingCache(args.cache_dir or default_cache_dir(), max_items=0)
    print(f"devosam finetune: {count(len(planes), 'annotated plane')}; timing the encoder on "
          "the first and a few training steps for the estimate", file=sys.stderr, flush=True)
    gen = finetune(args.data, sam, out=args.out, settings=settings, cache=cache)
    result = _drive(gen, _Bars(not args.no_progress))
    print(f"validation IoU before: {result.val_iou_before:.3f}  after: "
          f"{result.val_iou_after:.3f}  (best step {result.best_step} of {result.steps_run}, "
          f"{result.stopped}, validated on {result.validated_on} planes)")
    if result.improved and result.metadata.get("trained_encoder"):
        print(f"wrote the whole model {result.path}  ({result.masks_per_s:.1f} masks/s); "
              f"use it with --model {result.path}")
    elif result.improved:
        print(f"wrote {result.path}  ({result.masks_per_s:.1f} masks/s)")
    else:
        print(result.message)
    if args.json:
        print(json.dumps({"path": None if result.path is None else str(result.path),
                          "improved": result.improved,
                          "val_iou_before": result.val_iou_before,
                          "val_iou_after": result.val_iou_after,
                          "best_step": result.best_step, "steps_run": result.steps_run,
                          "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                          "stopped": result.stopped, "masks_per_s": result.masks_per_s}))
    if result.stopped == "interrupted":
        kept = (f"the best weights so far are in {result.path}" if result.improved else
                "no validation round beat the starting decoder yet: nothing written")
        print(f"devosam finetune: interrupted at step {result.steps_run}; {kept}",
              file=sys.stderr)
        return 130
    return 0 if result.improved else NO_GAIN_EXIT_CODE
