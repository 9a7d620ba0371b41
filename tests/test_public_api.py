"""The package's Python face: names listed for completion, one disk cache shared with the CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import tifffile

import napari_devosam as ds


def test_dir_lists_the_public_api():
    names = dir(ds)
    for name in ds.__all__:
        assert name in names
        assert getattr(ds, name) is not None


def test_the_workflow_has_a_top_level_face():
    """``segment_all``, ``propagate``, ``finetune`` and ``AnnotationStore`` are the functions
    and class of their homes; the two long ones are generators, as everywhere."""
    import inspect

    from napari_devosam.annotation.store import AnnotationStore
    from napari_devosam.automatic.core import segment_all
    from napari_devosam.finetune.train import finetune
    from napari_devosam.tracking.propagate import propagate

    assert ds.AnnotationStore is AnnotationStore and ds.segment_all is segment_all
    assert ds.propagate is propagate and inspect.isgeneratorfunction(ds.propagate)
    # ``finetune`` is a subpackage too: the name stays one callable whatever was imported
    import napari_devosam.finetune.train  # noqa: F401 - binds the subpackage on ``ds``

    run = ds.finetune([], None, out="never-written.safetensors")
    assert inspect.isgenerator(run) and run.gi_code is finetune.__code__
    run.close()
    assert ds.finetune.load_planes is not None  # and it is still the package


def test_the_store_is_light():
    code = ("import sys, napari_devosam as ds; ds.AnnotationStore; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_import_is_light():
    code = "import sys, napari_devosam; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_predictor_reuses_what_the_cli_cached(tmp_path, monkeypatch):
    """``devosam embed`` fills the default disk cache; a new ``Predictor`` reads from it."""
    import napari_devosam.models.loading as loading
    from napari_devosam.cli import main
    from napari_devosam.testing import tiny_sam

    sam = tiny_sam()
    monkeypatch.setattr(loading, "load_model", lambda *a, **k: sam)
    plane = (np.random.default_rng(0).random((64, 80)) * 4000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "p.tif", plane)
    assert main(["embed", str(tmp_path / "p.tif")]) == 0
    calls = []
    handle = sam.image_encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        ds.Predictor(sam).set_image(plane)
    finally:
        handle.remove()
    assert calls == []
