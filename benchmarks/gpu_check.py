"""GPU check in one command: the CUDA tests, then the package's hot paths timed on the card.

    python benchmarks/gpu_check.py [--device cuda] [--quick] [--skip-tests] [--json out.json]

Prints one table headed by the card's name, in under 8 minutes on one GPU:

* the CUDA tests (``pytest -m cuda``): passed / failed / skipped;
* the image encoder of vit_b (random weights: the real architecture costs exactly what the
  official checkpoint costs) on a 512 x 752 plane: fp32, bf16 autocast, and a batch of 8 planes
  (time per plane);
* a click: ``Predictor.predict`` with a box on the embedded plane (p50);
* propagation: ms per object and plane, vit_b, 20 phantom cells through 20 planes whose
  embeddings were computed on the card;
* automatic segmentation: seconds per plane (seeded mode, embedding included), vit_b and the
  bundled model.

``--device cpu`` runs the same on the CPU (a smoke test of the script; ``--quick`` shrinks
it). Record the table in docs/benchmarks.md with the card's name.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _common import machine, write_json

REPO = Path(__file__).resolve().parents[1]


def run_cuda_tests(timeout_s: int = 240) -> dict:
    """``pytest -m cuda`` in a child process; its closing counts."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
           str(REPO / "tests")]
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                             cwd=REPO).stdout
    except subprocess.TimeoutExpired:
        return {"status": f"timed out after {timeout_s} s"}
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)", out)}
    return {**counts, "seconds": round(time.perf_counter() - t0, 1)}


def _timed(fn, runs: int, device: str) -> float:
    """Median wall seconds of ``fn()`` over ``runs`` runs after one warm-up."""
    import torch

    fn()
    times = []
    for _ in range(runs):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def encoder_times(sam, device: str, runs: int, batch: int) -> dict:
    from napari_devosam.engine.embeddings import compute_embedding, compute_embeddings
    from napari_devosam.models.precision import check_supported, set_precision

    rgb = np.random.default_rng(0).integers(0, 256, (512, 752, 3), dtype=np.uint8)
    out = {"fp32_s": _timed(lambda: compute_embedding(sam, rgb), runs, device)}
    why_not = check_supported("bf16", next(sam.parameters()).device)
    if why_not is None:
        set_precision(sam, "bf16")
        out["bf16_s"] = _timed(lambda: compute_embedding(sam, rgb), runs, device)
        set_precision(sam, "fp32")
    else:
        out["bf16_s"] = f"not run: {why_not}"
    out[f"batch{batch}_s_per_plane"] = _timed(
        lambda: compute_embeddings(sam, [rgb] * batch), max(1, runs // 2), device) / batch
    return out


def click_time(sam, device: str, runs: int) -> float:
    from napari_devosam import Predictor
    from napari_devosam.synthetic.phantoms import make_embryo

    plane, labels = make_embryo((512, 752), 12, seed=10_000_123, dtype=np.uint16,
                                kind="membrane")
    predictor = Predictor(sam, cache_dir=None)
    predictor.set_image(plane)
    r, c = np.nonzero(labels == np.unique(labels)[1])
    box = np.array([r.min(), c.min(), r.max(), c.max()])
    return _timed(lambda: predictor.predict(box=box), runs, device)


def propagation_time(sam, device: str, n_objects: int, n_planes: int) -> dict:
    from napari_devosam.engine.embeddings import embed_plane
    from napari_devosam.synthetic.lineage import make_lineage_timelapse
    from napari_devosam.tracking import PropagationParams, Seed, propagate
    from napari_devosam.utils.progress import drain

    frames, labels, _ = make_lineage_timelapse(n_planes, (512, 512), n_objects,
                                               seed=10_000_001, kind="nuclei")
    seeds = [Seed(int(t), (0,), labels[0] == t) for t in np.unique(labels[0])[1:]]
    embeddings = [embed_plane(sam, frame) for frame in frames]
    params = PropagationParams(detect_divisions=False, redetect_lost=False)
    run = propagate(sam, frames, seeds, params=params,
                    embedding_for=lambda plane: embeddings[plane[0]])
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    t0 = time.perf_counter()
    result = drain(run)
    wall = time.perf_counter() - t0
    pairs = max(len(result.objects), 1)
    return {"objects": len(seeds), "planes": n_planes - 1, "object_planes": len(result.objects),
            "ms_per_object_plane": 1000 * wall / pairs}


def automatic_time(sam, device: str, runs: int) -> float:
    from napari_devosam import Predictor
    from napari_devosam.automatic.core import segment_all
    from napari_devosam.synthetic.phantoms import make_embryo

    planes = [make_embryo((512, 512), 14, seed=10_000_200 + i, dtype=np.uint16,
                          kind="nuclei")[0] for i in range(runs + 1)]
    predictor = Predictor(sam, cache_dir=None)
    it = iter(planes)
    return _timed(lambda: segment_all(next(it), predictor), runs, device)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if value < 1 else f"{value:.2f}"
    return str(value)


def table(res: dict) -> str:
    rows = [("card", res["machine"].get("gpu", res["machine"]["cpu"]))]
    tests = res.get("cuda_tests")
    if tests is not None:
        rows.append(("CUDA tests", ", ".join(f"{v} {k}" for k, v in tests.items())))
    arch = res["arch"]
    for k, v in res["encoder_512x752"].items():
        rows.append((f"{arch} encoder {k}", _fmt(v)))
    rows.append((f"click p50 ms ({arch}, box)", _fmt(1000 * res["click_s"])))
    prop = res["propagation"]
    rows.append((f"propagation ms per object-plane ({prop['objects']} objects x "
                 f"{prop['planes']} planes)", _fmt(prop["ms_per_object_plane"])))
    for name, s in res["automatic_s_per_plane"].items():
        rows.append((f"automatic (seeded) s per plane, {name}", _fmt(s)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="fewer runs and planes (smoke test)")
    ap.add_argument("--skip-tests", action="store_true", help="do not run pytest -m cuda")
    ap.add_argument("--arch", default="vit_b", choices=("vit_b", "vit_l", "vit_h", "embryo_tiny"),
                    help="the model timed in the table (embryo_tiny: a fast smoke test)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    import torch

    import napari_devosam as ds
    from napari_devosam.testing import random_sam

    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: no CUDA device is visible to torch (use --device cpu for a smoke "
              "test)", file=sys.stderr)
        return 2
    runs = 2 if a.quick else 10
    res = {"machine": machine(a.device)}
    print(res["machine"], flush=True)
    if not a.skip_tests:
        res["cuda_tests"] = run_cuda_tests()
        print("CUDA tests:", res["cuda_tests"], flush=True)
    if a.arch == "embryo_tiny":
        model = ds.load_model("embryo_tiny", device=a.device, progress=False)
    else:
        model = random_sam(a.arch, seed=0).to(a.device)
    res["arch"] = a.arch
    res["encoder_512x752"] = encoder_times(model, a.device, runs, 2 if a.quick else 8)
    res["click_s"] = click_time(model, a.device, 5 if a.quick else 50)
    res["propagation"] = propagation_time(model, a.device, 6 if a.quick else 20,
                                                3 if a.quick else 20)
    bundled = ds.load_model("embryo_tiny", device=a.device, progress=False)
    res["automatic_s_per_plane"] = {
        a.arch: automatic_time(model, a.device, 1 if a.quick else 5),
        "embryo_tiny": automatic_time(bundled, a.device, 1 if a.quick else 5),
    }
    print(table(res))
    write_json(a.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
