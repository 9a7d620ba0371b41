"""Shared test set-up.

napari's ``make_napari_viewer`` fixture comes from napari's pytest plugin
(``napari.utils._testsupport``), which napari registers through the ``pytest11`` entry point:
no import is needed here. Widget tests need a display: run them under ``xvfb-run -a``
(``QT_QPA_PLATFORM=offscreen`` does not work with vispy's OpenGL canvas).
"""

import pytest


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Keep every test away from the user's caches, stores and model settings."""
    root = tmp_path_factory.mktemp("devosam-home")
    monkeypatch.setenv("DEVOSAM_CACHE_DIR", str(root / "cache"))
    monkeypatch.setenv("DEVOSAM_STORE_DIR", str(root / "stores"))
    monkeypatch.delenv("DEVOSAM_CHECKPOINT", raising=False)
    monkeypatch.delenv("DEVOSAM_DEVICE", raising=False)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: on a shared 2-core machine, faster and steadier."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def counted(sam):
    """The module's ``sam`` fixture with a counter of image-encoder runs (planes encoded)."""
    calls = []
    handle = sam.image_encoder.register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
    yield sam, calls
    handle.remove()
