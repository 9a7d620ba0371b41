"""Shared set-up of the CLI tests."""

import pytest
import torch

import napari_devosam.models.loading as model_loading
from napari_devosam.testing import tiny_sam


@pytest.fixture
def tiny_checkpoint(tmp_path, monkeypatch) -> str:
    """The path of a tiny SAM checkpoint in ``tmp_path``; ``load_model`` builds it with the
    tiny architecture (one torch thread)."""
    torch.set_num_threads(1)
    ckpt = tmp_path / "tiny.pth"
    torch.save(tiny_sam(seed=3).state_dict(), ckpt)
    real_load = model_loading.load_model

    def load(model=None, device="auto", decoder=None, **kw):
        return real_load(model, device=device, decoder=decoder, builder=tiny_sam, **kw)

    monkeypatch.setattr(model_loading, "load_model", load)
    return str(ckpt)
