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


def test_the_first_plane_is_read_alone_and_equals_the_whole_files(tmp_path):
    import tracemalloc

    from napari_devosam.batch.inputs import read_any, read_first_plane

    rng = np.random.default_rng(3)
    cases = {
        "movie.tif": (rng.integers(0, 4000, (60, 256, 256), dtype=np.uint16), {}),
        "tz.tif": (rng.integers(0, 4000, (2, 3, 40, 50), dtype=np.uint16), {}),
        "rgb.tif": (rng.integers(0, 255, (40, 50, 3), dtype=np.uint8), {"photometric": "rgb"}),
        "alpha.tif": (rng.integers(0, 255, (4, 40, 50, 2), dtype=np.uint8),
                      {"photometric": "minisblack", "extrasamples": ["unassalpha"]}),
        "plane.png": (rng.integers(0, 255, (40, 50), dtype=np.uint8), None),
    }
    for name, (data, kw) in cases.items():
        if kw is None:
            from skimage import io as skio

            skio.imsave(tmp_path / name, data, check_contrast=False)
        else:
            tifffile.imwrite(tmp_path / name, data, **kw)
        np.testing.assert_array_equal(read_first_plane(tmp_path / name),
                                      first_plane(read_any(tmp_path / name)), err_msg=name)
    tracemalloc.start()
    read_first_plane(tmp_path / "movie.tif")  # 7.9 MB on disk, one page is 131 kB
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2_000_000


def test_a_damaged_tiff_gets_the_same_error_as_a_whole_read(tmp_path):
    import pytest

    from napari_devosam.batch.inputs import read_any, read_first_plane

    for name, content in (("header.tif", b"II*\x00garbage"), ("text.tif", b"not a tiff")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError) as whole:
            read_any(tmp_path / name)
        with pytest.raises(ValueError) as first:
            read_first_plane(tmp_path / name)
        assert str(first.value) == str(whole.value) and "cannot read" in str(first.value)
