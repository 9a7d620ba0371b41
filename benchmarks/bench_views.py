"""Seeded automatic segmentation with zoomed views: seconds per plane, views, encoder passes.

Issue target: seeded automatic segmentation with the bundled ``embryo`` model takes at most
1 s a plane on a 2-core CPU, dense planes included. Small nuclei are decoded in zoomed views
(``engine/zoom.py``), each of which costs encoder work, so this script measures, per plane of
the real sources (``real_sources.py``: dsb2018, cells3d, hela, cho and frame 30 of the
devolearn nuclear movie), in one run:

- ``s/plane``: ``automatic.segment_all`` (seeded mode, ``--stain``), the whole plane's
  embedding included, median over ``--repeats`` runs;
- ``views``: zoomed views decoded; ``passes``: encoder forward calls; ``images``: images
  through the encoder (a batched pass holds several views);
- ``ratio``: ``s/plane`` over the time of one whole-plane encoder pass of the same plane
  (measured in the same run, median of ``--repeats``), so figures from a loaded shared
  machine compare as ratios. Repeats interleave the encoder pass and the modes.

``--baseline`` also times the earlier path (``zoom.plan_views``, one view per encoder pass)
on the same planes, interleaved, for before/after ratios from one run.

Usage: ``python benchmarks/bench_views.py [--model embryo] [--threads 1] [--repeats 3]
[--sources dsb2018,cells3d,hela,cho,movie] [--baseline] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_sources as R  # noqa: E402
from _common import machine, write_json  # noqa: E402

SOURCES = "dsb2018,cells3d,hela,cho,movie"
MOVIE_FRAME = 30


def planes(names: list[str]) -> list[tuple[str, np.ndarray]]:
    """``(label, plane)`` for each plane of the named sources; unavailable ones skipped."""
    out = []
    for name in names:
        try:
            if name == "movie":
                movie = R.devolearn_movie("nuclei")
                out.append((f"movie[{MOVIE_FRAME}]", movie[min(MOVIE_FRAME, len(movie) - 1)]))
                continue
            source = R.LABELLED[name]()
        except R.SourceUnavailable as exc:
            print(f"skipped {name}: {exc}")
            continue
        out += [(f"{name}[{i}]", p) for i, (p, _) in enumerate(source.planes)]
    return out


class EncoderCounter:
    """Counts forward calls of ``sam.image_encoder`` and the images they held."""

    def __init__(self, sam):
        self.passes = 0
        self.images = 0
        self._hook = sam.image_encoder.register_forward_hook(self._seen)

    def _seen(self, _module, args, _out):
        self.passes += 1
        self.images += int(args[0].shape[0])

    def reset(self):
        self.passes = self.images = 0

    def close(self):
        self._hook.remove()


class Mode:
    """How views are planned and encoded: ``"after"`` is the package's path
    (``zoom.pack_views``, ``zoom.view_batch`` views a pass, one decoder for every view);
    ``"before"`` the earlier one (``zoom.plan_views``, one view a pass, a decoder made per
    view), for before/after ratios in one run. Records the number of views each plan made."""

    def __init__(self, name: str):
        self.name = name
        self.views: list[int] = []

    def __enter__(self):
        from napari_devosam.automatic import seeded
        from napari_devosam.engine import zoom as Z

        self._saved = (Z.pack_views, seeded.VIEW_BATCH, seeded._view_decoder)
        planner = Z.plan_views if self.name == "before" else Z.pack_views

        def counting(boxes, shape, size, target=None):
            whole, views = planner(boxes, shape, size, target)
            self.views.append(len(views))
            return whole, views

        Z.pack_views = counting
        if self.name == "before":
            seeded.VIEW_BATCH = 1
            fresh = self._saved[2]  # a new decoder for every view, as before
            seeded._view_decoder = lambda _prev, *args, **kw: fresh(None, *args, **kw)
        return self

    def __exit__(self, *exc):
        from napari_devosam.automatic import seeded
        from napari_devosam.engine import zoom as Z

        Z.pack_views, seeded.VIEW_BATCH, seeded._view_decoder = self._saved


def encoder_seconds(sam, plane, repeats: int) -> float:
    """Median seconds of one whole-plane encoder pass (``embed_plane``, no cache)."""
    from napari_devosam.engine.embeddings import embed_plane

    secs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        embed_plane(sam, plane)
        secs.append(time.perf_counter() - t0)
    return float(np.median(secs))


def one_plane(sam, plane, stain: str, repeats: int, counter, mode: str) -> dict:
    """``segment_all`` (seeded) on ``plane`` ``repeats`` times under ``mode``."""
    from napari_devosam import Predictor
    from napari_devosam.automatic.core import segment_all

    secs, res = [], None
    with Mode(mode) as m:
        for _ in range(repeats):
            counter.reset()
            m.views.clear()
            pred = Predictor(sam, cache_dir=None)
            t0 = time.perf_counter()
            res = segment_all(plane, pred, stain=stain, mode="seeded")
            secs.append(time.perf_counter() - t0)
    return {
        "s_per_plane": float(np.median(secs)),
        "views": int(sum(m.views)),
        "passes": counter.passes,
        "images": counter.images,
        "objects": int(res.n_objects),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="embryo")
    ap.add_argument("--sources", default=SOURCES)
    ap.add_argument("--stain", default="auto")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--baseline",
        action="store_true",
        help="also time the earlier path (plan_views, one view a pass)",
    )
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import torch

    from napari_devosam import load_model

    torch.set_num_threads(args.threads)
    sam = load_model(args.model, device="cpu", progress=False)
    counter = EncoderCounter(sam)
    modes = ["before", "after"] if args.baseline else ["after"]
    rows = []
    print(
        f"{'plane':14s} {'mode':6s} {'s/plane':>8s} {'enc s':>7s} {'ratio':>6s} "
        f"{'views':>5s} {'passes':>6s} {'images':>6s} {'objects':>7s}"
    )
    for label, plane in planes(args.sources.split(",")):
        runs = {mode: [] for mode in modes}
        encs = []
        for _ in range(args.repeats):  # interleaved: a change of load hits every mode alike
            encs.append(encoder_seconds(sam, plane, 1))
            for mode in modes:
                runs[mode].append(one_plane(sam, plane, args.stain, 1, counter, mode))
        enc = float(np.median(encs))
        for mode in modes:
            r = dict(runs[mode][-1])
            r["s_per_plane"] = float(np.median([x["s_per_plane"] for x in runs[mode]]))
            r.update(
                plane=label,
                mode=mode,
                shape=list(plane.shape),
                encoder_s=enc,
                ratio=r["s_per_plane"] / enc,
            )
            rows.append(r)
            print(
                f"{label:14s} {mode:6s} {r['s_per_plane']:8.3f} {enc:7.3f} "
                f"{r['ratio']:6.1f} {r['views']:5d} {r['passes']:6d} {r['images']:6d} "
                f"{r['objects']:7d}",
                flush=True,
            )
    counter.close()
    for mode in modes:
        mine = [r for r in rows if r["mode"] == mode]
        if mine:
            print(
                f"{mode}: median ratio {np.median([r['ratio'] for r in mine]):.1f}, "
                f"max {max(r['ratio'] for r in mine):.1f} whole-plane encoder passes"
            )
    if args.json:
        write_json(args.json, {"machine": machine(), "model": args.model, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
