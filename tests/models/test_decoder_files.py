"""Fine-tuned decoder files: round trip, metadata, and every refusal."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from napari_devosam._version import __version__
from napari_devosam.models.decoder_files import apply_decoder, read_decoder_metadata, save_decoder
from napari_devosam.models.identity import encoder_hash, model_hash
from napari_devosam.models.loading import load_model
from napari_devosam.testing import tiny_sam


def finetuned(seed: int = 0):
    """A tiny SAM whose decoder and prompt encoder differ from ``tiny_sam(seed)``'s."""
    sam = tiny_sam(seed=seed)
    gen = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for name, p in sam.named_parameters():
            if name.startswith(("mask_decoder.", "prompt_encoder.")):
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return sam


def decoder_tensors(sam, prefixes=("mask_decoder.", "prompt_encoder.")):
    return {k: v for k, v in sam.state_dict().items() if k.startswith(prefixes)}


def test_round_trip_restores_decoder(tmp_path):
    tuned = finetuned()
    path = save_decoder(tuned, tmp_path / "dec.safetensors", metadata={"epochs": 3, "lr": 1e-4})
    base = tiny_sam()
    assert model_hash(base) != model_hash(tuned)
    meta = apply_decoder(base, path)
    assert model_hash(base) == model_hash(tuned)
    assert meta["extra"] == {"epochs": 3, "lr": 1e-4}
    assert meta["base_model"] == "custom-32" and meta["base_encoder_hash"] == encoder_hash(base)
    assert meta["format"] == "devosam-decoder" and meta["format_version"] == "1"
    assert meta["package_version"] == __version__ and meta["created"].startswith("20")
    assert read_decoder_metadata(path) == meta
    assert [p.name for p in tmp_path.iterdir()] == ["dec.safetensors"]  # atomic, no leftovers


def test_file_holds_only_decoder_tensors(tmp_path):
    tuned = finetuned()
    save_decoder(tuned, tmp_path / "with.safetensors")
    save_decoder(tuned, tmp_path / "without.safetensors", include_prompt_encoder=False)
    full = load_file(str(tmp_path / "with.safetensors"))
    only = load_file(str(tmp_path / "without.safetensors"))
    assert set(full) == set(decoder_tensors(tuned))
    assert set(only) == set(decoder_tensors(tuned, ("mask_decoder.",)))
    base = tiny_sam()
    apply_decoder(base, tmp_path / "without.safetensors")
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in only.items())
    assert torch.equal(base.prompt_encoder.point_embeddings[0].weight,
                       tiny_sam().prompt_encoder.point_embeddings[0].weight)


def test_load_model_applies_decoder(tmp_path):
    torch.save(tiny_sam(seed=0).state_dict(), tmp_path / "base.pt")
    save_decoder(finetuned(), tmp_path / "dec.safetensors")
    sam = load_model(tmp_path / "base.pt", "cpu", decoder=tmp_path / "dec.safetensors",
                     builder=tiny_sam)
    assert model_hash(sam) == model_hash(finetuned())
    with pytest.raises(FileNotFoundError, match="decoder file .*missing.safetensors"):
        load_model(tmp_path / "base.pt", "cpu", decoder=tmp_path / "missing.safetensors",
                   builder=tiny_sam)


def test_refuses_other_encoder_weights(tmp_path):
    path = save_decoder(finetuned(seed=0), tmp_path / "dec.safetensors")
    other = tiny_sam(seed=1)
    before = model_hash(other)
    with pytest.raises(ValueError, match=r"dec\.safetensors was trained on another custom-32"):
        apply_decoder(other, path)
    assert model_hash(other) == before  # untouched


def test_refuses_other_architecture(tmp_path):
    path = save_decoder(finetuned(), tmp_path / "dec.safetensors")
    wider = tiny_sam(embed_dim=64)
    with pytest.raises(ValueError, match=r"base model 'custom-32', but the loaded model is "
                                         r"'custom-64'"):
        apply_decoder(wider, path)


def test_refuses_non_decoder_files(tmp_path):
    save_file({"x": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match=r"plain\.safetensors is not a devosam decoder"):
        apply_decoder(tiny_sam(), tmp_path / "plain.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(ValueError, match=r"junk\.safetensors is not a readable"):
        apply_decoder(tiny_sam(), tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError):
        read_decoder_metadata(tmp_path / "none.safetensors")


def _rewrite(path, out, tensors=None, **meta_changes):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    meta.update(meta_changes)
    save_file(tensors if tensors is not None else load_file(str(path)), str(out), metadata=meta)
    return out


def test_refuses_newer_format_and_bad_extra(tmp_path):
    path = save_decoder(finetuned(), tmp_path / "dec.safetensors")
    v2 = _rewrite(path, tmp_path / "v2.safetensors", format_version="2")
    with pytest.raises(ValueError, match="format version '2'"):
        apply_decoder(tiny_sam(), v2)
    bad = _rewrite(path, tmp_path / "bad.safetensors", extra="{nope")
    with pytest.raises(ValueError, match="corrupt metadata"):
        read_decoder_metadata(bad)


def test_refuses_wrong_shapes_and_incomplete_files(tmp_path):
    path = save_decoder(finetuned(), tmp_path / "dec.safetensors")
    tensors = load_file(str(path))
    shaped = dict(tensors, **{"mask_decoder.iou_token.weight": torch.zeros(1, 8)})
    with pytest.raises(ValueError, match=r"iou_token.weight is \(1, 8\) instead of \(1, 256\)"):
        apply_decoder(tiny_sam(), _rewrite(path, tmp_path / "s.safetensors", shaped))
    partial = {k: v for k, v in tensors.items() if k != "mask_decoder.iou_token.weight"}
    with pytest.raises(ValueError, match="incomplete: it lacks mask_decoder.iou_token.weight"):
        apply_decoder(tiny_sam(), _rewrite(path, tmp_path / "p.safetensors", partial))
    extra = dict(tensors, **{"mask_decoder.new.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="tensors this model lacks"):
        apply_decoder(tiny_sam(), _rewrite(path, tmp_path / "e.safetensors", extra))
    base = tiny_sam()
    before = model_hash(base)
    with pytest.raises(ValueError):
        apply_decoder(base, tmp_path / "s.safetensors")
    assert model_hash(base) == before  # validation happens before any weight changes


def test_save_validates_arguments(tmp_path):
    with pytest.raises(ValueError, match="base_model 'vit_b' does not match"):
        save_decoder(tiny_sam(), tmp_path / "d.safetensors", base_model="vit_b")
    with pytest.raises(ValueError, match="JSON"):
        save_decoder(tiny_sam(), tmp_path / "d.safetensors", metadata={"f": object()})
    assert not (tmp_path / "d.safetensors").exists()
    saved = save_decoder(tiny_sam(), tmp_path / "d.safetensors", base_model="custom-32",
                         metadata={"note": "ok"})
    assert json.loads(json.dumps(read_decoder_metadata(saved)["extra"])) == {"note": "ok"}
