"""Image encoder precision: fp32 against bf16 autocast, speed and masks, in one run.

    python benchmarks/bench_precision.py [--runs 3] [--threads N] [--device cpu|cuda]
                                         [--parity-planes 2] [--json out.json]

* Speed: a random-weight vit_b encoder (same architecture and cost as the official one) on a
  512 x 752 plane, fp32 and bf16 interleaved (``_common.interleaved``), so other load hits both
  alike; prints the ratio. Through ``compute_embedding``, i.e. with the fused attention kernels.
* Masks: on held-out phantoms (both stains), one box per cell, fp32 masks against bf16 masks of
  the same model: ``embryo_tiny`` and the random vit_b. The issue's bar: IoU >= 0.98.
"""

from __future__ import annotations

import argparse

import numpy as np

from _common import interleaved, machine, mask_iou, write_json


def _boxes(labels):
    out = []
    for i in np.unique(labels)[1:]:
        r, c = np.nonzero(labels == i)
        out.append((r.min(), c.min(), r.max(), c.max()))
    return np.array(out)


def parity(sam, planes) -> dict:
    from napari_devosam import Predictor
    from napari_devosam.models.precision import set_precision

    ious = []
    for plane, labels in planes:
        boxes = _boxes(labels)
        masks = {}
        for p in ("fp32", "bf16"):
            set_precision(sam, p)
            pred = Predictor(sam, cache_dir=None)
            pred.set_image(plane)
            masks[p] = pred.predict_boxes(boxes)[0]
        ious += [mask_iou(a, b) for a, b in zip(masks["fp32"], masks["bf16"], strict=True)]
    set_precision(sam, "fp32")
    return {"objects": len(ious), "mean_iou": float(np.mean(ious)), "min_iou": float(np.min(ious))}


def speed(sam, runs: int, device: str) -> dict:
    from napari_devosam.engine.embeddings import compute_embedding
    from napari_devosam.models.precision import set_precision

    rgb = np.random.default_rng(0).integers(0, 256, (512, 752, 3), dtype=np.uint8)

    def run(p):
        def fn():
            set_precision(sam, p)
            return compute_embedding(sam, rgb)
        return fn

    res = interleaved({"fp32": run("fp32"), "bf16": run("bf16")}, runs, warmup=1, device=device)
    set_precision(sam, "fp32")
    return res


def main() -> None:
    import torch

    import napari_devosam as ds
    from napari_devosam.models.precision import cpu_has_fast_bf16
    from napari_devosam.synthetic.phantoms import make_embryo
    from napari_devosam.testing import random_sam

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--parity-planes", type=int, default=2, help="phantom planes per stain")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    info = machine(a.device)
    info["cpu_bf16_hardware"] = cpu_has_fast_bf16()
    print(info)
    vit_b = random_sam("vit_b", seed=0).to(a.device).eval()
    res = {"machine": info, "speed": speed(vit_b, a.runs, a.device)}
    fp32, bf16 = res["speed"]["fp32"]["p50_ms"], res["speed"]["bf16"]["p50_ms"]
    print(f"vit_b encoder, 512 x 752 plane: fp32 {fp32 / 1e3:.2f} s, bf16 {bf16 / 1e3:.2f} s "
          f"-> bf16 is {fp32 / bf16:.2f}x faster")
    planes = [make_embryo((300, 380), 10, seed=10_000_300 + i, dtype=np.uint16, kind=kind)
              for i in range(a.parity_planes) for kind in ("membrane", "nuclei")]
    tiny = ds.load_model("embryo_tiny", device=a.device, progress=False)
    for name, sam in (("embryo_tiny", tiny), ("random vit_b", vit_b)):
        res[name] = parity(sam, planes)
        r = res[name]
        print(f"{name}: bf16 vs fp32 box masks over {r['objects']} objects: mean IoU "
              f"{r['mean_iou']:.4f}, min {r['min_iou']:.4f} (bar: 0.98)")
    write_json(a.json, res)


if __name__ == "__main__":
    main()
