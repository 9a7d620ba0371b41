"""The package's cache folder, the one root under which models, embeddings and recorded
timings live: ``DEVOSAM_CACHE_DIR`` when set, else the platform's user cache folder
(``~/.cache/napari-devosam`` on Linux). Not created here."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_ENV = "DEVOSAM_CACHE_DIR"


def cache_root() -> Path:
    """The package's cache folder: ``DEVOSAM_CACHE_DIR`` or the platform's user cache dir."""
    env = os.environ.get(CACHE_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("napari-devosam", appauthor=False))
