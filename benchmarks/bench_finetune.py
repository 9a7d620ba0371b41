"""Mask-decoder training throughput (masks/s): a naive loop vs napari-devosam's trainer.

The real vit_b prompt encoder + mask decoder with random weights, on random image
embeddings (1, 256, 64, 64) -- the image encoder is frozen in fine-tuning and not part of
this -- and ground truth from 1024 x 1024 embryo phantoms.

- naive: one box prompt per step through the stock modules, masks upsampled to the full
  1024 x 1024 plane (``sam.postprocess_masks``), BCE + dice there, IoU-head MSE, AdamW;
- ours: ``finetune.trainer.Trainer.step``: B prompts per step on one embedding, correction
  rounds, loss on the 256 x 256 low-res grid. A mask is one prompt through one decoder pass
  with its backward pass, for both.

Usage: python benchmarks/bench_finetune.py [--device cpu|cuda] [--steps N] [--batch B]
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
    from napari_devosam.embeddings import PlaneEmbedding
    from napari_devosam.finetune.data import Plane
    from napari_devosam.finetune.targets import prepare_plane
    from napari_devosam.phantoms import make_embryo

    gen = torch.Generator().manual_seed(0)
    targets = []
    for i in range(n_planes):
        image, labels = make_embryo(shape=(1024, 1024), n_cells=24, seed=i)
        emb = PlaneEmbedding(torch.randn(1, 256, 64, 64, generator=gen), (1024, 1024),
                             (1024, 1024))
        plane = Plane(f"phantom{i}", f"phantom{i}", image, labels.astype(np.int64))
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
               mixed_precision: bool | None = None) -> float:
    from napari_devosam.finetune.trainer import Trainer, training_model

    trainer = Trainer(training_model(sam, device), correction_rounds=rounds, lr=1e-5,
                      mixed_precision=mixed_precision)
    batches = [(t, idx) for t in targets for idx in trainer.epoch_batches(t, batch)]
    trainer.step(*batches[0])  # warm-up
    sync(device)
    done = trainer.masks_trained
    start = time.perf_counter()
    for i in range(steps):
        trainer.step(*batches[i % len(batches)])
    sync(device)
    return (trainer.masks_trained - done) / (time.perf_counter() - start)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant")
    parser.add_argument("--naive-steps", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None, help="prompts per step (ours)")
    parser.add_argument("--bf16", action="store_true",
                        help="also time ours under bf16 autocast on the CPU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)

    from napari_devosam.finetune.train import DEFAULT_BATCH_PROMPTS, DEFAULT_BATCH_PROMPTS_CPU
    from napari_devosam.testing import random_sam

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    device = torch.device(args.device)
    batch = args.batch or DEFAULT_BATCH_PROMPTS.get(device.type, DEFAULT_BATCH_PROMPTS_CPU)
    sam = random_sam("vit_b")
    sam.prompt_encoder.to(device)
    sam.mask_decoder.to(device)
    sam.pixel_mean, sam.pixel_std = sam.pixel_mean.to(device), sam.pixel_std.to(device)
    targets = make_targets(device)
    print(f"machine: {machine(device)}", flush=True)
    naive = bench_naive(sam, targets, args.naive_steps or max(args.steps, 5), device)
    print(f"naive (1 prompt/step, loss at 1024 x 1024): {naive:6.1f} masks/s", flush=True)
    results = {"machine": machine(device), "device": str(device), "naive": naive}
    variants = [(0, None), (2, None)] + ([(2, True)] if args.bf16 else [])
    for rounds, mixed in variants:
        rate = bench_ours(sam, targets, args.steps, batch, rounds, device, mixed)
        tag = ", bf16 autocast" if mixed and device.type == "cpu" else ""
        results[f"ours_b{batch}_r{rounds}{'_bf16' if tag else ''}"] = rate
        print(f"ours ({batch} prompts/step, {rounds} correction rounds{tag}, loss at 256 x 256):"
              f" {rate:6.1f} masks/s  = {rate / naive:4.1f} x naive", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
