"""Real sources for the tests (``benchmarks/real_sources.py``): fetched with pip into
``$DEVOSAM_REAL_DATA_DIR`` or ``.pytest_cache/d/real_sources``, never committed; without the
registry (or PyAV for the devolearn movies) a test module skips with one line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import real_sources as R  # noqa: E402


def fetch_or_skip(get, *args, module_level: bool = False):
    """``get(*args, folder=...)`` (a ``real_sources`` reader) from the tests' cache folder,
    or a skip with one line saying why (``module_level``: skip the whole module)."""
    env = os.environ.get(R.CACHE_ENV, "").strip()
    folder = Path(env) if env else ROOT / ".pytest_cache" / "d" / "real_sources"
    R.PIP_TIMEOUT_S = 60
    try:
        return get(*args, folder=folder)
    except R.SourceUnavailable as exc:
        pytest.skip(f"real data unavailable: {exc}", allow_module_level=module_level)
