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
