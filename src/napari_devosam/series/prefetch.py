"""Embeddings of the images coming next in a series, computed ahead into the cache."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

from napari_devosam.engine.stacks import first_plane  # noqa: F401 - public here too


def prefetch_embeddings(sam, cache, paths: list[str | os.PathLike], normalization=None
                        ) -> Generator[tuple[int, int], None, dict[Path, str]]:
    """Put the first plane's embedding of each of ``paths`` into ``cache`` (an
    ``EmbeddingCache``): a generator yielding ``(0, n)`` first, then ``(done, n)`` after each
    file; closing it stops between files.

    A file that cannot be read or embedded is skipped; returns ``{path: error message}`` for
    those (the annotator reports them when the user gets there).
    """
    from napari_devosam.engine.embeddings import embed_plane
    from napari_devosam.io.read import read_first_plane

    failed: dict[Path, str] = {}
    total = len(paths)
    yield 0, total
    for done, path in enumerate(paths, start=1):
        try:
            embed_plane(sam, read_first_plane(path), cache, normalization)
        except (OSError, ValueError, RuntimeError) as exc:
            failed[Path(path)] = str(exc) or type(exc).__name__
        yield done, total
    return failed
