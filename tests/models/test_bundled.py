"""The bundled ``embryo_tiny``: found in the installed package, hash-checked, never replaced by
random weights, and good enough that a box on a phantom cell outlines the cell."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import napari_devosam as ds
from napari_devosam.models import bundled
from napari_devosam.models.registry import BUNDLED
from napari_devosam.synthetic.phantoms import make_embryo

# held-out phantoms: seeds from 10,000,000 (training used seeds below 1,000,000)
PLANES = [((256, 320), 8, "membrane", np.uint16, 10_000_101),
          ((320, 256), 10, "nuclei", np.uint8, 10_000_102)]
BOX_IOU_FLOOR = 0.85


@pytest.fixture(scope="module")
def sam():
    return ds.load_model("embryo_tiny", device="cpu", progress=False)


def test_loads_by_name_and_alias_with_its_metadata(sam):
    assert sum(p.numel() for p in sam.parameters()) < 3_000_000
    assert bundled.bundled_path("embryo_tiny").stat().st_size <= 25_000_000
    meta = bundled.metadata("embryo_tiny")
    assert meta["config"]["img_size"] == sam.image_encoder.img_size
    for key in ("training", "data", "hardware", "package_version", "heldout_metrics"):
        assert key in meta, key
    demo = ds.load_model("demo", device="cpu", progress=False)
    assert all(np.array_equal(a.detach().numpy(), b.detach().numpy())
               for a, b in zip(sam.state_dict().values(), demo.state_dict().values(),
                               strict=True))


def test_a_box_outlines_a_phantom_cell(sam):
    predictor = ds.Predictor(sam, cache_dir=None)
    ious = []
    for shape, n, kind, dtype, seed in PLANES:
        image, truth = make_embryo(shape, n, seed=seed, dtype=dtype, kind=kind)
        predictor.set_image(image)
        for i in range(1, int(truth.max()) + 1):
            cell = truth == i
            rows, cols = np.nonzero(cell)
            mask = predictor.predict(box=(rows.min(), cols.min(), rows.max(), cols.max()))[0][0]
            ious.append((mask & cell).sum() / (mask | cell).sum())
    assert np.mean(ious) >= BOX_IOU_FLOOR, np.round(ious, 2)


@pytest.mark.parametrize("damage", ["missing", "corrupted"])
def test_a_damaged_file_is_an_error_naming_it(tmp_path, monkeypatch, damage):
    copy = tmp_path / BUNDLED["embryo_tiny"].filename
    if damage == "corrupted":
        shutil.copy(bundled.bundled_path("embryo_tiny"), copy)
        data = bytearray(copy.read_bytes())
        data[-10] ^= 0xFF
        copy.write_bytes(bytes(data))
    monkeypatch.setattr(bundled, "bundled_path", lambda name: copy)
    error = FileNotFoundError if damage == "missing" else ValueError
    with pytest.raises(error, match=f"{copy}.*reinstall"):
        ds.load_model("embryo_tiny", device="cpu", progress=False)


def test_unknown_names_list_the_bundled_model():
    with pytest.raises(ValueError, match="embryo_tiny"):
        ds.load_model("embryo_small", device="cpu", progress=False)


def _rewrite_metadata(src, dst, **changes):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), "pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open API
    meta.update(changes)
    save_file(tensors, str(dst), metadata={k: v for k, v in meta.items() if v is not None})


def test_a_retrained_file_loads_by_path(sam, tmp_path):
    import json

    copy = tmp_path / "my_embryo_tiny.safetensors"  # what tools/train_embryo_tiny.py writes
    shutil.copy(bundled.bundled_path("embryo_tiny"), copy)
    mine = ds.load_model(str(copy), device="cpu", progress=False)
    assert all(np.array_equal(a.detach().numpy(), b.detach().numpy())
               for a, b in zip(sam.state_dict().values(), mine.state_dict().values(),
                               strict=True))
    config = bundled.metadata("embryo_tiny")["config"]
    bad = tmp_path / "huge.safetensors"
    _rewrite_metadata(copy, bad, config=json.dumps({**config, "encoder_embed_dim": 10**6}))
    with pytest.raises(ValueError, match="huge.safetensors.*out of bounds.*encoder_embed_dim"):
        ds.load_model(str(bad), device="cpu", progress=False)
    unnamed = tmp_path / "no_format.safetensors"  # no format: an unknown architecture
    _rewrite_metadata(copy, unnamed, format=None)
    with pytest.raises(ValueError, match="builder"):
        ds.load_model(str(unnamed), device="cpu", progress=False)
