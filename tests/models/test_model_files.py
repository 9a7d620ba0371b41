"""Whole-model files: written in the bundled models' format, loaded through the safe path."""

from __future__ import annotations

import torch

from napari_devosam.models.decoder_files import save_decoder
from napari_devosam.models.loading import load_model
from napari_devosam.models.model_files import is_model_file, model_config, save_model
from napari_devosam.testing import tiny_sam


def test_a_model_file_reloads_every_weight(tmp_path):
    sam = tiny_sam(seed=3)
    path = save_model(sam, tmp_path / "whole.safetensors", metadata={"note": "x"})
    assert is_model_file(path)
    loaded = load_model(str(path), device="cpu")
    assert model_config(loaded) == model_config(sam)
    mine, theirs = sam.state_dict(), loaded.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_a_decoder_file_is_not_a_model_file(tmp_path):
    path = save_decoder(tiny_sam(), tmp_path / "decoder.safetensors")
    assert not is_model_file(path) and not is_model_file(tmp_path / "missing.safetensors")
