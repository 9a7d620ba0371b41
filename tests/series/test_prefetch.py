"""prefetch_embeddings: the first plane of each next image lands in the cache; failures skip."""

from __future__ import annotations

import numpy as np
import tifffile

from napari_devosam.engine.embeddings import EmbeddingCache, signature
from napari_devosam.series.prefetch import first_plane, prefetch_embeddings
from napari_devosam.testing import tiny_sam
from napari_devosam.utils.progress import drain


def test_first_planes_are_cached_and_a_bad_file_is_reported(tmp_path):
    sam = tiny_sam(seed=0).eval()
    stack = np.random.default_rng(0).integers(0, 4000, (2, 3, 40, 50), dtype=np.uint16)
    plane = np.random.default_rng(1).integers(0, 255, (40, 50), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    tifffile.imwrite(tmp_path / "plane.tif", plane)
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    cache = EmbeddingCache(None)
    paths = [tmp_path / "stack.tif", tmp_path / "broken.tif", tmp_path / "plane.tif"]
    gen = prefetch_embeddings(sam, cache, paths)
    assert next(gen) == (0, 3)
    failed = drain(gen)
    assert list(failed) == [tmp_path / "broken.tif"]
    np.testing.assert_array_equal(first_plane(stack), stack[0, 0])
    for data in (stack[0, 0], plane):
        assert cache.get(signature(data, sam), sam.pixel_mean.device) is not None


def test_closing_stops_between_files(tmp_path):
    sam = tiny_sam(seed=0).eval()
    for i in range(3):
        tifffile.imwrite(tmp_path / f"{i}.tif", np.full((32, 32), i * 50, np.uint8))
    cache = EmbeddingCache(None)
    gen = prefetch_embeddings(sam, cache, sorted(tmp_path.glob("*.tif")))
    next(gen)
    next(gen)  # first file done
    gen.close()
    assert len(cache) == 1
