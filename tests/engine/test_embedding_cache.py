"""The embedding cache: signatures, the memory LRU, fp16 files, bad files, reload speed."""

import time

import numpy as np
import pytest
import torch

from napari_devosam.engine.embedding_cache import EmbeddingCache, PlaneEmbedding, signature
from napari_devosam.engine.embeddings import compute_embedding, embed_plane
from napari_devosam.engine.image import Normalization, to_rgb
from napari_devosam.testing import tiny_sam
from phantom_pairs import random_plane


@pytest.fixture(scope="module")
def sam():
    return tiny_sam()




def test_signature_tracks_pixels_normalisation_and_encoder(sam):
    plane = random_plane()
    key = signature(plane, sam)
    assert key == signature(plane.copy(), sam) == signature(np.asfortranarray(plane), sam)
    assert key == EmbeddingCache.signature(plane, sam, None)
    changed = plane.copy()
    changed[5, 5] += 1
    assert signature(changed, sam) != key
    assert signature(plane.astype(np.int32), sam) != key
    assert signature(plane.view(np.int16), sam) != key  # same bytes, other dtype
    assert signature(plane.reshape(130, 90), sam) != key  # same bytes, other shape
    assert signature(plane, sam, Normalization(1, 99)) != key
    assert signature(plane, tiny_sam(seed=1)) != key
    other_decoder = tiny_sam()
    other_decoder.mask_decoder.load_state_dict(tiny_sam(seed=5).mask_decoder.state_dict())
    assert signature(plane, other_decoder) == key  # the decoder does not change embeddings


def test_memory_cache_is_bounded_lru(counted):
    sam, calls = counted
    cache = EmbeddingCache(max_items=2)
    planes = [random_plane(i) for i in range(3)]
    for p in planes:
        embed_plane(sam, p, cache)
    assert len(cache) == 2 and len(calls) == 3
    embed_plane(sam, planes[2], cache)  # cached
    assert len(calls) == 3
    embed_plane(sam, planes[0], cache)  # evicted -> recomputed
    assert len(calls) == 4
    embed_plane(sam, planes[2], cache)
    assert len(calls) == 4


def test_disk_cache_roundtrip(counted, tmp_path):
    sam, calls = counted
    plane = random_plane()
    first = embed_plane(sam, plane, EmbeddingCache(tmp_path))
    files = list(tmp_path.iterdir())
    assert [f.suffix for f in files] == [".npz"]  # one file, no temporary left behind
    assert files[0].stat().st_size < 256 * 16 * 16 * 2 + 4096  # fp16
    again = embed_plane(sam, plane, EmbeddingCache(tmp_path))  # fresh memory: from disk
    assert len(calls) == 1
    assert again.input_size == first.input_size and again.original_size == first.original_size
    assert again.features.dtype == torch.float32
    torch.testing.assert_close(again.features, first.features, rtol=1e-3, atol=1e-3)


def test_mismatching_signature_is_recomputed(counted, tmp_path):
    sam, calls = counted
    a, b = random_plane(1), random_plane(2)
    cache = EmbeddingCache(tmp_path, max_items=0)
    emb_a = embed_plane(sam, a, cache)
    key_a, key_b = signature(a, sam), signature(b, sam)
    # plant a's file under b's name: the signature inside must stop it from being reused
    cache.path_for(key_a).rename(cache.path_for(key_b))
    emb_b = embed_plane(sam, b, cache)
    assert len(calls) == 2
    assert not torch.allclose(emb_b.features, emb_a.features, atol=1e-2)
    torch.testing.assert_close(emb_b.features, compute_embedding(sam, to_rgb(b)).features)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_file_is_recomputed_and_overwritten(counted, tmp_path, damage):
    sam, calls = counted
    plane = random_plane()
    cache = EmbeddingCache(tmp_path, max_items=0)
    good = embed_plane(sam, plane, cache)
    path = cache.path_for(signature(plane, sam))
    data = path.read_bytes()
    damaged = {"truncate": data[: len(data) // 2], "garbage": b"x" * 999, "empty": b""}
    path.write_bytes(damaged[damage])
    again = embed_plane(sam, plane, cache)
    assert len(calls) == 2
    torch.testing.assert_close(again.features, good.features)
    embed_plane(sam, plane, cache)  # the file was rewritten: loads again
    assert len(calls) == 2


def test_cached_reload_is_fast(tmp_path):
    """A vit_b-sized (256, 64, 64) embedding reloads from disk in milliseconds."""
    cache = EmbeddingCache(tmp_path, max_items=0)
    emb = PlaneEmbedding(torch.randn(1, 256, 64, 64), (683, 1024), (512, 752))
    cache.put("k", emb)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        got = cache.get("k")
        times.append(time.perf_counter() - t0)
    assert got.features.shape == (1, 256, 64, 64)
    assert np.median(times) < 0.05




def test_signature_changes_with_package_version(sam, monkeypatch):
    import napari_devosam.engine.embedding_cache as embedding_cache

    plane = random_plane()
    key = signature(plane, sam)
    monkeypatch.setattr(embedding_cache, "__version__", "999.0")
    assert signature(plane, sam) != key


def test_max_items_zero_keeps_nothing_in_memory_and_negative_is_refused(counted):
    sam, calls = counted
    cache = EmbeddingCache(max_items=0)
    embed_plane(sam, random_plane(), cache)
    embed_plane(sam, random_plane(), cache)
    assert len(cache) == 0 and len(calls) == 2
    with pytest.raises(ValueError, match="max_items"):
        EmbeddingCache(max_items=-1)


def test_an_unwritable_cache_warns_once_and_keeps_embeddings_in_memory(sam, tmp_path):
    from napari_devosam.engine.embedding_cache import CacheWriteWarning

    (tmp_path / "a-file").write_text("not a folder")
    cache = EmbeddingCache(tmp_path / "a-file" / "cache", max_items=8)
    planes = [random_plane(seed) for seed in range(3)]
    with pytest.warns(CacheWriteWarning) as caught:
        embs = [embed_plane(sam, p, cache) for p in planes]
    assert len(caught) == 1 and cache.disk_error
    for plane, emb in zip(planes, embs, strict=True):
        again = embed_plane(sam, plane, cache)
        assert again is emb or torch.equal(again.features, emb.features)
