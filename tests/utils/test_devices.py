"""Device resolution: auto order, explicit devices, DEVOSAM_DEVICE, unavailable devices."""

from __future__ import annotations

import pytest
import torch

from napari_devosam.utils.devices import available_devices, resolve_device

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv("DEVOSAM_DEVICE", raising=False)


@pytest.fixture
def fake_gpus(monkeypatch):
    """Pretend two CUDA devices exist (nothing is allocated on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


@pytest.fixture
def no_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_auto_matches_hardware():
    dev = resolve_device("auto")
    expected = "cuda" if HAS_CUDA else ("mps" if HAS_MPS else "cpu")
    assert dev.type == expected
    assert resolve_device(None) == dev
    assert available_devices()[-1] == "cpu"


def test_auto_prefers_cuda(fake_gpus):
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert available_devices() == ["cuda:0", "cuda:1", *(["mps"] if HAS_MPS else []), "cpu"]


def test_auto_falls_back_to_mps_then_cpu(no_gpus, monkeypatch):
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")


def test_explicit_devices(fake_gpus):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)


def test_missing_cuda_index_is_an_error(fake_gpus):
    with pytest.raises(ValueError, match=r"cuda:5.*available: cuda:0, cuda:1"):
        resolve_device("cuda:5")


def test_unavailable_devices_are_errors(no_gpus):
    with pytest.raises(ValueError, match=r"not available.*available: cpu"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match=r"'mps'.*not available.*cpu"):
        resolve_device("mps")


def test_unknown_devices_are_errors():
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    with pytest.raises(ValueError, match="unsupported device"):
        resolve_device("meta")
    with pytest.raises(ValueError, match="string or torch.device"):
        resolve_device(3)


def test_env_replaces_auto_only(fake_gpus, monkeypatch):
    monkeypatch.setenv("DEVOSAM_DEVICE", "cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    monkeypatch.setenv("DEVOSAM_DEVICE", "auto")
    assert resolve_device() == torch.device("cuda", 0)


def test_bad_env_names_the_variable(no_gpus, monkeypatch):
    monkeypatch.setenv("DEVOSAM_DEVICE", "cuda")
    with pytest.raises(ValueError, match="DEVOSAM_DEVICE"):
        resolve_device()


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_real_cuda_device_works():
    dev = resolve_device("cuda")
    assert torch.ones(2, device=dev).sum().item() == 2
    assert resolve_device("auto") == dev
