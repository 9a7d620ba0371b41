"""Per-click latency, embedding time, cached reload and memory: ours vs stock SamPredictor.

Run from the repository root: ``python benchmarks/bench_click.py`` (CPU, ~1 minute), add
``--encoder`` to also time the image encoder (vit_b on a 2-core CPU: ~15 s stock, ~9 s ours), or
``--device cuda --encoder --amp bf16`` on a GPU machine. Everything runs in one process with
the same random weights (``napari_devosam.testing.random_sam``); stock and ours are timed
interleaved so that load from other processes hits both alike. Random weights and random
embeddings are fine for timing: the work does not depend on the values.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    interleaved,
    machine,
    mask_iou,
    once,
    peak_rss_mib,
    ratio,
    summary,
    write_json,
)

TARGET_MS, TARGET_RATIO = 40.0, 3.3


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="vit_b", choices=["vit_b", "vit_l", "vit_h"])
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: cores)")
    ap.add_argument("--runs", type=int, default=60, help="timed clicks per kind and variant")
    ap.add_argument("--shape", default="512x752", help="plane size HxW")
    ap.add_argument("--encoder", action="store_true", help="also time the image encoder")
    ap.add_argument(
        "--amp",
        choices=["none", "bf16", "fp16"],
        default="none",
        help="with --encoder: also time the encoder under torch.autocast",
    )
    ap.add_argument("--parity-prompts", type=int, default=8, help="random prompts per kind")
    ap.add_argument("--json", default=None, help="write all figures to this file")
    return ap.parse_args(argv)


class Stock:
    """segment_anything.SamPredictor, prompts given in napari's (row, col) like ours."""

    def __init__(self, sam, features, original_size):
        from segment_anything import SamPredictor

        self.p = SamPredictor(sam)
        self.p.features = features
        self.p.original_size = original_size
        size = sam.image_encoder.img_size
        self.p.input_size = self.p.transform.get_preprocess_shape(*original_size, size)
        self.p.is_image_set = True

    def predict(self, box=None, points=None, point_labels=None, mask_input=None, multimask=False):
        from napari_devosam.engine.coords import box_rc_to_xyxy, points_rc_to_xy

        xyxy = None if box is None else box_rc_to_xyxy(np.asarray(box, float)[None])[0]
        xy = None if points is None else points_rc_to_xy(np.asarray(points, float))
        mi = None if mask_input is None else np.asarray(mask_input)[None]
        return self.p.predict(
            point_coords=xy,
            point_labels=point_labels,
            box=xyxy,
            mask_input=mi,
            multimask_output=multimask,
        )


def plane_and_prompts(shape, seed=0):
    """A phantom embryo plane and, per cell, a box and a positive + negative point."""
    from napari_devosam.synthetic.phantoms import make_embryo

    image, labels = make_embryo(shape, n_cells=8, seed=seed)
    prompts = []
    for i in range(1, labels.max() + 1):
        rr, cc = np.nonzero(labels == i)
        if rr.size == 0:
            continue
        box = (rr.min(), cc.min(), rr.max(), cc.max())
        k = len(rr) // 2
        neg = np.argwhere((labels != i) & (labels > 0))
        points = np.array([[rr[k], cc[k]], neg[len(neg) // 2]], dtype=float)
        prompts.append((np.array(box, float), points, np.array([1, 0])))
    return image, prompts


def click_kinds(prompt, prev_logits):
    box, points, labels = prompt
    return {
        "box": dict(box=box),
        "box+points": dict(box=box, points=points, point_labels=labels),
        "refinement": dict(box=box, points=points, point_labels=labels, mask_input=prev_logits),
        "point, 3 masks": dict(points=points[:1], point_labels=labels[:1], multimask=True),
    }


def bench_clicks(sam, ours, stock, prompts, runs, device):
    prev = stock.predict(**click_kinds(prompts[0], None)["box"])[2][:1]
    kinds = click_kinds(prompts[0], prev[0])
    fns = {}
    for kind, kw in kinds.items():
        fns[f"stock {kind}"] = lambda kw=kw: stock.predict(**kw)
        fns[f"ours {kind}"] = lambda kw=kw: ours.predict(**kw)
    return interleaved(fns, runs, device=device), list(kinds)


def parity(ours, stock, prompts):
    """Mask IoU and score differences, ours vs stock, over every prompt and click kind."""
    worst = {}
    for prompt in prompts:
        prev = stock.predict(box=prompt[0])[2][0]
        for kind, kw in click_kinds(prompt, prev).items():
            m_o, s_o, _ = ours.predict(**kw)
            m_s, s_s, _ = stock.predict(**kw)
            ious = [mask_iou(a, b) for a, b in zip(m_o, m_s, strict=True)]
            w = worst.setdefault(kind, {"min_iou": 1.0, "max_score_diff": 0.0, "n": 0})
            w["min_iou"] = min(w["min_iou"], *ious)
            w["max_score_diff"] = max(w["max_score_diff"], float(np.abs(s_o - s_s).max()))
            w["n"] += len(ious)
    return worst


def bench_encoder(sam, image, device, amp):
    """Stock set_image vs ours (napari_devosam.engine.embeddings), once each; optional autocast."""
    import torch
    from segment_anything import SamPredictor

    from napari_devosam.engine.embeddings import compute_embedding
    from napari_devosam.engine.image import to_rgb

    rgb = to_rgb(image)
    stock = SamPredictor(sam)
    res = {}
    # ours first: the process's peak RSS right after it is ours alone (it never goes down)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    res["ours compute_embedding"], emb = once(lambda: compute_embedding(sam, rgb), device)
    peak = {"ours": torch.cuda.max_memory_allocated() / 2**20 if cuda else peak_rss_mib()}
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    res["stock set_image"], _ = once(lambda: stock.set_image(rgb), device)
    peak["stock"] = torch.cuda.max_memory_allocated() / 2**20 if cuda else peak_rss_mib()
    res["peak memory MiB"] = peak
    res["max |features ours - stock|"] = float((emb.features - stock.features).abs().max())
    res["features rel. error vs stock"] = float(
        (emb.features - stock.features).norm() / stock.features.norm()
    )
    if amp != "none":
        dtype = torch.bfloat16 if amp == "bf16" else torch.float16
        with torch.autocast(device_type=device.split(":")[0], dtype=dtype):
            once(lambda: compute_embedding(sam, rgb), device)  # warm-up (kernel selection)
            ms, emb_amp = once(lambda: compute_embedding(sam, rgb), device)
        res[f"ours compute_embedding autocast {amp}"] = ms
        res["autocast feature rel. error"] = float(
            (emb_amp.features.float() - emb.features).norm() / emb.features.norm()
        )
    return res, emb


def bench_reload(emb, runs):
    """EmbeddingCache: reload one plane's embedding from disk (fp16 file) and from memory."""
    from napari_devosam.engine.embeddings import EmbeddingCache

    with tempfile.TemporaryDirectory() as tmp:
        EmbeddingCache(tmp).put("bench", emb)
        size_mib = (Path(tmp) / "bench.npz").stat().st_size / 2**20
        disk = []
        for _ in range(runs):
            cache = EmbeddingCache(tmp)  # empty memory part: a true disk reload
            ms, got = once(lambda cache=cache: cache.get("bench", emb.features.device))
            assert got is not None
            disk.append(ms)
        warm = EmbeddingCache(tmp)
        warm.get("bench")
        memory = [once(lambda: warm.get("bench"))[0] for _ in range(runs)]
    return {"disk": summary(disk), "memory": summary(memory), "file_mib": size_mib}


def main(argv=None):
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from napari_devosam.engine.embeddings import EmbeddingCache, PlaneEmbedding
    from napari_devosam.engine.predictor import Predictor
    from napari_devosam.testing import random_sam

    device = args.device
    shape = tuple(int(s) for s in args.shape.lower().split("x"))
    info = machine(device)
    print("machine:", ", ".join(f"{k}={v}" for k, v in info.items()))
    sam = random_sam(args.arch).to(device)
    image, prompts = plane_and_prompts(shape)
    results = {"machine": info, "arch": args.arch, "shape": shape}

    emb = None
    if args.encoder:
        results["encoder_ms"], emb = bench_encoder(sam, image, device, args.amp)
    if emb is None:  # random embedding: the decoder's cost does not depend on its values
        g = torch.Generator().manual_seed(0)
        grid = tuple(sam.prompt_encoder.image_embedding_size)
        features = torch.randn(1, 256, *grid, generator=g).to(device)
        size = sam.image_encoder.img_size
        from segment_anything.utils.transforms import ResizeLongestSide

        emb = PlaneEmbedding(features, ResizeLongestSide.get_preprocess_shape(*shape, size), shape)

    ours = Predictor(sam, cache=EmbeddingCache(None))
    ms_set, _ = once(lambda: ours.set_embedding(emb), device)
    results["set_embedding_ms"] = ms_set
    stock = Stock(sam, emb.features, shape)

    results["clicks"], kinds = bench_clicks(sam, ours, stock, prompts, args.runs, device)
    results["parity"] = parity(ours, stock, prompts[: args.parity_prompts])
    results["reload"] = bench_reload(emb, max(5, args.runs // 3))
    results["peak_rss_mib"] = peak_rss_mib()
    if device.startswith("cuda"):
        results["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    report(results, kinds)
    write_json(args.json, results)
    return results


def report(res, kinds):
    n = res["clicks"][f"ours {kinds[0]}"]["n"]
    print(
        f"\nper click ({res['arch']} decoder, plane {res['shape'][0]}x{res['shape'][1]}, "
        f"{res['machine']['torch_threads']} threads, p50 over {n} interleaved runs):"
    )
    print(
        f"  {'click':16s} {'stock p50':>10s} {'ours p50':>9s} {'ours p90':>9s} {'ratio':>7s}"
        f" {'cpu-ms stock/ours':>18s} {'min IoU':>8s} {'max dscore':>10s}"
    )
    met = True
    for kind in kinds:
        s, o = res["clicks"][f"stock {kind}"], res["clicks"][f"ours {kind}"]
        par = res["parity"][kind]
        print(
            f"  {kind:16s} {s['p50_ms']:8.1f}ms {o['p50_ms']:7.1f}ms {o['p90_ms']:7.1f}ms "
            f"{ratio(s['p50_ms'], o['p50_ms']):>7s} "
            f"{s['cpu_p50_ms']:8.1f}/{o['cpu_p50_ms']:<8.1f}"
            f" {par['min_iou']:8.4f} {par['max_score_diff']:10.2e}"
        )
        if kind != "point, 3 masks":
            met &= o["p50_ms"] <= TARGET_MS and s["p50_ms"] / o["p50_ms"] >= TARGET_RATIO
            met &= par["min_iou"] >= 0.99
    print(
        f"  target (box, box+points, refinement: p50 <= {TARGET_MS:.0f} ms, >= {TARGET_RATIO}x "
        f"stock, IoU >= 0.99): {'MET' if met else 'NOT MET'}"
    )
    print(f"set_embedding (per-image decoder precompute): {res['set_embedding_ms']:.1f} ms")
    if "encoder_ms" in res:
        enc = res["encoder_ms"]
        print("embedding one plane:")
        for k, v in enc.items():
            if k == "peak memory MiB":
                kind = "process RSS (ours ran first)"
                if "peak_cuda_mib" in res:
                    kind = "CUDA allocated"
                print(f"  peak {kind}: ours {v['ours']:.0f} MiB, after stock {v['stock']:.0f} MiB")
                continue
            unit = "" if "error" in k or "|" in k else " ms"
            extra = ""
            if unit and k != "stock set_image":
                extra = f"  ({ratio(enc['stock set_image'], v)} vs stock)"
            print(f"  {k:40s} {v:10.4g}{unit}{extra}")
    rl = res["reload"]
    print(
        f"cached reload: disk p50 {rl['disk']['p50_ms']:.1f} ms ({rl['file_mib']:.1f} MiB fp16 "
        f"file), memory p50 {rl['memory']['p50_ms']:.3f} ms"
    )
    print(
        f"peak RSS: {res['peak_rss_mib']:.0f} MiB"
        + (f", peak CUDA: {res['peak_cuda_mib']:.0f} MiB" if "peak_cuda_mib" in res else "")
    )


if __name__ == "__main__":
    main()
