"""Tracking benchmark: speed of propagation and CTC quality on phantom time-lapses.

Speed (``--speed``): the real vit_b architecture with random weights
(``napari_devosam.testing.random_sam('vit_b')``), the 20 cells of a 512 x 512 phantom
(``--kind`` nuclei or membrane) through 100 planes whose embeddings are already in memory
(the cached case: random ``(1, 256, 64, 64)`` features, which cost the decoder exactly what
real ones do; the image encoder is not part of the measure). The planes' pixels are the
phantom's frames, so the plane analysis and membrane growth cost what they do on an embryo.
All thresholds that end tracks are off (divisions and finding lost cells too). Two runs:

- ``real_size_run`` (the figure for the targets): vit_b does every decode of the run (same
  prompts, windows, batches, its own mask inputs carried), but the masks kept are the
  ground-truth cells under the prompts' points, so all 20 cells keep their real size
  through the 100 planes (a random model's masks shrink and vanish). Every plane is the
  phantom's first frame. The time spent making those answers is not counted.
- the plain run, vit_b's own answers: its masks shrink and vanish after some planes, so it
  decodes fewer, smaller objects; kept as the end-to-end check of the same path. With it,
  one batched decode of the 20 seed cells at their real size is timed
  (``decoder_ms_per_object_at_seed_size``).

``--window`` sets ``PropagationParams.window_context`` (``none``: decode on the whole
embedding; the default: the defaults).

Quality (``--quality``): phantom time-lapses with ground-truth lineage
(``synthetic.lineage.make_lineage_timelapse``), seeds = ground truth of frame 0, propagation
forward with ``load_model(MODEL)``; CTC TRA / DET / LNK / division F1 and error counts
measured by ``traccuracy`` (not our code), and CTC SEG (which traccuracy 0.4 does not
compute) plus TRA again as a cross-check by ``py-ctcmetrics`` (the CTC's own measures
re-implemented), all from the CTC files our exporter writes. ``--model oracle`` runs the
ground-truth oracle decoder of the tests instead (a check of the pipeline and the metric
plumbing, not of SAM). Needs ``pip install 'napari-devosam[bench]'``.

Usage::

    python benchmarks/bench_tracking.py --speed
    python benchmarks/bench_tracking.py --quality --model embryo_tiny
    python benchmarks/bench_tracking.py --partial    # every other cell seeded, membranes
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"TRA": 0.95, "SEG": 0.80, "division_f1": 0.80, "ms_per_object_plane": 5.0,
           "run_s_20x100": 15.0}


def _drain(gen):
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def bench_speed(n_objects=20, n_planes=100, shape=(512, 512), threads=None,
                window="default", kind="nuclei") -> dict:
    import torch
    from segment_anything.utils.transforms import ResizeLongestSide

    from napari_devosam.synthetic.lineage import make_lineage_timelapse
    from napari_devosam.testing import random_sam
    from napari_devosam.tracking import PropagationParams, Seed, propagate

    if threads:
        torch.set_num_threads(threads)
    sam = random_sam("vit_b")
    frames, labels, _ = make_lineage_timelapse(8, shape, n_objects, seed=10_000_001, kind=kind)
    seeds = [Seed(int(t), (0,), labels[0] == t) for t in np.unique(labels[0])[1:]]
    gen = torch.Generator().manual_seed(0)
    feats = [torch.randn((1, 256, 64, 64), generator=gen) for _ in range(8)]
    input_size = ResizeLongestSide(1024).get_preprocess_shape(*shape, 1024)
    embeddings = [SimpleNamespace(features=feats[i % 8], input_size=input_size,
                                  original_size=shape, to=lambda d, i=i: embeddings[i])
                  for i in range(n_planes)]
    params = PropagationParams(min_area=0, min_area_fraction=0, min_iou_prev=0,
                               min_pred_iou=0, min_inside_fraction=0, redetect_lost=False,
                               detect_divisions=False, **_window(window))
    # the phantom's 8 frames over and over: the plane analysis (stain, membrane growth)
    # costs what it costs on a real embryo
    stack = frames[np.arange(n_planes) % len(frames)]

    def embedding_for(plane):
        return embeddings[plane[0]]

    decoder = _TimedDecoder(_batch_decoder(sam, params))
    run = propagate(sam, stack, seeds, params=params, embedding_for=embedding_for,
                    decoder=decoder)
    t0 = time.perf_counter()
    result = _drain(run)
    wall = time.perf_counter() - t0
    pairs = len(result.objects)
    per_pair = wall / max(pairs, 1)
    decoder_ms = _decoder_ms(sam, seeds, embeddings, params)
    other_per_plane = (wall - decoder.seconds) / (n_planes - 1)
    return {"kind": kind, "objects": len(seeds), "planes": n_planes - 1, "object_planes": pairs,
            "ended_early": len(result.ended),
            "end_reasons": sorted({r for _, r in result.ended.values()}),
            "seed_area_px_median": float(np.median([s.mask.sum() for s in seeds])),
            "object_area_px_median": float(np.median([o.crop.area for o in result.objects]))
            if pairs else 0.0,
            "run_s": round(wall, 3), "ms_per_object_plane": round(1000 * per_pair, 3),
            "run_s_20x100_at_that_rate": round(per_pair * len(seeds) * (n_planes - 1), 1),
            "decoder_s_in_run": round(decoder.seconds, 3),
            "other_ms_per_plane": round(1000 * other_per_plane, 1),
            "decoder_ms_per_object_at_seed_size": decoder_ms,
            "run_s_20x100_at_seed_size": round(
                (n_planes - 1) * (other_per_plane + len(seeds) * decoder_ms / 1000), 1),
            "real_size_run": _speed_at_real_size(sam, frames[0], labels[0], seeds, feats,
                                                 params, n_planes),
            **_window_used(window), "torch_threads": torch.get_num_threads()}


def _speed_at_real_size(sam, frame, labels, seeds, feats, params, n_planes) -> dict:
    """20 objects through ``n_planes`` planes at their real size: every plane is the
    phantom's first frame (pixels and ground truth), vit_b does all the decoding work
    (same prompts, windows, batches, its own mask inputs carried), and the masks kept are
    the ground-truth cells under the prompts' points, so no object shrinks or vanishes. The
    time spent making those answers is taken off the run's."""
    from napari_devosam.tracking import propagate

    shape = labels.shape
    stack = np.broadcast_to(frame, (n_planes, *shape))
    oracle = _CellUnderPoint(labels)
    input_size = _input_size(shape)
    embeddings = [SimpleNamespace(features=feats[i % len(feats)], input_size=input_size,
                                  original_size=shape, plane=(i,),
                                  to=lambda d, i=i: embeddings[i]) for i in range(n_planes)]
    decoder = _VitBCostOracleAnswers(_batch_decoder(sam, params), oracle)
    run = propagate(sam, stack, seeds, params=params, decoder=decoder,
                    embedding_for=lambda plane: embeddings[plane[0]])
    t0 = time.perf_counter()
    result = _drain(run)
    wall = time.perf_counter() - t0 - decoder.oracle_seconds
    pairs = len(result.objects)
    return {"object_planes": pairs, "run_s": round(wall, 2),
            "ms_per_object_plane": round(1000 * wall / max(pairs, 1), 3),
            "decoder_s": round(decoder.seconds, 2),
            "decoder_ms_per_object_plane": round(1000 * decoder.seconds / max(pairs, 1), 3),
            "other_ms_per_plane": round(1000 * (wall - decoder.seconds) / (n_planes - 1), 1),
            "object_area_px_median": float(np.median([o.crop.area for o in result.objects]))}


def _input_size(shape):
    from segment_anything.utils.transforms import ResizeLongestSide

    return ResizeLongestSide(1024).get_preprocess_shape(*shape, 1024)


class _VitBCostOracleAnswers:
    """Decodes with a ``BatchDecoder`` (the cost, timed) and answers with ``oracle``'s
    masks and IoU (``_CellUnderPoint``), carrying the decoder's own low-res logits as the
    next mask inputs."""

    def __init__(self, decoder, oracle):
        self.inner, self.oracle, self.sam = decoder, oracle, decoder.sam
        self.seconds = self.oracle_seconds = 0.0

    def set_embedding(self, embedding) -> None:
        self.inner.set_embedding(embedding)

    def decode(self, boxes, points, mask_inputs):
        t0 = time.perf_counter()
        _, low_res, _ = self.inner.decode(boxes, points, mask_inputs)
        t1 = time.perf_counter()
        logits, iou = self.oracle(points)
        self.seconds += t1 - t0
        self.oracle_seconds += time.perf_counter() - t1
        return logits, low_res, iou


class _CellUnderPoint:
    """Logits +10 on the ground-truth cell under each ``(row, col)`` point, -10 elsewhere."""

    def __init__(self, labels):
        import torch

        self.labels = labels
        self.cells = {int(t): torch.as_tensor(labels == t) for t in np.unique(labels)[1:]}

    def __call__(self, points):
        import torch

        out = torch.full((len(points), *self.labels.shape), -10.0)
        for i, (r, c) in enumerate(np.asarray(points)):
            t = int(self.labels[int(round(r)), int(round(c))])
            if t:
                out[i][self.cells[t]] = 10.0
        return out, np.ones(len(points), np.float32)


def _decoder_ms(sam, seeds, embeddings, params, repeats: int = 10) -> float:
    """Milliseconds per object of one batched decode of every seed cell at its own size
    (the random model's masks shrink as they are carried, so the run above decodes smaller
    windows than real cells need): box and point as propagation makes them from the seed,
    and a mask input from a first decode."""
    from napari_devosam.tracking import prompts as pr
    from napari_devosam.tracking.records import Crop

    decoder = _batch_decoder(sam, params)
    decoder.set_embedding(embeddings[1])
    crops = [Crop.from_mask(s.mask) for s in seeds]
    boxes = np.array([pr.grown_box(pr.bbox(c), params.box_margin, params.box_margin_px)
                      for c in crops])
    boxes = np.array([pr.clip_to_plane(b, seeds[0].mask.shape) for b in boxes])
    points = np.array([pr.interior_point(c) for c in crops], float)
    _, low_res, _ = decoder.decode(boxes, points, [None] * len(seeds))
    masks = list(low_res)
    t0 = time.perf_counter()
    for _ in range(repeats):
        decoder.decode(boxes, points, masks)
    return round(1000 * (time.perf_counter() - t0) / repeats / len(seeds), 3)


def _batch_decoder(sam, params):
    from napari_devosam.tracking.decode import BatchDecoder

    window = (params.window_context, params.window_context_cells)
    return BatchDecoder(sam, window if params.decode_window else None, params.clip_margin_px)


class _TimedDecoder:
    """A ``BatchDecoder`` that adds up the seconds spent in ``decode``."""

    def __init__(self, decoder):
        self.inner, self.seconds = decoder, 0.0
        self.sam = decoder.sam

    def set_embedding(self, embedding) -> None:
        self.inner.set_embedding(embedding)

    def decode(self, *args):
        t0 = time.perf_counter()
        try:
            return self.inner.decode(*args)
        finally:
            self.seconds += time.perf_counter() - t0


def _window(window) -> dict:
    """PropagationParams fields for ``--window``: "default" (the defaults), None (the whole
    embedding), a context fraction or "fraction,cells"."""
    if window == "default":
        return {}
    if window is None:
        return {"decode_window": False}
    context, _, cells = str(window).partition(",")
    fields = {"decode_window": True, "window_context": float(context)}
    return fields | ({"window_context_cells": int(cells)} if cells else {})


def _window_used(window) -> dict:
    from napari_devosam.tracking import PropagationParams

    p = PropagationParams(**_window(window))
    return {"decode_window": p.decode_window,
            "window_context": p.window_context if p.decode_window else None,
            "window_context_cells": p.window_context_cells if p.decode_window else None}


ERROR_COUNTS = ("fn_nodes", "fp_nodes", "ns_nodes", "fn_edges", "fp_edges", "ws_edges")
DIVISION_COUNTS = {"True Positive Divisions": "tp_divisions",
                   "False Positive Divisions": "fp_divisions",
                   "False Negative Divisions": "fn_divisions",
                   "Wrong Children Divisions": "wrong_children_divisions"}


def _ctc_metrics(gt_dir: Path, res_dir: Path, divisions: bool = True) -> tuple[dict, dict]:
    """TRA, SEG (if reported) and division F1 by traccuracy from two CTC folders, and
    traccuracy's error counts (``ERROR_COUNTS``: missed / false / non-split (merged) cells,
    missed / false / wrong-semantics links; divisions found, false, missed, wrong children).

    CTC metrics use the CTC matcher; divisions use a one-to-one IoU > 0.5 matcher, because
    ``DivisionMetrics`` refuses the CTC matcher's many-to-one matches (one predicted mask
    covering two cells), which real models produce; ``divisions=False`` leaves them out
    (a truth of markers, which no mask overlaps by IoU > 0.5).
    """
    from traccuracy import run_metrics
    from traccuracy.loaders import load_ctc_data
    from traccuracy.matchers import CTCMatcher, IOUMatcher
    from traccuracy.metrics import CTCMetrics, DivisionMetrics

    gt = load_ctc_data(str(gt_dir), str(gt_dir / "res_track.txt"), name="gt")
    pred = load_ctc_data(str(res_dir), str(res_dir / "res_track.txt"), name="pred")
    results, _ = run_metrics(gt_data=gt, pred_data=pred, matcher=CTCMatcher(),
                             metrics=[CTCMetrics()])
    if divisions:
        results += run_metrics(gt_data=gt, pred_data=pred,
                               matcher=IOUMatcher(iou_threshold=0.5, one_to_one=True),
                               metrics=[DivisionMetrics()])[0]
    out, counts = {}, {}
    for r in results:
        values = r["results"]
        for key in ("TRA", "DET", "SEG", "LNK"):
            if key in values:
                out[key] = values[key]
        counts.update({k: int(values[k]) for k in ERROR_COUNTS if k in values})
        buffer0 = values.get("Frame Buffer 0")
        if isinstance(buffer0, dict) and "Division F1" in buffer0:
            f1 = _division_f1(buffer0)
            if f1 is not None:
                out["division_f1"] = f1
            counts.update({v: int(buffer0[k]) for k, v in DIVISION_COUNTS.items()
                           if k in buffer0})
    return out, counts


def _ctc_seg(labels: np.ndarray, parents: dict, res_dir: Path) -> dict:
    """CTC SEG and TRA by py-ctcmetrics (``ctc_metrics``): the ground truth is written in the
    CTC's GT layout (``TRA/man_trackNNN.tif`` + ``man_track.txt``, ``SEG/man_segNNN.tif``
    for every frame) next to ``res_dir``. Keys ``SEG`` and ``TRA_ctcmetrics``."""
    import contextlib
    import io

    import tifffile
    from ctc_metrics.scripts.evaluate import evaluate_sequence

    from napari_devosam.tracking.track_files import ctc_tracks, write_ctc

    gt = res_dir.parent / "gt_ctc"
    write_ctc(gt / "TRA", labels, parents)
    (gt / "TRA" / "res_track.txt").rename(gt / "TRA" / "man_track.txt")
    ctc, _ = ctc_tracks(labels, parents)
    (gt / "SEG").mkdir(parents=True, exist_ok=True)
    for f, frame in enumerate(ctc):
        (gt / "TRA" / f"mask{f:03d}.tif").rename(gt / "TRA" / f"man_track{f:03d}.tif")
        tifffile.imwrite(gt / "SEG" / f"man_seg{f:03d}.tif", frame)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
        values = evaluate_sequence(str(res_dir), str(gt), metrics=["SEG", "TRA"], threads=1)
    return {"SEG": float(values["SEG"]), "TRA_ctcmetrics": float(values["TRA"])}


def _division_f1(buffer0: dict) -> float | None:
    """traccuracy's division F1, 0 where it is NaN because no division was found right
    (0 / 0) though the ground truth has some; None where the ground truth has none."""
    f1 = float(buffer0["Division F1"])
    if not np.isnan(f1):
        return f1
    return 0.0 if buffer0.get("Total GT Divisions", 0) else None


def _ground_truth_size(labels: np.ndarray, parents: dict) -> dict:
    """Cells (one per track and frame), tracks and divisions of a ground-truth movie."""
    cells = sum(len(np.unique(frame)) - 1 for frame in labels)
    tracks = len(np.unique(labels)) - 1
    return {"cells": cells, "tracks": tracks, "divisions": len(set(parents.values()))}


def _end_reason(reason: str) -> str:
    """A track-end reason without its number ('IoU with previous 0.29' -> 'IoU with
    previous')."""
    return " ".join(w for w in reason.split() if not w.replace(".", "").isdigit())


def _add(total: dict, counts: dict) -> None:
    """Add ``counts`` into ``total`` key by key."""
    for k, v in counts.items():
        total[k] = total.get(k, 0) + v


def bench_quality(model: str = "embryo_tiny", n_movies: int = 3, frames: int = 12,
                  kind: str = "nuclei", window="default") -> dict:
    """Seeds from frame 0's ground truth, forward propagation, traccuracy metrics; ``kind``:
    the stain of the phantom movies ("nuclei", the targets' default, or "membrane")."""
    from napari_devosam.synthetic.lineage import make_lineage_timelapse
    from napari_devosam.tracking import PropagationParams, Seed, propagate
    from napari_devosam.tracking.result_files import result_labels
    from napari_devosam.tracking.track_files import write_ctc

    kw = {}
    if model == "oracle":
        sys.path.insert(0, str(ROOT / "tests" / "tracking"))
        from tracking_oracle import OracleDecoder
        sam = None
    else:
        from napari_devosam import load_model

        sam = load_model(model, device="auto")
    scores, errors, size, ended = [], {}, {}, {}
    t0 = time.perf_counter()
    for k in range(n_movies):
        stack, labels, parents = make_lineage_timelapse(frames, (160, 160), 4,
                                                        seed=10_000_000 + k, kind=kind)
        if model == "oracle":
            oracle = OracleDecoder(labels)
            kw = {"decoder": oracle, "embedding_for": oracle.embedding_for}
        seeds = [Seed(int(t), (0,), labels[0] == t) for t in np.unique(labels[0])[1:]]
        params = PropagationParams(**_window(window))
        result = _drain(propagate(sam, stack, seeds, params=params, **kw))
        _add(size, _ground_truth_size(labels, parents))
        _add(ended, Counter(_end_reason(r) for _, r in result.ended.values()))
        pred, lineage = result_labels(seeds, result, frames, 0, labels.shape[-2:])
        with tempfile.TemporaryDirectory() as tmp:
            gt_dir, res_dir = Path(tmp) / "gt", Path(tmp) / "res"
            write_ctc(gt_dir, labels, parents)
            write_ctc(res_dir, pred, lineage)
            score, counts = _ctc_metrics(gt_dir, res_dir)
            score.update(_ctc_seg(labels, parents, res_dir))
            scores.append(score)
            _add(errors, counts)
    keys = sorted({k for s in scores for k in s})
    return {"model": model, "kind": kind, "movies": n_movies, "frames": frames,
            **_window_used(window), "ground_truth": size,
            **{k: round(float(np.mean([s[k] for s in scores if k in s])), 4) for k in keys},
            "errors": errors, "track_ends": ended,
            "run_s": round(time.perf_counter() - t0, 1)}


def bench_partial_seeding(model: str = "embryo_tiny", n_movies: int = 4, frames: int = 10,
                          kind: str = "membrane", window="default") -> dict:
    """Only every other cell of frame 0 seeded (6 cells): how many propagated objects land
    on cells of lineages nobody seeded, with divisions on and off. An object lands on the
    ground-truth cell it overlaps most (background counts as unseeded)."""
    from napari_devosam import load_model
    from napari_devosam.synthetic.lineage import make_lineage_timelapse
    from napari_devosam.tracking import PropagationParams, Seed, propagate

    sam = load_model(model, device="auto")
    report = {"model": model, "kind": kind, "movies": n_movies, "frames": frames,
              **_window_used(window)}
    for divisions in (True, False):
        objects = unseeded = made = 0
        for k in range(n_movies):
            stack, labels, parents = make_lineage_timelapse(frames, (160, 160), 6,
                                                            seed=10_000_000 + k, kind=kind)
            seeded = {int(t) for t in np.unique(labels[0])[1:][::2]}

            def root(t, parents=parents):
                while t in parents:
                    t = parents[t]
                return t

            seeds = [Seed(t, (0,), labels[0] == t) for t in sorted(seeded)]
            params = PropagationParams(detect_divisions=divisions, **_window(window))
            result = _drain(propagate(sam, stack, seeds, params=params))
            for obj in result.objects:
                ids, counts = np.unique(labels[obj.plane[0]][obj.crop.full()],
                                        return_counts=True)
                best = int(ids[np.argmax(counts)])
                objects += 1
                unseeded += best == 0 or root(best) not in seeded
            made += len(result.divisions)
        report["divisions_on" if divisions else "divisions_off"] = {
            "objects": objects, "on_unseeded_cells": unseeded, "divisions_made": made}
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--quality", action="store_true")
    ap.add_argument("--model", default="embryo_tiny")
    ap.add_argument("--planes", type=int, default=100)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--kind", default="nuclei", choices=("nuclei", "membrane"),
                    help="stain of the phantom movies for --quality and --speed")
    ap.add_argument("--movies", type=int, default=3, help="movies for --quality")
    ap.add_argument("--partial", action="store_true",
                    help="every other cell seeded (4 membrane movies): objects that land on "
                         "unseeded lineages, divisions on and off")
    ap.add_argument("--window", default="default",
                    help="PropagationParams.window_context: a context fraction, "
                         "'fraction,cells' (also window_context_cells), 'none' "
                         "(decode on the whole embedding) or 'default'")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    window = {"none": None, "default": "default"}.get(args.window.lower(), args.window)
    report = {"targets": TARGETS}
    if args.speed:
        report["speed"] = bench_speed(n_planes=args.planes, threads=args.threads,
                                      window=window, kind=args.kind)
    if args.quality:
        try:
            report["quality"] = bench_quality(args.model, n_movies=args.movies,
                                              kind=args.kind, window=window)
        except (ValueError, FileNotFoundError, RuntimeError) as exc:
            report["quality"] = {"skipped": f"model {args.model!r} not loadable: {exc}"}
    if args.partial:
        report["partial_seeding"] = bench_partial_seeding(args.model, window=window)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
