"""Embeddings: parity with SamPredictor.set_image, stacks, batching, out-of-memory fallback."""

import warnings

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

from napari_devosam.engine.embeddings import (
    EmbeddingCache,
    compute_embedding,
    embed_plane,
    embed_stack,
)
from napari_devosam.engine.image import to_rgb
from napari_devosam.testing import tiny_sam
from phantom_pairs import random_plane


@pytest.fixture(scope="module")
def sam():
    return tiny_sam()




def _run(gen):
    """Drive a progress generator; return (progress list, return value)."""
    progress = []
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as stop:
            return progress, stop.value


def test_compute_embedding_equals_sampredictor(sam):
    rgb = to_rgb(random_plane())
    emb = compute_embedding(sam, rgb)
    stock = SamPredictor(sam)
    stock.set_image(rgb)
    assert emb.features.dtype == torch.float32
    assert emb.features.shape == (1, 256, 16, 16)
    assert emb.original_size == (90, 130) == tuple(stock.original_size)
    assert emb.input_size == tuple(stock.input_size) == (177, 256)
    torch.testing.assert_close(emb.features, stock.features)
    # usable outside inference mode (e.g. as input of decoder training)
    assert not emb.features.is_inference()


def test_compute_embedding_needs_uint8_rgb(sam):
    with pytest.raises(ValueError, match="uint8"):
        compute_embedding(sam, random_plane())
    with pytest.raises(ValueError, match="uint8"):
        compute_embedding(sam, np.zeros((10, 10, 3), dtype=np.float32))


def test_embed_stack_progress_order_and_batches(counted):
    sam, calls = counted
    stack = np.stack([np.stack([random_plane(10 * t + z) for z in range(2)]) for t in range(2)])
    progress, embs = _run(embed_stack(sam, stack))
    assert progress == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]  # (0, total) before any work
    assert len(embs) == 4 and calls == [1, 1, 1, 1]
    for i in (0, 3):  # first and last plane, in C order of (T, Z)
        ref = compute_embedding(sam, to_rgb(stack.reshape(4, 90, 130)[i]))
        torch.testing.assert_close(embs[i].features, ref.features)
    calls.clear()
    progress, batched = _run(embed_stack(sam, stack, batch_size=3))
    assert calls == [3, 1] and progress[-1] == (4, 4) and len(progress) == 5
    for a, b in zip(embs, batched, strict=True):
        torch.testing.assert_close(a.features, b.features, rtol=1e-4, atol=1e-4)


def test_embed_stack_stops_between_planes_and_resumes_from_cache(counted, tmp_path):
    sam, calls = counted
    stack = np.stack([random_plane(i) for i in range(4)])
    gen = embed_stack(sam, stack, cache=EmbeddingCache(tmp_path))
    assert next(gen) == (0, 4) and calls == []
    assert next(gen) == (1, 4)
    assert next(gen) == (2, 4)
    gen.close()
    assert len(calls) == 2 and len(list(tmp_path.glob("*.npz"))) == 2
    calls.clear()
    # a fresh cache on the same folder: planes 0-1 load, 2-3 are computed; order is kept
    progress, embs = _run(embed_stack(sam, stack, cache=EmbeddingCache(tmp_path), batch_size=4))
    assert calls == [2] and progress[-1] == (4, 4)
    for i in (1, 2):  # one loaded from disk, one computed
        ref = compute_embedding(sam, to_rgb(stack[i]))
        torch.testing.assert_close(embs[i].features, ref.features, rtol=1e-3, atol=1e-3)


def test_embed_stack_rgb_planes_single_plane_and_keep(counted):
    sam, calls = counted
    rgb_stack = np.stack([to_rgb(random_plane(i)) for i in range(2)])  # (2, Y, X, 3)
    progress, embs = _run(embed_stack(sam, rgb_stack))
    assert progress == [(0, 2), (1, 2), (2, 2)]
    torch.testing.assert_close(embs[1].features, compute_embedding(sam, rgb_stack[1]).features)
    progress, embs = _run(embed_stack(sam, random_plane()))
    assert progress == [(0, 1), (1, 1)] and len(embs) == 1
    cache = EmbeddingCache()
    progress, embs = _run(embed_stack(sam, rgb_stack, cache=cache, keep=False))
    assert embs == [] and len(cache) == 2
    with pytest.raises(ValueError, match="batch_size"):
        next(embed_stack(sam, rgb_stack, batch_size=0))


def test_out_of_memory_retries_then_falls_back_to_cpu(sam, monkeypatch):
    rgb = to_rgb(random_plane())
    expected = compute_embedding(sam, rgb).features
    encoder = sam.image_encoder
    real_forward = encoder.forward
    failures = []

    def flaky(n):
        def forward(x):
            if len(failures) < n:
                failures.append(1)
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return real_forward(x)

        return forward

    monkeypatch.setattr(encoder, "forward", flaky(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one failure: the retry succeeds without a warning
        torch.testing.assert_close(compute_embedding(sam, rgb).features, expected)
    failures.clear()
    monkeypatch.setattr(encoder, "forward", flaky(2))
    with pytest.warns(RuntimeWarning, match="out of memory"):
        got = compute_embedding(sam, rgb)
    torch.testing.assert_close(got.features, expected)
    assert got.features.device == sam.pixel_mean.device
    failures.clear()
    monkeypatch.setattr(encoder, "forward", flaky(3))
    with pytest.warns(RuntimeWarning), pytest.raises(torch.OutOfMemoryError):
        compute_embedding(sam, rgb)


def test_other_errors_are_not_swallowed(sam, monkeypatch):
    def broken(x):
        raise RuntimeError("something else")

    monkeypatch.setattr(sam.image_encoder, "forward", broken)
    with pytest.raises(RuntimeError, match="something else"):
        compute_embedding(sam, to_rgb(random_plane()))



@pytest.mark.parametrize("shape", [(1, 600), (700, 1)])
def test_too_elongated_planes_are_refused_clearly(sam, shape):
    # tiny_sam's input is 256 px: 512:1 is the limit; a PIL error would be the alternative
    with pytest.raises(ValueError, match="too elongated for SAM"):
        embed_plane(sam, np.zeros(shape, np.uint8) + 7)


def test_elongated_planes_within_the_limit_embed(sam):
    emb = embed_plane(sam, (np.arange(2 * 400) % 255).astype(np.uint8).reshape(2, 400))
    assert emb.original_size == (2, 400)
