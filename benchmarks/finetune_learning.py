"""Does fine-tuning learn? Data and loops for ``bench_finetune.py --learning``.

- ``write_phantoms`` / ``write_unseen_style``: image/label folders of embryo phantoms, the
  latter post-processed into a style the shipped models never saw (dim, thick, broken
  membranes);
- ``cached_targets``: every plane embedded once by a model through a disk
  ``EmbeddingCache`` (a random vit_b takes ~9 s a plane on a CPU), split as ``finetune``
  splits it;
- ``plain_loop``: a plain PyTorch loop (box prompts, BCE + dice at full resolution, AdamW,
  4 objects a step), validated with ``finetune.evaluate.score_targets`` like ours;
- ``ours``: ``finetune.finetune`` with its defaults, under the same wall-time limit.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def write_phantoms(root, n: int = 10, shape=(256, 256), n_cells: int = 8, first_seed: int = 0,
                   kind: str = "membrane", style=None) -> Path:
    """``root/images`` + ``root/labels``: ``n`` phantoms (seeds ``first_seed + i``) as TIFFs;
    ``style(image, labels, seed)`` may post-process each image. Returns ``root``."""
    from napari_devosam.io.write import write_tiff
    from napari_devosam.synthetic.phantoms import make_embryo

    root = Path(root)
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, labels = make_embryo(shape=shape, n_cells=n_cells, seed=first_seed + i,
                                    kind=kind)
        if style is not None:
            image = style(image, labels, first_seed + i)
        write_tiff(root / "images" / f"plane{i:02d}.tif", image)
        write_tiff(root / "labels" / f"plane{i:02d}.tif", labels.astype(np.uint16))
    return root


def unseen_style(image: np.ndarray, labels: np.ndarray, seed: int, dim: float = 0.35,
                 thickness: int = 5, gap_fraction: float = 0.3) -> np.ndarray:
    """A membrane phantom in a style ``make_embryo`` never renders: membranes thickened by a
    grey dilation (``thickness`` px), ``gap_fraction`` of the membrane broken by gaps (blobs
    set to the local cytoplasm level), the whole image dimmed to ``dim`` of its signal
    above the background, plus shot-like noise. Same dtype as ``image``; labels unchanged."""
    from scipy import ndimage

    rng = np.random.default_rng(seed + 7_000_003)
    img = image.astype(np.float64)
    thick = ndimage.grey_dilation(img, size=(thickness, thickness))
    cytoplasm = ndimage.median_filter(img, size=9)
    holes = rng.random(img.shape) < gap_fraction * 0.02
    holes = ndimage.binary_dilation(holes, iterations=5)
    out = np.where(holes, cytoplasm, thick)
    floor = np.percentile(out, 1)
    out = floor + dim * (out - floor)
    out = out + rng.normal(0.0, 0.05 * max(out.std(), 1e-9), out.shape)
    info = np.iinfo(image.dtype) if np.issubdtype(image.dtype, np.integer) else None
    if info is not None:
        out = np.clip(np.round(out), info.min, info.max)
    return out.astype(image.dtype)


def write_unseen_style(root, n: int = 12, shape=(256, 256), n_cells: int = 8,
                       first_seed: int = 20_000_000) -> Path:
    """``write_phantoms`` in the ``unseen_style`` (seeds far from any training seed)."""
    return write_phantoms(root, n, shape, n_cells, first_seed, style=unseen_style)


def cached_targets(root, sam, cache_dir, val_fraction: float = 0.2, seed: int = 0):
    """(train targets, validation targets) of the planes in ``root``, embedded by ``sam``
    through a disk cache at ``cache_dir`` and split as ``finetune`` splits them."""
    from napari_devosam.engine.embedding_cache import EmbeddingCache
    from napari_devosam.engine.embeddings import embed_plane
    from napari_devosam.finetune.data import load_planes, split_planes
    from napari_devosam.finetune.targets import prepare_plane

    cache = EmbeddingCache(cache_dir, max_items=0)
    train, val = split_planes(load_planes(root), val_fraction, seed)
    grid = tuple(4 * n for n in sam.prompt_encoder.image_embedding_size)
    dev = sam.pixel_mean.device
    out = []
    for planes in (train, val):
        out.append([prepare_plane(p, embed_plane(sam, p.image, cache), grid, dev)
                    for p in planes])
    return out[0], out[1], cache


def plain_loop(sam, train_t, val_t, seconds: float, lr: float = 1e-3, batch: int = 4,
               validate_every: int = 25, seed: int = 0) -> dict:
    """A plain PyTorch loop on a copy of ``sam``'s decoder for ``seconds`` of training time
    (validation time not counted): one random training plane a step, ``batch`` random
    objects, their tight boxes, single-mask output upsampled to the full plane, BCE + dice
    there, AdamW. Returns ``{"curve": [(step, seconds, val_iou)], "best": ..., "steps": n}``."""
    import torch
    import torch.nn.functional as F

    from napari_devosam.finetune.evaluate import score_targets
    from napari_devosam.finetune.losses import dice
    from napari_devosam.finetune.trainer import training_model

    dev = sam.pixel_mean.device
    model = training_model(sam, dev)
    dec, pe = model.mask_decoder, model.prompt_encoder
    opt = torch.optim.AdamW(dec.parameters(), lr=lr)
    dense_pe = pe.get_dense_pe().detach()
    rng = np.random.default_rng(seed)
    truths = [torch.as_tensor(t.labels, device=dev) for t in train_t]
    curve = [(0, 0.0, score_targets(model, val_t)["mean_iou"])]
    step, spent = 0, 0.0
    while spent < seconds:
        t0 = time.perf_counter()
        k = int(rng.integers(len(train_t)))
        t = train_t[k]
        idx = torch.as_tensor(rng.choice(t.n_objects, size=min(batch, t.n_objects),
                                         replace=False))
        truth = (truths[k][None] == torch.as_tensor(t.ids)[idx][:, None, None]).float()
        dec.train()
        with torch.no_grad():
            sparse, dense = pe(points=None, boxes=t.boxes[idx], masks=None)
        low, _ = dec(t.features, dense_pe, sparse, dense, multimask_output=False)
        full = model.postprocess_masks(low, t.input_size, t.original_size)
        loss = (F.binary_cross_entropy_with_logits(full, truth[:, None])
                + dice(full, truth[:, None]).mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        spent += time.perf_counter() - t0
        if step % validate_every == 0 or spent >= seconds:
            curve.append((step, round(spent, 1), score_targets(model, val_t)["mean_iou"]))
    return {"curve": curve, "best": max(c[2] for c in curve), "steps": step,
            "start": curve[0][2]}


def ours(root, sam, cache, seconds: float, out=None, **kwargs) -> dict:
    """``finetune.finetune`` on ``root`` (defaults unless ``kwargs``) for at most ``seconds``
    of wall time (embedding, validation and training all count), writing to ``out`` (default:
    a temporary file, removed). Returns ``{"curve": [(step, seconds, val_iou)], "best",
    "start", "steps", "stopped", "best_step", "path"}``."""
    import tempfile

    from napari_devosam.finetune import run_finetune

    with tempfile.TemporaryDirectory() as tmp:
        r = run_finetune(root, sam, out=out or Path(tmp) / "d.safetensors", cache=cache,
                         max_minutes=seconds / 60.0, **kwargs)
    curve = [(h["step"], h["elapsed"], h["val_iou"]) for h in r.history]
    return {"curve": curve, "best": r.val_iou_after, "start": r.val_iou_before,
            "steps": r.steps_run, "stopped": r.stopped, "best_step": r.best_step,
            "path": None if out is None or r.path is None else str(r.path)}


def learning_run(sam, root, cache_dir, seconds: float, workdir, pretrained: bool = True
                 ) -> dict:
    """Plain loop vs ``finetune`` defaults on the planes in ``root`` for ``seconds`` each;
    with ``pretrained``, ``finetune`` defaults once more starting from the decoder the first
    run wrote (a good decoder must not get worse: the best validation weights are kept)."""
    from napari_devosam.models.decoder_files import apply_decoder

    train_t, val_t, cache = cached_targets(root, sam, cache_dir)
    out = {"plain": plain_loop(sam, train_t, val_t, seconds)}
    out["ours"] = ours(root, sam, cache, seconds, out=Path(workdir) / "ours.safetensors")
    if pretrained and out["ours"]["path"]:
        apply_decoder(sam, out["ours"]["path"])
        out["ours_from_trained"] = ours(root, sam, cache, seconds)
    return out
