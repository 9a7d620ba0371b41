"""Mask-decoder training throughput (masks/s): a naive loop vs napari-devosam's trainer.

The real vit_b prompt encoder + mask decoder with random weights, on random image
embeddings (1, 256, 64, 64) -- the image encoder is frozen in fine-tuning and not part of
this -- and ground truth from 1024 x 1024 embryo phantoms.

- naive: one box prompt per step through the stock modules, masks upsampled to the full
  1024 x 1024 plane (``sam.postprocess_masks``), BCE + dice there, IoU-head MSE, AdamW;
- ours: ``finetune.trainer.Trainer.step``: B prompts per step on one embedding, correction
  rounds, loss on the 256 x 256 low-res grid, through the folded decoder
  (``fast_decoding.decode_fast``, the default) or the stock modules (``--stock``). A mask is
  one prompt through one decoder pass with its backward pass, for both.

All variants run in turn, ``--repeats`` times (interleaved, so that load from other jobs hits
them alike); the median of each is reported, with the load average before and after.

With ``--learning``: does it learn? 10 phantom planes (256 x 256) embedded once by a random
vit_b (disk cache in ``--cache-dir``), then the same wall time (``--seconds``) for a plain
PyTorch loop (box prompts, BCE + dice at full resolution, AdamW 1e-3, 4 objects a step) and
for ``finetune`` with its defaults, and once more ``finetune`` from the decoder it wrote (a
good starting decoder); validation IoU curves of each (``finetune_learning.py``). With
``--embryo-tiny``: the same on the "unseen style" phantoms (dim, thick, broken membranes)
with the shipped ``embryo_tiny`` model (``load_model("embryo_tiny")``) instead.

Usage: python benchmarks/bench_finetune.py [--device cpu|cuda] [--steps N] [--batch 4,8,16]
       [--threads N] [--repeats R] [--stock] [--bf16] [--json FILE]
       python benchmarks/bench_finetune.py --learning [--seconds S] [--cache-dir DIR]
       [--embryo-tiny] [--threads N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def make_targets(device, n_planes: int = 2):
    from napari_devosam.engine.embeddings import PlaneEmbedding
    from napari_devosam.finetune.data import TrainingPlane
    from napari_devosam.finetune.targets import prepare_plane
    from napari_devosam.synthetic.phantoms import make_embryo

    gen = torch.Generator().manual_seed(0)
    targets = []
    for i in range(n_planes):
        image, labels = make_embryo(shape=(1024, 1024), n_cells=24, seed=i)
        emb = PlaneEmbedding(torch.randn(1, 256, 64, 64, generator=gen), (1024, 1024),
                             (1024, 1024))
        plane = TrainingPlane(f"phantom{i}", f"phantom{i}", image, labels.astype(np.int64))
        targets.append(prepare_plane(plane, emb, (256, 256), device))
    return targets


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_naive(sam, targets, steps: int, device) -> float:
    from napari_devosam.finetune.losses import dice

    dec, pe = sam.mask_decoder, sam.prompt_encoder
    dec.train()
    opt = torch.optim.AdamW(dec.parameters(), lr=1e-5)
    dense_pe = pe.get_dense_pe()
    truths = [torch.as_tensor(t.labels, device=device) for t in targets]

    def step(i):
        t = targets[i % len(targets)]
        k = i % t.n_objects
        truth = (truths[i % len(targets)] == int(t.ids[k])).float()[None, None]
        with torch.no_grad():
            sparse, dense = pe(points=None, boxes=t.boxes[k:k + 1], masks=None)
        low, iou = dec(t.features, dense_pe, sparse, dense, multimask_output=False)
        full = sam.postprocess_masks(low, t.input_size, t.original_size)
        loss = F.binary_cross_entropy_with_logits(full, truth) + dice(full, truth).mean()
        with torch.no_grad():
            actual = ((full > 0) & (truth > 0)).sum() / ((full > 0) | (truth > 0)).sum()
        loss = loss + F.mse_loss(iou[:, 0], actual[None])
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(0)  # warm-up
    sync(device)
    start = time.perf_counter()
    for i in range(1, steps + 1):
        step(i)
    sync(device)
    return steps / (time.perf_counter() - start)


def bench_ours(sam, targets, steps: int, batch: int, rounds: int, device,
               mixed_precision: bool | None = None, fast: bool = True) -> float:
    from napari_devosam.finetune.trainer import Trainer, training_model

    trainer = Trainer(training_model(sam, device), correction_rounds=rounds, lr=1e-5,
                      mixed_precision=mixed_precision, fast=fast)
    batches = [(t, idx) for t in targets for idx in trainer.epoch_batches(t, batch)]
    trainer.step(*batches[0])  # warm-up
    sync(device)
    done = trainer.masks_trained
    start = time.perf_counter()
    for i in range(steps):
        trainer.step(*batches[i % len(batches)])
    sync(device)
    return (trainer.masks_trained - done) / (time.perf_counter() - start)


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def variants(batches, default_batch, stock: bool, bf16: bool, device):
    """(key, label, kwargs of bench_ours) of every 'ours' variant."""
    out = [(f"ours_b{default_batch}_r0", f"ours, {default_batch} prompts/step, no correction "
            "rounds", dict(batch=default_batch, rounds=0))]
    for b in batches:
        out.append((f"ours_b{b}_r2", f"ours, {b} prompts/step, 2 correction rounds",
                    dict(batch=b, rounds=2)))
    if stock:
        out.append((f"stock_b{default_batch}_r2", f"ours with the stock decoder modules, "
                    f"{default_batch} prompts/step, 2 correction rounds",
                    dict(batch=default_batch, rounds=2, fast=False)))
    if bf16:
        tag = "bf16" if device.type == "cpu" else "autocast"
        out.append((f"ours_b{default_batch}_r2_{tag}", f"ours, {default_batch} prompts/step, "
                    f"2 correction rounds, {tag}",
                    dict(batch=default_batch, rounds=2, mixed_precision=True)))
    return out


def learning(args) -> dict:
    """``--learning``: plain loop vs ``finetune`` defaults (see the module docstring)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from finetune_learning import learning_run, write_phantoms, write_unseen_style

    work = Path(args.cache_dir)
    if args.embryo_tiny:
        from napari_devosam.models.loading import load_model

        sam, name = load_model("embryo_tiny", device="cpu"), "embryo_tiny, unseen style"
        root = write_unseen_style(work / "unseen_style")
    else:
        from napari_devosam.testing import random_sam

        sam, name = random_sam("vit_b"), "random vit_b"
        root = write_phantoms(work / "phantoms10", 10)
    print(f"machine: {machine(torch.device('cpu'))}; load average before: {load()}", flush=True)
    t0 = time.perf_counter()
    results = learning_run(sam, root, work / "cache", args.seconds, work)
    results.update(model=name, seconds=args.seconds, machine=machine(torch.device("cpu")),
                   load_after=load(), total_s=round(time.perf_counter() - t0, 1))
    for key in ("plain", "ours", "ours_from_trained"):
        if key in results:
            r = results[key]
            print(f"{key}: val IoU {r['start']:.3f} -> best {r['best']:.3f} in {r['steps']} "
                  f"steps; curve (step, s, IoU): "
                  + ", ".join(f"({a}, {b:.0f}, {c:.3f})" for a, b, c in r["curve"]))
    print(f"load average after: {results['load_after']}; total {results['total_s']} s")
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant")
    parser.add_argument("--naive-steps", type=int, default=None)
    parser.add_argument("--batch", default=None,
                        help="prompts per step (ours); a comma list times several")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved repetitions")
    parser.add_argument("--stock", action="store_true",
                        help="also time the trainer with the stock decoder modules")
    parser.add_argument("--bf16", action="store_true",
                        help="also time ours under autocast (bf16 on the CPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--learning", action="store_true",
                        help="measure learning (plain loop vs finetune defaults), not speed")
    parser.add_argument("--seconds", type=float, default=600.0,
                        help="--learning: wall time of each loop (default 600)")
    parser.add_argument("--cache-dir", default="/tmp/devosam-bench-finetune",
                        help="--learning: data and embedding cache folder")
    parser.add_argument("--embryo-tiny", action="store_true",
                        help="--learning: embryo_tiny on unseen-style phantoms")
    args = parser.parse_args(argv)
    if args.learning:
        if args.threads:
            torch.set_num_threads(args.threads)
        results = learning(args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
        return results

    from napari_devosam.finetune.train import DEFAULT_BATCH_PROMPTS, DEFAULT_BATCH_PROMPTS_CPU
    from napari_devosam.testing import random_sam

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    device = torch.device(args.device)
    default_batch = DEFAULT_BATCH_PROMPTS.get(device.type, DEFAULT_BATCH_PROMPTS_CPU)
    batches = [int(b) for b in args.batch.split(",")] if args.batch else [default_batch]
    sam = random_sam("vit_b")
    sam.prompt_encoder.to(device)
    sam.mask_decoder.to(device)
    sam.pixel_mean, sam.pixel_std = sam.pixel_mean.to(device), sam.pixel_std.to(device)
    targets = make_targets(device)
    before = load()
    print(f"machine: {machine(device)}; load average before: {before}", flush=True)
    runs = variants(batches, default_batch, args.stock, args.bf16, device)
    rates: dict[str, list[float]] = {"naive": []}
    for rep in range(args.repeats):
        rate = bench_naive(sam, targets, args.naive_steps or max(args.steps, 5), device)
        rates["naive"].append(rate)
        print(f"[{rep + 1}/{args.repeats}] naive (1 prompt/step, loss at 1024 x 1024):"
              f" {rate:6.1f} masks/s", flush=True)
        for key, label, kw in runs:
            rate = bench_ours(sam, targets, args.steps, device=device, **kw)
            rates.setdefault(key, []).append(rate)
            print(f"[{rep + 1}/{args.repeats}] {label}: {rate:6.1f} masks/s", flush=True)
    results = {"machine": machine(device), "device": str(device), "load_before": before}
    results.update({key: float(np.median(v)) for key, v in rates.items()})
    results["runs"] = rates
    results["load_after"] = load()
    naive = results["naive"]
    print(f"median of {args.repeats}; load average after: {results['load_after']}")
    print(f"naive (1 prompt/step, loss at 1024 x 1024): {naive:6.1f} masks/s")
    for key, label, _ in runs:
        print(f"{label}: {results[key]:6.1f} masks/s = {results[key] / naive:4.1f} x naive")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
