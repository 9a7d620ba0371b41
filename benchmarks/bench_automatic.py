"""Automatic segmentation (issue 12), everything side by side in one run.

1. Quality on held-out phantoms (seeds >= 10_000_000, both stains, 8/16 bit, the layouts of
   ``bench_embryo_tiny.EVAL_LAYOUTS``): seeded mode, grid mode (same model) and a
   scikit-image seeded watershed (``automatic.baseline``); F1 at IoU 0.5 and mean matched IoU
   (``automatic.metrics``), per stain and overall; seeded-mode time per plane with the
   embedding cached. Needs the trained ``embryo_tiny`` (``load_model("embryo_tiny")``, or
   ``--weights file.safetensors`` from tools/train_embryo_tiny.py); without it only the
   watershed baseline is measured and the SAM rows say "not measured".
2. Grid-mode speed and parity: random vit_b (``testing.random_sam``), a 512 x 752 phantom,
   its embedding computed once and given to both; ours (``automatic.grid``) against
   ``segment_anything.SamAutomaticMaskGenerator`` with the same parameters, timed alternately;
   parity = share of stock masks matched by one of ours at IoU >= 0.9 (and conversely).
3. Seeded-mode speed with vit_b's decoder, and with embryo_tiny's: 60 cells on a 512 x 752
   plane, embedding cached.

Usage: ``python benchmarks/bench_automatic.py [--weights W] [--points-per-side 16]
[--planes 16] [--threads 1] [--json out.json]``. Results: docs/automatic.md. On a loaded
2-core machine use ``--threads 1``: the fast decoder's many small kernels suffer most from
an oversubscribed CPU (measured: 92 ms/prompt with 1 thread, 280 with 2, load average 7).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, write_json  # noqa: E402

HELDOUT_SEED0 = 10_000_000


def load_embryo_tiny(weights):
    """The trained model, or ``(None, reason)``."""
    try:
        if weights:
            from bench_embryo_tiny import load_embryo_tiny as load

            return load(weights)[0], f"weights {weights}"
        from napari_devosam import load_model

        return load_model("embryo_tiny", device="cpu", progress=False), "embryo_tiny"
    except Exception as exc:  # noqa: BLE001 - reported, quality rows then say "not measured"
        return None, f"embryo_tiny not available: {type(exc).__name__}: {exc}"


def quality(sam, n_planes: int, grid_side: int) -> dict:
    from bench_embryo_tiny import heldout_planes
    from napari_devosam import Predictor
    from napari_devosam.automatic import GridParams, segment_all
    from napari_devosam.automatic.baseline import watershed_labels
    from napari_devosam.automatic.metrics import match_scores

    rows = {m: {"membrane": [], "nuclei": []} for m in ("seeded", "grid", "watershed")}
    times = []
    predictor = Predictor(sam) if sam is not None else None
    for name, img, truth in heldout_planes(n_planes, HELDOUT_SEED0):
        kind = name.split("-")[0]
        rows["watershed"][kind].append(match_scores(watershed_labels(img), truth))
        if predictor is None:
            continue
        emb = predictor.set_image(img)
        t0 = time.perf_counter()
        res = segment_all(img, predictor, embedding=emb)
        times.append(time.perf_counter() - t0)
        rows["seeded"][kind].append(match_scores(res.labels, truth))
        grid = segment_all(img, predictor, mode="grid", embedding=emb,
                           grid_params=GridParams(points_per_side=grid_side))
        rows["grid"][kind].append(match_scores(grid.labels, truth))
        print(f"  {name}: seeded F1 {rows['seeded'][kind][-1]['f1']:.3f}, grid "
              f"{rows['grid'][kind][-1]['f1']:.3f}, watershed "
              f"{rows['watershed'][kind][-1]['f1']:.3f}", flush=True)
    out = {m: _pool(r) for m, r in rows.items()}
    out["seeded_s_per_plane"] = float(np.median(times)) if times else None
    return out


def _pool(per_kind: dict) -> dict:
    """Pooled F1 (over all objects) and mean matched IoU, per stain and overall."""
    def agg(ms):
        if not ms:
            return None
        tp, fp, fn = (sum(m[k] for m in ms) for k in ("tp", "fp", "fn"))
        ious = [m["mean_iou"] for m in ms for _ in range(m["tp"])]
        return {"f1": 2 * tp / max(2 * tp + fp + fn, 1), "mean_iou": float(np.mean(ious))
                if ious else float("nan"), "tp": tp, "fp": fp, "fn": fn}
    return {**{k: agg(v) for k, v in per_kind.items()}, "all": agg(sum(per_kind.values(), []))}


def _stock_generator(sam, emb, params):
    from segment_anything import SamAutomaticMaskGenerator

    gen = SamAutomaticMaskGenerator(sam, crop_n_layers=0, **params)
    pred = gen.predictor

    def set_image(image, image_format="RGB"):  # the cached embedding, as ours gets it
        pred.reset_image()
        pred.original_size, pred.input_size = tuple(emb.original_size), tuple(emb.input_size)
        pred.features, pred.is_image_set = emb.features, True

    pred.set_image = set_image
    return gen


def grid_speed(sam, emb, side: int, relaxed: bool, ours_batch: int) -> dict:
    from napari_devosam.automatic.decoding import PromptDecoder
    from napari_devosam.automatic.grid import GridParams, grid_proposals

    params = dict(points_per_side=side)
    if relaxed:  # random weights: let masks through so that there is something to compare
        params.update(pred_iou_thresh=0.0, stability_score_thresh=0.5)
    H, W = emb.original_size
    stock_gen = _stock_generator(sam, emb, dict(params, points_per_batch=64))
    timings = {"stock": [], "ours": []}
    stock = ours = None
    for r in range(2):  # alternate, order swapped on the second round
        for who in (("stock", "ours") if r == 0 else ("ours", "stock")):
            t0 = time.perf_counter()
            if who == "stock":
                stock = stock_gen.generate(np.zeros((H, W, 3), np.uint8))
            else:
                ours = grid_proposals(PromptDecoder(sam, emb),
                                      GridParams(points_per_batch=ours_batch, **params))
            timings[who].append(time.perf_counter() - t0)
            print(f"  grid {who}: {timings[who][-1]:.1f} s", flush=True)
    a = np.stack([m["segmentation"] for m in stock]) if stock else np.zeros((0, H, W), bool)
    b = np.stack([q.full_mask((H, W)) for q in ours]) if ours else np.zeros((0, H, W), bool)
    ious = _ious(a, b)
    return {"params": params, "stock_s": min(timings["stock"]), "ours_s": min(timings["ours"]),
            "speedup": min(timings["stock"]) / min(timings["ours"]),
            "n_stock": len(a), "n_ours": len(b),
            "stock_matched": float((ious.max(1) >= 0.9).mean()) if len(a) and len(b) else None,
            "ours_matched": float((ious.max(0) >= 0.9).mean()) if len(a) and len(b) else None}


def _ious(a, b):
    from pycocotools import mask as mask_utils

    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    enc = [mask_utils.encode(np.asfortranarray(np.moveaxis(m, 0, -1).astype(np.uint8)))
           for m in (a, b)]
    return np.asarray(mask_utils.iou(enc[0], enc[1], [0] * len(b)))


def seeded_speed(sam, runs: int = 3) -> dict:
    from napari_devosam import Predictor
    from napari_devosam.automatic import segment_all
    from napari_devosam.synthetic.phantoms import make_embryo

    img, _ = make_embryo((512, 752), 60, seed=HELDOUT_SEED0 + 999)
    pred = Predictor(sam)
    emb = pred.set_image(img)
    times, n = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        res = segment_all(img, pred, embedding=emb)
        times.append(time.perf_counter() - t0)
        n = res.n_objects
    return {"cells": 60, "objects": n, "s_per_plane": float(np.median(times)),
            "s_min": float(min(times))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None, help="embryo_tiny .safetensors")
    ap.add_argument("--planes", type=int, default=16, help="held-out planes")
    ap.add_argument("--points-per-side", type=int, default=16, help="grid for the speed run")
    ap.add_argument("--ours-batch", type=int, default=16, help="our prompts per decoder call")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads for everything (default: torch's choice)")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import torch

    from napari_devosam.engine.embeddings import embed_plane
    from napari_devosam.synthetic.phantoms import make_embryo
    from napari_devosam.testing import random_sam

    if args.threads:
        torch.set_num_threads(args.threads)
    res = {"machine": machine("cpu"), "args": vars(args)}
    print(res["machine"], flush=True)
    sam, source = load_embryo_tiny(args.weights)
    res["quality_model"] = source
    print(f"quality ({source}):", flush=True)
    res["quality"] = quality(sam, args.planes, grid_side=32)
    if not args.skip_speed:
        torch.manual_seed(0)
        vit_b = random_sam("vit_b")
        img, _ = make_embryo((512, 752), 40, seed=HELDOUT_SEED0 + 998)
        emb = embed_plane(vit_b, img)
        res["grid_default"] = grid_speed(vit_b, emb, args.points_per_side, False, args.ours_batch)
        res["grid_relaxed"] = grid_speed(vit_b, emb, args.points_per_side, True, args.ours_batch)
        res["seeded_vit_b"] = seeded_speed(vit_b)
        if sam is not None:
            res["seeded_embryo_tiny"] = seeded_speed(sam)
    res["machine_after"] = machine("cpu")
    print(report(res))
    write_json(args.json, res)
    return 0


def report(res: dict) -> str:
    lines = [f"quality model: {res['quality_model']}"]
    for mode in ("seeded", "grid", "watershed"):
        q = res["quality"][mode]
        cells = []
        for k in ("membrane", "nuclei", "all"):
            v = q[k]
            cells.append(f"{k} " + ("not measured" if v is None else
                                    f"F1 {v['f1']:.3f} IoU {v['mean_iou']:.3f}"))
        lines.append(f"{mode:9s}: " + "; ".join(cells))
    for key in ("grid_default", "grid_relaxed"):
        if key in res:
            g = res[key]
            lines.append(f"{key}: stock {g['stock_s']:.1f} s, ours {g['ours_s']:.1f} s, "
                         f"{g['speedup']:.2f}x; masks stock {g['n_stock']} ours {g['n_ours']}, "
                         f"matched {g['stock_matched']} / {g['ours_matched']}")
    for key in ("seeded_vit_b", "seeded_embryo_tiny"):
        if key in res:
            lines.append(f"{key.replace('_', ' ', 1)}: {res[key]}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
