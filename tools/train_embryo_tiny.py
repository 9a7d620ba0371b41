"""Train ``embryo_tiny``: a small Segment Anything model for grayscale embryo microscopy, from
scratch, on the project's synthetic embryos (``napari_devosam.synthetic.phantoms``).

Reproducible: every random choice comes from ``numpy.random.Generator(seed)`` or
``torch.manual_seed(seed)``; training phantoms use seeds < 1_000_000 (the benchmark's held-out
phantoms use seeds >= 10_000_000). With the default, step-based budget two runs on the same
machine, torch version and thread count give the same weights; ``--max-minutes`` stops on wall
time instead (then the steps actually run are recorded).

Data: membrane and nuclei stains, 8- and 16-bit, many sizes and aspect ratios, time-lapse
frames; augmented with flips, rotations, noise, blur, contrast, gamma, offset, float casts.
Planes go through ``napari_devosam.to_rgb`` and SAM's ``ResizeLongestSide`` exactly as the
product feeds them. A pool of generated planes is kept in memory and one plane is replaced
every ``--refresh-every`` steps (no multiprocessing).

Prompts follow SAM's training: per image a jittered box or one positive point, then
``--rounds`` correction rounds, each adding a point from the error region (positive on a false
negative, negative on a false positive) and feeding the previous low-res logits back as
``mask_input``. Single-point prompts train the three multimask outputs with the minimum loss
(best of 3); boxes and multi-point prompts train the single output. Loss: BCE (weighted to the
object's surroundings) + dice on the low-res logits against area-averaged ground truth, plus
MSE of the IoU head against the true IoU of each output. AdamW, linear warmup, cosine decay.

Outputs a ``.safetensors`` file (fp32) whose metadata holds the architecture (JSON), the data
generator, seeds, package version, training time, hardware and held-out metrics, plus a
metrics JSON. ``--measure-configs`` instead times a few architectures (encoder time, training
step time, a short training run) and writes their table as JSON.

Usage::

    python tools/train_embryo_tiny.py                       # the shipped file (84 min, 2 cores)
    python tools/train_embryo_tiny.py --steps 200 --out /tmp/t.safetensors   # a quick try
    python tools/train_embryo_tiny.py --measure-configs --out-measure m.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SEED_LIMIT = 1_000_000  # training phantom seeds stay below this


def _load_bench():
    """The benchmark module (model building, held-out evaluation), loaded by path."""
    path = ROOT / "benchmarks" / "bench_embryo_tiny.py"
    spec = importlib.util.spec_from_file_location("bench_embryo_tiny", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_embryo_tiny"] = mod
    spec.loader.exec_module(mod)
    return mod


bench = _load_bench()

# Architectures compared by --measure-configs (only the keys differing from DEFAULT_CONFIG).
CANDIDATES = {
    "s512_p16_w96_d4": {},  # the prior prototype (= DEFAULT_CONFIG)
    "s512_p16_w128_d6": {"encoder_embed_dim": 128, "encoder_depth": 6,
                         "encoder_global_attn_indexes": [2, 5]},
    "s256_p8_w96_d4": {"img_size": 256, "patch_size": 8},
    "s384_p8_w64_d4": {"img_size": 384, "patch_size": 8, "encoder_embed_dim": 64,
                       "encoder_num_heads": 4, "encoder_window_size": 12},
    "s512_p8_w64_d4": {"img_size": 512, "patch_size": 8, "encoder_embed_dim": 64,
                       "encoder_num_heads": 4, "encoder_window_size": 16,
                       "encoder_global_attn_indexes": [3]},
}  # fmt: skip
CHOSEN = "s512_p16_w96_d4"

# The defaults are the shipped file's recipe (84 min, 2 threads on 2 cores; docs/models.md)
DEFAULTS = {
    "steps": 4000,
    "batch": 4,
    "objects": 6,
    "rounds": 1,
    "late_rounds": 2,  # > 0: from step ``late_from`` on, this many correction rounds instead
    "late_from": 2800,
    "lr": 1e-3,
    "warmup": 50,
    "weight_decay": 0.05,
    "pool": 320,
    "refresh_every": 2,
    "seed": 0,
}


# --- data --------------------------------------------------------------------------------


def random_layout(rng: np.random.Generator):
    """(shape, n_cells, kind, dtype) of one training plane."""
    long_side = int(rng.integers(192, 641))
    aspect = float(rng.uniform(1.0, 2.0))
    short_side = max(128, int(round(long_side / aspect)))
    shape = (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)
    max_fit = int(shape[0] * shape[1] * 0.4 / 60)
    # cell sizes from ~18 px to ~100 px across
    n_lo = max(1, int(shape[0] * shape[1] * 0.35 / (110**2)))
    n_hi = min(max_fit, 48, max(n_lo + 1, int(shape[0] * shape[1] * 0.35 / (20**2))))
    n_cells = int(rng.integers(n_lo, n_hi + 1)) if rng.random() < 0.85 else int(rng.integers(1, 5))
    kind = ("membrane", "nuclei")[int(rng.integers(2))]
    dtype = (np.uint16, np.uint8)[int(rng.random() < 0.4)]
    return shape, max(1, min(n_cells, max_fit)), kind, dtype


def generate(rng: np.random.Generator, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """One phantom plane, or (20%) 2-4 frames of a time-lapse; seed < TRAIN_SEED_LIMIT."""
    from napari_devosam.synthetic.phantoms import make_embryo, make_timelapse

    assert seed < TRAIN_SEED_LIMIT
    shape, n_cells, kind, dtype = random_layout(rng)
    if rng.random() < 0.2:
        t = int(rng.integers(2, 5))
        n0 = max(1, min(n_cells, int(rng.integers(1, 9))))
        stack, labels = make_timelapse(t, shape, n0, seed=seed, dtype=dtype, kind=kind,
                                       max_cells=min(48, int(shape[0] * shape[1] * 0.4 / 60)))
        return [(stack[i], labels[i]) for i in range(t)]
    return [make_embryo(shape, n_cells, seed=seed, dtype=dtype, kind=kind)]


def augment(img: np.ndarray, lab: np.ndarray, rng: np.random.Generator):
    """Geometric (flip, rot90) and photometric (gamma, contrast, offset, noise, blur, dtype)."""
    k = int(rng.integers(4))
    img, lab = np.rot90(img, k), np.rot90(lab, k)
    if rng.random() < 0.5:
        img, lab = img[:, ::-1], lab[:, ::-1]
    if rng.random() < 0.85:
        dtype = img.dtype
        x = img.astype(np.float32)
        top = float(np.iinfo(dtype).max) if dtype.kind in "ui" else float(x.max())
        lo, hi = np.percentile(x, (1, 99.8))
        y = np.clip((x - lo) / max(hi - lo, 1e-6), 0, None)
        if rng.random() < 0.5:
            y = y ** float(np.exp(rng.normal(0, 0.35)))  # gamma ~0.5..2
        if rng.random() < 0.3:
            y = ndimage.gaussian_filter(y, float(rng.uniform(0.5, 2.0)))
        if rng.random() < 0.4:
            y = y + rng.normal(0, rng.uniform(0.01, 0.12), y.shape).astype(np.float32)
        if rng.random() < 0.3:  # multiplicative (shot-like) noise
            y = y * (1 + rng.normal(0, rng.uniform(0.02, 0.2), y.shape).astype(np.float32))
        contrast = float(rng.uniform(0.1, 1.0))  # fraction of the dtype's range used
        offset = float(rng.uniform(0.0, 0.6)) * (1 - contrast)
        y = (offset + contrast * np.clip(y, 0, 1.2) / 1.2) * top
        if rng.random() < 0.15:
            img = y.astype(np.float32)
        else:
            img = np.clip(np.rint(y), 0, top).astype(dtype)
    return np.ascontiguousarray(img), np.ascontiguousarray(lab)


class Pool:
    """In-memory planes; ``refresh`` replaces the oldest with a freshly generated one."""

    def __init__(self, size: int, seed: int):
        self.rng = np.random.default_rng([seed, 1])
        self.next_seed = 1000 + 100_000 * (seed % 9)  # stays below TRAIN_SEED_LIMIT
        self.items: list = []
        self.oldest = 0
        self.generated = 0
        while len(self.items) < size:
            self.items.extend(self._new())
        self.items = self.items[:size]

    def _new(self):
        seed = self.next_seed
        self.next_seed += 1
        if self.next_seed >= TRAIN_SEED_LIMIT:
            raise RuntimeError("training seeds exhausted")
        self.generated += 1
        return generate(self.rng, seed)

    def refresh(self):
        for item in self._new():
            self.items[self.oldest] = item
            self.oldest = (self.oldest + 1) % len(self.items)

    def sample(self, rng):
        return self.items[int(rng.integers(len(self.items)))]


# --- prompts and targets -----------------------------------------------------------------


def prepare_image(sam, img: np.ndarray, transform):
    """(1, 3, S, S) normalised, padded encoder input and the resized input size (h, w)."""
    import torch

    import napari_devosam as ds

    rgb = transform.apply_image(ds.to_rgb(img))
    x = torch.as_tensor(rgb).permute(2, 0, 1)[None].float()
    x = (x - sam.pixel_mean) / sam.pixel_std
    s = sam.image_encoder.img_size
    x = torch.nn.functional.pad(x, (0, s - x.shape[-1], 0, s - x.shape[-2]))
    return x, tuple(rgb.shape[:2])


def soft_targets(masks: np.ndarray, input_size, img_size: int, res: int):
    """(K, H, W) bool -> (K, res, res) float: area fractions in the padded input frame."""
    import torch
    import torch.nn.functional as F

    h = max(1, round(input_size[0] * res / img_size))
    w = max(1, round(input_size[1] * res / img_size))
    t = torch.as_tensor(masks[:, None].astype(np.float32))
    t = F.interpolate(t, (h, w), mode="area")[:, 0]
    return F.pad(t, (0, res - w, 0, res - h))


def sample_in(mask: np.ndarray, rng, interior: bool):
    """(row, col) in ``mask``: uniformly, or among the deeper half (distance transform)."""
    if interior:
        dt = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        cand = np.argwhere(dt >= 0.5 * dt.max())
    else:
        cand = np.argwhere(mask)
    return cand[int(rng.integers(len(cand)))]


def jitter_box(box, shape, rng):
    """Tight (c0, r0, c1, r1) -> jittered, SAM-style (std ~7% of the side, <= 15 px)."""
    c0, r0, c1, r1 = box
    if rng.random() < 0.3:
        return np.array(box, dtype=np.float64)
    h, w = r1 - r0 + 1, c1 - c0 + 1
    noise = rng.normal(0, 1, 4) * 0.07 * np.array([w, h, w, h])
    noise = np.clip(noise, -15, 15)
    b = np.array(box, dtype=np.float64) + noise
    b[[0, 2]] = np.clip(b[[0, 2]], 0, shape[1] - 1)
    b[[1, 3]] = np.clip(b[[1, 3]], 0, shape[0] - 1)
    if b[2] <= b[0] or b[3] <= b[1]:
        return np.array(box, dtype=np.float64)
    return b


def correction(pred: np.ndarray, gt: np.ndarray, rng):
    """A point from the error region: ((row, col), label). Half the time at the interior of
    the largest error component (as the benchmark clicks), else uniform over all errors."""
    fn, fp = gt & ~pred, pred & ~gt
    n_fn, n_fp = int(fn.sum()), int(fp.sum())
    if n_fn + n_fp == 0:
        return sample_in(gt, rng, True), 1
    if rng.random() < 0.5:
        corr = bench.correction_point(pred, gt)
        return np.array(corr[0]), corr[1]
    label = 1 if rng.random() < n_fn / (n_fn + n_fp) else 0
    return sample_in(fn if label else fp, rng, False), label


# --- one image's losses ------------------------------------------------------------------


def image_losses(sam, emb, lab, input_size, transform, rng, cfg, train_cfg):
    """Losses for K objects of one image over 1 + rounds decoder passes."""
    import torch
    import torch.nn.functional as F

    img_size = cfg["img_size"]
    grid = img_size // cfg["patch_size"]
    low = 4 * grid
    res = low  # loss on the low-res logits themselves (cheapest; soft targets keep sub-pixel)
    ids = np.unique(lab)
    ids = ids[ids > 0]
    if len(ids) > train_cfg["objects"]:
        ids = rng.choice(ids, train_cfg["objects"], replace=False)
    gts = np.stack([lab == i for i in ids])
    target = soft_targets(gts, input_size, img_size, res)  # (K, res, res)
    hard = target > 0.5
    # BCE weights: 1 around the object (its box grown by half its size + 3 px), 0.05 far away,
    # so the loss is not dominated by the easy background of the whole padded frame
    weight = torch.full_like(target, 0.05)
    for k in range(len(ids)):
        nz = torch.nonzero(target[k] > 0.25)
        if len(nz) == 0:
            nz = torch.nonzero(target[k] > 0)
        (r0, c0), (r1, c1) = nz.min(0).values.tolist(), nz.max(0).values.tolist()
        gr, gc = (r1 - r0) // 2 + 3, (c1 - c0) // 2 + 3
        weight[k, max(0, r0 - gr) : r1 + gr + 1, max(0, c0 - gc) : c1 + gc + 1] = 1.0
    # masks in the original frame, for clicking on errors: predictions are thresholded at the
    # upsampled-to-original resolution only approximately (via the target frame); use the
    # target frame for both so clicks stay consistent: map the click back to original pixels.
    shape = lab.shape
    use_box = rng.random() < 0.5
    boxes = None
    if use_box:
        tight = []
        for g in gts:
            r = np.flatnonzero(g.any(1))
            c = np.flatnonzero(g.any(0))
            tight.append(jitter_box((c[0], r[0], c[-1], r[-1]), shape, rng))
        boxes = np.stack(tight)
        pts_rc, labs = np.zeros((len(ids), 0, 2)), np.zeros((len(ids), 0), dtype=np.int64)
    else:
        interior = rng.random() < 0.5
        pts_rc = np.stack([sample_in(g, rng, interior) for g in gts])[:, None].astype(float)
        labs = np.ones((len(ids), 1), dtype=np.int64)
    pe = sam.prompt_encoder.get_dense_pe()
    mask_in = None
    total = {"mask": 0.0, "iou": 0.0}
    stats = []
    scale = np.array([res / img_size * input_size[0] / shape[0],
                      res / img_size * input_size[1] / shape[1]])  # fmt: skip
    for round_ in range(1 + train_cfg["rounds"]):
        bt = None
        if boxes is not None:
            bt = torch.as_tensor(transform.apply_boxes(boxes, shape), dtype=torch.float32)
        pt = None
        if pts_rc.shape[1]:
            xy = transform.apply_coords(pts_rc[..., ::-1].copy(), shape)
            pt = (torch.as_tensor(xy, dtype=torch.float32), torch.as_tensor(labs))
        sparse, dense = sam.prompt_encoder(points=pt, boxes=bt, masks=mask_in)
        masks, iou_pred = sam.mask_decoder.predict_masks(
            image_embeddings=emb, image_pe=pe, sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
        )  # fmt: skip  (K, 4, low, low), (K, 4)
        multi = (not use_box) and round_ == 0
        sl = slice(1, 4) if multi else slice(0, 1)
        logits = masks[:, sl]
        up = logits if res == low else F.interpolate(logits, (res, res), mode="bilinear",
                                                         align_corners=False)  # fmt: skip
        tgt = target[:, None].expand_as(up)
        wt = weight[:, None]
        bce = (F.binary_cross_entropy_with_logits(up, tgt, reduction="none") * wt).sum((-2, -1))
        bce = bce / wt.sum((-2, -1))
        prob = torch.sigmoid(up)
        overlap = 2 * (prob * tgt).sum((-2, -1)) + 1
        dice = 1 - overlap / (prob.sum((-2, -1)) + tgt.sum((-2, -1)) + 1)
        mloss = bce + dice  # (K, C)
        with torch.no_grad():
            pred = up > 0
            inter = (pred & hard[:, None]).sum((-2, -1)).float()
            union = (pred | hard[:, None]).sum((-2, -1)).float()
            true_iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
        best = mloss.argmin(1)
        total["mask"] = total["mask"] + mloss.gather(1, best[:, None]).mean()
        total["iou"] = total["iou"] + F.mse_loss(iou_pred[:, sl], true_iou)
        chosen_iou = true_iou.gather(1, best[:, None])[:, 0]
        stats.append(float(chosen_iou.mean()))
        if round_ == train_cfg["rounds"]:
            break
        # next round: a correction click per object, previous logits as mask_input
        chosen = logits.gather(1, best[:, None, None, None].expand(-1, 1, low, low)).detach()
        mask_in = chosen
        pred_t = pred.gather(1, best[:, None, None, None].expand(-1, 1, res, res))[:, 0].numpy()
        hard_np = hard.numpy()
        new_pts, new_labs = [], []
        for k in range(len(ids)):
            (r, c), lb = correction(pred_t[k], hard_np[k], rng)
            # target-frame pixel -> original pixel (centre), clipped to the plane
            rr = min(shape[0] - 1, max(0.0, (r + 0.5) / scale[0] - 0.5))
            cc = min(shape[1] - 1, max(0.0, (c + 0.5) / scale[1] - 0.5))
            if lb == 1 and not gts[k][int(round(rr)), int(round(cc))]:
                rr, cc = sample_in(gts[k], rng, False)  # keep positive clicks on the object
            new_pts.append((rr, cc))
            new_labs.append(lb)
        pts_rc = np.concatenate([pts_rc, np.array(new_pts, dtype=float)[:, None]], 1)
        labs = np.concatenate([labs, np.array(new_labs, dtype=np.int64)[:, None]], 1)
    n = 1 + train_cfg["rounds"]
    return total["mask"] / n, total["iou"] / n, stats


# --- training ----------------------------------------------------------------------------


def lr_at(progress: float, step: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def cpu_model() -> str:
    return bench.cpu_model()


def save(sam, path, meta: dict):
    from safetensors.torch import save_file

    state = {k: v.detach().float().contiguous() for k, v in sam.state_dict().items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    tmp = str(path) + ".tmp"
    save_file(state, tmp, metadata=meta)
    os.replace(tmp, path)


def train(cfg: dict, train_cfg: dict, out: Path | None, max_minutes: float | None,
          log=print, checkpoint_minutes: float = 5.0, eval_planes: int = 24):  # fmt: skip
    import torch
    from segment_anything.utils.transforms import ResizeLongestSide

    import napari_devosam as ds

    seed = train_cfg["seed"]
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 2])
    sam = bench.build_model(cfg)
    if train_cfg.get("init"):  # a second phase continues from an earlier run's weights
        from safetensors.torch import load_file

        sam.load_state_dict(load_file(train_cfg["init"]))
    sam.train()
    n_params = sum(p.numel() for p in sam.parameters())
    decay, no_decay = [], []
    for name, p in sam.named_parameters():
        (decay if p.ndim >= 2 and "pos" not in name else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": train_cfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=train_cfg["lr"], betas=(0.9, 0.999))  # fmt: skip
    transform = ResizeLongestSide(cfg["img_size"])
    t0 = time.perf_counter()
    pool = Pool(train_cfg["pool"], seed)
    t_pool = time.perf_counter() - t0
    log(f"pool: {len(pool.items)} planes from {pool.generated} generator calls in {t_pool:.1f} s;"
        f" {n_params / 1e6:.3f} M parameters")  # fmt: skip
    steps = train_cfg["steps"]
    t_train = time.perf_counter()
    last_ckpt = t_train
    hist = []
    step = 0

    def meta(extra=None):
        m = {
            "format": "napari-devosam embryo_tiny v1",
            "config": json.dumps(cfg),
            "training": json.dumps({**train_cfg, "steps_run": step,
                                    "pool_planes_generated": pool.generated,
                                    "max_minutes": max_minutes}),
            "data": json.dumps({
                "generator": "napari_devosam.synthetic.phantoms.make_embryo/make_timelapse",
                "kinds": ["membrane", "nuclei"], "dtypes": ["uint16", "uint8"],
                "train_seeds": [1000 + 100_000 * (seed % 9), pool.next_seed - 1],
                "train_seed_limit": TRAIN_SEED_LIMIT,
                "heldout_seeds_from": bench.HELDOUT_SEED0,
                "augment": "rot90, flip, gamma, blur, additive+multiplicative noise, contrast, "
                           "offset, float cast; input via napari_devosam.to_rgb + "
                           "ResizeLongestSide",
            }),
            "package_version": ds.__version__,
            "torch_version": torch.__version__,
            "hardware": json.dumps({"cpu": cpu_model(), "processor": platform.processor(),
                                    "machine": platform.machine(), "cpu_count": os.cpu_count(),
                                    "torch_threads": torch.get_num_threads()}),
            "training_seconds": f"{time.perf_counter() - t0:.1f}",
            "n_params": str(n_params),
        }  # fmt: skip
        m.update(extra or {})
        return m

    while True:
        elapsed = time.perf_counter() - t_train
        if max_minutes is not None and elapsed > 60 * max_minutes:
            break
        if step >= steps:
            break
        progress = step / steps
        if max_minutes is not None:
            progress = max(progress, elapsed / (60 * max_minutes))
        lr = lr_at(progress, step, train_cfg["lr"], train_cfg["warmup"])
        for g in opt.param_groups:
            g["lr"] = lr
        if train_cfg["refresh_every"] and step % train_cfg["refresh_every"] == 0 and step:
            pool.refresh()
        step_cfg = train_cfg
        if train_cfg.get("late_rounds") and step >= train_cfg.get("late_from", 0):
            step_cfg = {**train_cfg, "rounds": train_cfg["late_rounds"]}
        batch = [augment(*pool.sample(rng), rng) for _ in range(train_cfg["batch"])]
        xs, sizes = zip(*(prepare_image(sam, img, transform) for img, _ in batch), strict=True)
        embs = sam.image_encoder(torch.cat(xs))
        mloss = iloss = 0.0
        ious = []
        for i, (_img, lab) in enumerate(batch):
            m, io, st = image_losses(sam, embs[i : i + 1], lab, sizes[i], transform, rng, cfg,
                                     step_cfg)  # fmt: skip
            mloss = mloss + m / len(batch)
            iloss = iloss + io / len(batch)
            ious.append(st)
        loss = mloss + iloss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(sam.parameters(), 1.0)
        opt.step()
        step += 1
        r = np.mean(ious, 0)  # train IoU after each round; pad so rounds can change mid-run
        hist.append((float(mloss.detach()), float(iloss.detach()), r[0], r[min(1, len(r) - 1)],
                     r[-1]))
        if step % 25 == 0 or step == 1:
            h = np.mean(hist[-25:], 0)
            el = time.perf_counter() - t_train
            log(f"step {step}/{steps} lr {lr:.2e} mask {h[0]:.4f} iou-mse {h[1]:.4f} "
                f"train-IoU r0 {h[2]:.3f} r1 {h[3] if len(h) > 3 else 0:.3f} "
                f"r2 {h[-1]:.3f} | {el / step:.2f} s/step, {el / 60:.1f} min")  # fmt: skip
        if out is not None and time.perf_counter() - last_ckpt > 60 * checkpoint_minutes:
            sam.eval()
            save(sam, str(out).replace(".safetensors", ".ckpt.safetensors"), meta())
            sam.train()
            last_ckpt = time.perf_counter()
            log(f"checkpoint at step {step}")
    train_seconds = time.perf_counter() - t_train
    sam.eval()
    if out is not None:  # first without metrics: a failing evaluation must not lose the run
        save(sam, out, meta())
    log(f"trained {step} steps in {train_seconds / 60:.1f} min; evaluating on held-out phantoms")
    metrics = {}
    if eval_planes:
        metrics = bench.evaluate(sam, n_planes=eval_planes)
    metrics.update({"steps_run": step, "train_seconds": train_seconds, "n_params": n_params,
                    "total_seconds": time.perf_counter() - t0,
                    "final_train_loss_mask": float(np.mean([h[0] for h in hist[-50:]])),
                    "final_train_loss_iou": float(np.mean([h[1] for h in hist[-50:]]))},
                   )  # fmt: skip
    if out is not None:
        save(sam, out, meta({"heldout_metrics": json.dumps(
            {k: v for k, v in metrics.items() if k != "per_stain"})}))  # fmt: skip
    return sam, metrics


# --- architecture measurements -----------------------------------------------------------


def measure_configs(args, log=print) -> dict:
    """Encoder time, training step time and a short training run for each candidate."""
    import torch

    from napari_devosam.synthetic.phantoms import make_embryo

    plane, _ = make_embryo((512, 512), 16, seed=TRAIN_SEED_LIMIT - 1)
    rows = {}
    for name, delta in CANDIDATES.items():
        if args.only and name not in args.only.split(","):
            continue
        cfg = {**bench.DEFAULT_CONFIG, **delta}
        torch.manual_seed(0)
        sam = bench.build_model(cfg).eval()
        n_enc = sum(p.numel() for p in sam.image_encoder.parameters())
        n_all = sum(p.numel() for p in sam.parameters())
        enc_s = bench.time_encoder(sam, plane, repeats=5)
        row = {"config": delta, "grid": cfg["img_size"] // cfg["patch_size"],
               "encoder_params": n_enc, "params": n_all, "fp32_mb": 4 * n_all / 1e6,
               "encoder_s_512plane": enc_s}  # fmt: skip
        if args.measure_steps:
            tc = {**DEFAULTS, "steps": args.measure_steps, "pool": 48, "warmup": 30,
                  "seed": 0}  # fmt: skip
            t = time.perf_counter()
            n_eval = 8 if args.measure_steps >= 100 else 0
            _, m = train(cfg, tc, None, args.measure_minutes, log=lambda *a: None,
                         eval_planes=n_eval)  # fmt: skip
            row.update({"short_run_steps": m["steps_run"],
                        "short_run_s_per_step": m["train_seconds"] / max(1, m["steps_run"]),
                        "short_run_final_train_mask_loss": m["final_train_loss_mask"],
                        "short_run_total_s": time.perf_counter() - t})  # fmt: skip
            for key in ("box_iou", "point_iou", "box_2corr_iou", "spearman"):
                if key in m:
                    row["short_run_" + key] = m[key]
        rows[name] = row
        log(f"{name}: {json.dumps(row)}")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="/work/artifacts/embryo_tiny.safetensors")
    p.add_argument("--metrics", default=None, help="metrics JSON (default: next to --out)")
    p.add_argument("--config", default=CHOSEN, choices=sorted(CANDIDATES))
    p.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop after this much training wall time (not reproducible)")
    for key in ("batch", "objects", "rounds", "late_rounds", "late_from", "pool",
                "refresh_every", "seed", "warmup"):
        p.add_argument("--" + key.replace("_", "-"), type=int, default=DEFAULTS[key])
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--init", default=None,
                   help="start from these weights (a phase-1 file) instead of random ones")
    p.add_argument("--weight-decay", type=float, default=DEFAULTS["weight_decay"])
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="torch threads (default: every core). On a CPU shared with another "
                        "job use fewer: on 2 cores, 2 OpenMP threads beside another job ran "
                        "10-14x slower than 1. Weights are reproducible for the same count")
    p.add_argument("--eval-planes", type=int, default=24)
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--measure-configs", action="store_true")
    p.add_argument("--measure-steps", type=int, default=0)
    p.add_argument("--measure-minutes", type=float, default=None)
    p.add_argument("--only", default="", help="comma-separated candidate names to measure")
    p.add_argument("--out-measure", default="/work/artifacts/embryo_tiny_configs.json")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)

    def log(*a):
        print(time.strftime("%H:%M:%S"), *a, flush=True)

    if args.measure_configs:
        rows = measure_configs(args, log)
        Path(args.out_measure).parent.mkdir(parents=True, exist_ok=True)
        old = {}
        if Path(args.out_measure).exists():
            old = json.loads(Path(args.out_measure).read_text()).get("candidates", {})
        old.update(rows)
        Path(args.out_measure).write_text(json.dumps(
            {"cpu": cpu_model(), "torch_threads": torch.get_num_threads(),
             "candidates": old}, indent=1))  # fmt: skip
        return 0

    cfg = {**bench.DEFAULT_CONFIG, **CANDIDATES[args.config]}
    train_cfg = {k: getattr(args, k) for k in DEFAULTS}
    train_cfg["config_name"] = args.config
    if args.init:
        import hashlib

        train_cfg["init"] = args.init
        train_cfg["init_sha256"] = hashlib.sha256(Path(args.init).read_bytes()).hexdigest()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log(f"config {json.dumps(cfg)}")
    log(f"training {json.dumps(train_cfg)} max_minutes={args.max_minutes}")
    sam, metrics = train(cfg, train_cfg, out, args.max_minutes, log,
                         args.checkpoint_minutes, args.eval_planes)  # fmt: skip
    metrics.update({"config": cfg, "training": train_cfg, "weights": str(out),
                    "weights_bytes": out.stat().st_size, "cpu": cpu_model(),
                    "torch_threads": torch.get_num_threads()})  # fmt: skip
    mpath = Path(args.metrics or str(out).replace(".safetensors", "_metrics.json"))
    mpath.write_text(json.dumps(metrics, indent=1))
    log("held-out metrics:\n" + bench.report(metrics))
    log(json.dumps({k: v for k, v in metrics.items() if k not in ("config", "training")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
