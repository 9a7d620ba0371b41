"""SAM image embeddings of planes and stacks.

An embedding is what SAM's image encoder makes of one plane: features ``(1, 256, h, w)``
(64 x 64 for the official models) plus the sizes needed to map masks back onto the plane.
Computing one takes seconds on a CPU (about 9 s for vit_b on 2 cores), so ``embed_plane``
and ``embed_stack`` go through an ``EmbeddingCache`` (see ``embedding_cache.py``: memory LRU
plus fp16 files on disk, keyed by a signature of pixels, normalisation, model and version).
``PlaneEmbedding``, ``EmbeddingCache`` and ``signature`` are re-exported here.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Generator

import numpy as np
import torch

from napari_devosam.engine import coords
from napari_devosam.engine.embedding_cache import (
    CACHE_FORMAT,
    EmbeddingCache,
    PlaneEmbedding,
    default_cache_dir,
    signature,
)
from napari_devosam.engine.image import DEFAULT_NORMALIZATION, Normalization, plane_rgb
from napari_devosam.engine.stacks import as_plane, iter_planes, plane_count
from napari_devosam.models.precision import encoder_autocast

__all__ = [
    "CACHE_FORMAT",
    "EmbeddingCache",
    "PlaneEmbedding",
    "compute_embedding",
    "compute_embeddings",
    "default_cache_dir",
    "embed_plane",
    "embed_stack",
    "signature",
]


# --- computing ---------------------------------------------------------------------------


def _model_device(sam) -> torch.device:
    return sam.pixel_mean.device


def _pixels(sam, rgbs: list[np.ndarray], device) -> tuple[torch.Tensor, tuple[int, int]]:
    """Resized, normalised and padded encoder input ``(B, 3, S, S)`` as SamPredictor makes it."""
    size = sam.image_encoder.img_size
    resized = [coords.resize_image(rgb, size) for rgb in rgbs]
    x = torch.as_tensor(np.stack(resized), device=device).permute(0, 3, 1, 2).contiguous()
    input_size = tuple(x.shape[-2:])
    mean = sam.pixel_mean.to(device)
    std = sam.pixel_std.to(device)
    x = (x - mean) / std
    x = torch.nn.functional.pad(x, (0, size - x.shape[-1], 0, size - x.shape[-2]))
    return x, input_size


def _run_encoder(sam, rgbs: list[np.ndarray], device) -> tuple[torch.Tensor, tuple[int, int]]:
    from segment_anything.modeling import ImageEncoderViT

    from napari_devosam.engine._fast.encoder import fused_attention

    with torch.inference_mode():
        x, input_size = _pixels(sam, rgbs, device)
        encoder = sam.image_encoder
        fused = contextlib.nullcontext()
        if type(encoder) is ImageEncoderViT:
            fused = fused_attention(encoder)  # ~1.7x faster on a CPU, ~2.4x less memory
        with fused, encoder_autocast(sam, device):
            features = encoder(x)
        return features.float(), input_size


def _is_oom(exc: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(exc, oom)


def _encode(sam, rgbs: list[np.ndarray]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Features ``(B, 256, h, w)`` on the model's device; OOM: free, retry, then CPU."""
    device = _model_device(sam)
    for _attempt in range(2):
        try:
            return _run_encoder(sam, rgbs, device)
        except Exception as exc:
            if not _is_oom(exc):
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    warnings.warn(
        f"out of memory on {device} while computing an image embedding; computing it on the "
        "CPU instead (slower)",
        RuntimeWarning,
        stacklevel=3,
    )
    encoder = sam.image_encoder
    encoder.to("cpu")
    try:
        features, input_size = _run_encoder(sam, rgbs, torch.device("cpu"))
    finally:
        encoder.to(device)
    return features.to(device), input_size


def _check_rgb(rgb) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(
            f"compute_embedding needs an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}; "
            "convert with napari_devosam.to_rgb"
        )
    return rgb


def check_plane_shape(shape: tuple[int, int], img_size: int) -> None:
    """Refuse a plane SAM cannot take: resized so that its long side is ``img_size``
    (``ResizeLongestSide``), its short side must keep at least one pixel.

    Raises ``ValueError`` naming the limit (e.g. about 2048:1 for the official models).
    """
    h, w = (int(n) for n in shape)
    if min(coords.input_size((h, w), img_size)) < 1:
        limit = 2 * img_size
        raise ValueError(f"a {h} x {w} plane is too elongated for SAM: resized to its "
                         f"{img_size}-pixel input, its short side would vanish; crop it into "
                         f"pieces at most {limit}:1")


def compute_embedding(sam, rgb: np.ndarray) -> PlaneEmbedding:
    """Run ``sam``'s image encoder on an ``(H, W, 3)`` uint8 image (as ``SamPredictor.set_image``),
    in the encoder precision set on ``sam`` (``models.precision``; features are always fp32).

    A CUDA out-of-memory error frees cached memory and retries once, then computes on the CPU
    with a ``RuntimeWarning``; the features always end on the model's device.
    """
    return compute_embeddings(sam, [rgb])[0]


def compute_embeddings(sam, rgbs: list[np.ndarray]) -> list[PlaneEmbedding]:
    """``compute_embedding`` for several images in one encoder batch. Their sizes may differ
    when they resize to the same input frame (``coords.input_size``: e.g. square windows of
    any side); each embedding keeps its own ``original_size``. Raises ``ValueError`` else."""
    rgbs = [_check_rgb(rgb) for rgb in rgbs]
    size = sam.image_encoder.img_size
    for rgb in rgbs:
        check_plane_shape(rgb.shape[:2], size)
    if len({coords.input_size(rgb.shape[:2], size) for rgb in rgbs}) > 1:
        raise ValueError("images embedded in one batch must resize to the same input size")
    import time

    from napari_devosam.engine.encoder_timing import record

    start = time.perf_counter()
    features, input_size = _encode(sam, rgbs)
    record(sam, len(rgbs), time.perf_counter() - start)  # for estimates before long runs
    return [
        PlaneEmbedding(features[i : i + 1].clone(), input_size,
                       tuple(int(n) for n in rgbs[i].shape[:2]))
        for i in range(len(rgbs))
    ]


# --- planes and stacks -------------------------------------------------------------------


def embed_plane(
    sam, plane, cache: EmbeddingCache | None = None, normalization: Normalization | None = None
) -> PlaneEmbedding:
    """The embedding of one plane (2D of any dtype, or RGB; axes as ``stacks.as_plane``), from
    ``cache`` when it has it."""
    normalization = normalization or DEFAULT_NORMALIZATION
    plane = as_plane(plane)
    device = _model_device(sam)
    key = None
    if cache is not None:
        key = signature(plane, sam, normalization)
        emb = cache.get(key, device)
        if emb is not None:
            return emb
    emb = compute_embedding(sam, plane_rgb(plane, normalization))
    if cache is not None:
        cache.put(key, emb)
    return emb


def embed_stack(
    sam,
    stack,
    cache: EmbeddingCache | None = None,
    normalization: Normalization | None = None,
    batch_size: int = 1,
    keep: bool = True,
) -> Generator[tuple[int, int], None, list[PlaneEmbedding]]:
    """Embed every plane of ``stack``; a generator yielding ``(0, total)`` first, then
    ``(done, total)`` after each plane.

    ``stack`` has its T and/or Z axes before ``(Y, X)`` (or ``(Y, X, 3|4)`` for colour); the
    planes come in C order of those axes. Cached planes are loaded; the others go through the
    encoder ``batch_size`` at a time. Closing the generator stops between planes (batches);
    what was computed so far stays cached. Returns the list of embeddings, in plane order
    (empty when ``keep`` is False, to bound memory when only filling the cache).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    normalization = normalization or DEFAULT_NORMALIZATION
    device = _model_device(sam)
    total = plane_count(stack)
    results: list[PlaneEmbedding] = []
    pending: list[tuple[str | None, np.ndarray]] = []
    done = 0
    yield done, total  # before any work: a progress bar can open (and time) from here

    def flush():
        embs = compute_embeddings(sam, [rgb for _, rgb in pending])
        for (key, _), emb in zip(pending, embs, strict=True):
            if cache is not None:
                cache.put(key, emb)
            if keep:
                results.append(emb)
        pending.clear()
        return len(embs)

    for _, plane in iter_planes(stack):
        key = None
        if cache is not None:
            key = signature(plane, sam, normalization)
            emb = cache.get(key, device)
            if emb is not None:
                if pending:  # keep plane order: finish the planes before this one first
                    for _ in range(flush()):
                        done += 1
                        yield done, total
                if keep:
                    results.append(emb)
                done += 1
                yield done, total
                continue
        pending.append((key, plane_rgb(plane, normalization)))
        if len(pending) >= batch_size:
            for _ in range(flush()):
                done += 1
                yield done, total
    if pending:
        for _ in range(flush()):
            done += 1
            yield done, total
    return results
