"""Tracking benchmark: speed of propagation and CTC quality on phantom time-lapses.

Speed (``--speed``): the real vit_b architecture with random weights
(``napari_devosam.testing.random_sam('vit_b')``), 20 objects through 100 planes whose
embeddings are already in memory (the cached case: random ``(1, 256, 64, 64)`` features, which
cost the decoder exactly what real ones do; the image encoder is not part of the measure).
All thresholds that end tracks are off so that every object is decoded on every plane.
Reports the run's wall time and the cost per object per plane.

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


def bench_speed(n_objects=20, n_planes=100, shape=(512, 512), threads=None) -> dict:
    import torch

    from napari_devosam.synthetic.lineage import make_lineage_timelapse
    from napari_devosam.testing import random_sam
    from napari_devosam.tracking import PropagationParams, Seed, propagate

    if threads:
        torch.set_num_threads(threads)
    sam = random_sam("vit_b")
    _, labels, _ = make_lineage_timelapse(1, shape, n_objects, seed=10_000_001, kind="nuclei")
    seeds = [Seed(int(t), (0,), labels[0] == t) for t in np.unique(labels[0])[1:]]
    gen = torch.Generator().manual_seed(0)
    feats = [torch.randn((1, 256, 64, 64), generator=gen) for _ in range(8)]
    from segment_anything.utils.transforms import ResizeLongestSide

    input_size = ResizeLongestSide(1024).get_preprocess_shape(*shape, 1024)
    embeddings = [SimpleNamespace(features=feats[i % 8], input_size=input_size,
                                  original_size=shape, to=lambda d, i=i: embeddings[i])
                  for i in range(n_planes)]
    params = PropagationParams(min_area=0, min_area_fraction=0, min_iou_prev=0,
                               min_pred_iou=0, min_inside_fraction=0,
                               detect_divisions=False)
    # pixels are only checked for blank planes (embeddings are given): any texture will do
    stack = np.random.default_rng(0).integers(0, 255, (n_planes, *shape), dtype=np.uint8)
    decoded = []

    def embedding_for(plane):
        return embeddings[plane[0]]

    run = propagate(sam, stack, seeds, params=params, embedding_for=embedding_for)
    t0 = time.perf_counter()
    result = _drain(_counting(run, decoded))
    wall = time.perf_counter() - t0
    pairs = len(result.objects)
    return {"objects": len(seeds), "planes": n_planes - 1, "object_planes": pairs,
            "ended_early": len(result.ended),
            "end_reasons": sorted({r for _, r in result.ended.values()}), "run_s": round(wall, 3),
            "ms_per_object_plane": round(1000 * wall / max(pairs, 1), 3),
            "torch_threads": torch.get_num_threads()}


def _counting(gen, sink):
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        sink.append(p.active)
        yield p


ERROR_COUNTS = ("fn_nodes", "fp_nodes", "ns_nodes", "fn_edges", "fp_edges", "ws_edges")
DIVISION_COUNTS = {"True Positive Divisions": "tp_divisions",
                   "False Positive Divisions": "fp_divisions",
                   "False Negative Divisions": "fn_divisions",
                   "Wrong Children Divisions": "wrong_children_divisions"}


def _ctc_metrics(gt_dir: Path, res_dir: Path) -> tuple[dict, dict]:
    """TRA, SEG (if reported) and division F1 by traccuracy from two CTC folders, and
    traccuracy's error counts (``ERROR_COUNTS``: missed / false / non-split (merged) cells,
    missed / false / wrong-semantics links; divisions found, false, missed, wrong children).

    CTC metrics use the CTC matcher; divisions use a one-to-one IoU > 0.5 matcher, because
    ``DivisionMetrics`` refuses the CTC matcher's many-to-one matches (one predicted mask
    covering two cells), which real models produce.
    """
    from traccuracy import run_metrics
    from traccuracy.loaders import load_ctc_data
    from traccuracy.matchers import CTCMatcher, IOUMatcher
    from traccuracy.metrics import CTCMetrics, DivisionMetrics

    gt = load_ctc_data(str(gt_dir), str(gt_dir / "res_track.txt"), name="gt")
    pred = load_ctc_data(str(res_dir), str(res_dir / "res_track.txt"), name="pred")
    results, _ = run_metrics(gt_data=gt, pred_data=pred, matcher=CTCMatcher(),
                             metrics=[CTCMetrics()])
    divisions, _ = run_metrics(gt_data=gt, pred_data=pred,
                               matcher=IOUMatcher(iou_threshold=0.5, one_to_one=True),
                               metrics=[DivisionMetrics()])
    results += divisions
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

    from napari_devosam.tracking.export import ctc_tracks, write_ctc

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
                  kind: str = "nuclei") -> dict:
    """Seeds from frame 0's ground truth, forward propagation, traccuracy metrics; ``kind``:
    the stain of the phantom movies ("nuclei", the targets' default, or "membrane")."""
    from napari_devosam.synthetic.lineage import make_lineage_timelapse
    from napari_devosam.tracking import Seed, propagate
    from napari_devosam.tracking.export import result_labels, write_ctc

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
        result = _drain(propagate(sam, stack, seeds, **kw))
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
            "ground_truth": size,
            **{k: round(float(np.mean([s[k] for s in scores if k in s])), 4) for k in keys},
            "errors": errors, "track_ends": ended,
            "run_s": round(time.perf_counter() - t0, 1)}


def bench_partial_seeding(model: str = "embryo_tiny", n_movies: int = 4, frames: int = 10,
                          kind: str = "membrane") -> dict:
    """Only every other cell of frame 0 seeded (6 cells): how many propagated objects land
    on cells of lineages nobody seeded, with divisions on and off. An object lands on the
    ground-truth cell it overlaps most (background counts as unseeded)."""
    from napari_devosam import load_model
    from napari_devosam.synthetic.lineage import make_lineage_timelapse
    from napari_devosam.tracking import PropagationParams, Seed, propagate

    sam = load_model(model, device="auto")
    report = {"model": model, "kind": kind, "movies": n_movies, "frames": frames}
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
            params = PropagationParams(detect_divisions=divisions)
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
                    help="stain of the phantom movies for --quality")
    ap.add_argument("--movies", type=int, default=3, help="movies for --quality")
    ap.add_argument("--partial", action="store_true",
                    help="every other cell seeded (4 membrane movies): objects that land on "
                         "unseeded lineages, divisions on and off")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    report = {"targets": TARGETS}
    if args.speed:
        report["speed"] = bench_speed(n_planes=args.planes, threads=args.threads)
    if args.quality:
        try:
            report["quality"] = bench_quality(args.model, n_movies=args.movies,
                                              kind=args.kind)
        except (ValueError, FileNotFoundError, RuntimeError) as exc:
            report["quality"] = {"skipped": f"model {args.model!r} not loadable: {exc}"}
    if args.partial:
        report["partial_seeding"] = bench_partial_seeding(args.model)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
