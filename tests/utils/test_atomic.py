"""Atomic writes: nothing partial at the final path, and files get the umask's mode."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from napari_devosam.annotation.store import AnnotationStore
from napari_devosam.export.bundle import write_bundle
from napari_devosam.io.write import write_tiff
from napari_devosam.models.decoder_files import save_decoder
from napari_devosam.testing import tiny_sam
from napari_devosam.utils.atomic import atomic_path, atomic_write, default_file_mode


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def modes(folder):
    return {p.relative_to(folder).as_posix(): stat.S_IMODE(p.stat().st_mode)
            for p in folder.rglob("*") if p.is_file()}


def test_default_mode_follows_the_umask(umask):
    assert default_file_mode() == 0o666 & ~umask


def test_every_writer_respects_the_umask(tmp_path, umask):
    """The kind: each writer of user-visible files (labels, bundles, decoders, store)."""
    want = 0o666 & ~umask
    with atomic_write(tmp_path / "a.bin") as f:
        f.write(b"x")
    with atomic_path(tmp_path / "b.txt") as tmp:
        tmp.write_text("y")
    labels = np.zeros((32, 40), np.uint16)
    labels[5:15, 5:20] = 1
    write_tiff(tmp_path / "labels.tif", labels)
    image = np.arange(32 * 40, dtype=np.uint16).reshape(32, 40)
    write_bundle(tmp_path / "bundle", image, labels, source="x.tif")
    save_decoder(tiny_sam(), tmp_path / "decoder.safetensors")
    store = AnnotationStore(tmp_path / "store", image.shape)
    store.commit((), [labels > 0])
    found = modes(tmp_path)
    assert len(found) >= 8
    assert all(mode == want for mode in found.values()), {k: oct(v) for k, v in found.items()}


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(path, "w") as f:
        f.write("new")
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
