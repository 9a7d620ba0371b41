"""The default model of every command without ``--model``: the best cached official checkpoint,
else the bundled model, said on one stderr line; never a download."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import tifffile
import torch

import napari_devosam.models.loading as model_loading
from napari_devosam.cli import main
from napari_devosam.engine.predictor import Predictor
from napari_devosam.models.download import checkpoint_path
from napari_devosam.models.registry import recommended_bundled
from napari_devosam.synthetic.lineage import make_lineage_timelapse
from napari_devosam.testing import tiny_sam
from phantom_pairs import write_pairs

BUNDLED = recommended_bundled()  # "embryo" once registered, "embryo_tiny" until then
BUNDLED_LINE = f"model: {BUNDLED} (bundled; no official checkpoint cached)"
CACHED_LINE = "model: vit_b_lm (official microscopy-trained, cached)"
SEED = 6
BOX = (20, 30, 60, 70)


class _Stop(RuntimeError):
    pass


@pytest.fixture
def files(tmp_path):
    stack, labels, _ = make_lineage_timelapse(3, (64, 64), 2, seed=1)
    tifffile.imwrite(tmp_path / "movie.tif", stack, photometric="minisblack")
    tifffile.imwrite(tmp_path / "seeds.tif", labels[0].astype(np.uint16))
    tifffile.imwrite(tmp_path / "plane.tif", stack[0])
    bundle = write_pairs(tmp_path / "bundle", 2, shape=(64, 64), prefix="p")
    return tmp_path, bundle


def _cache_vit_b_lm() -> None:
    """A tiny SAM's weights at vit_b_lm's cache path, in micro-sam's layout."""
    path = checkpoint_path("vit_b_lm")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = tiny_sam(seed=SEED).state_dict()
    torch.save({"model_state": {f"sam.{k}": v for k, v in state.items()}}, path)


def _commands(tmp, bundle):
    return {
        "segment": ["segment", str(tmp / "plane.tif"), "--box", ",".join(map(str, BOX)),
                    "--out", str(tmp / "seg.tif")],
        "segment --auto": ["segment", str(tmp / "plane.tif"), "--auto",
                           "--out", str(tmp / "auto.tif")],
        "track": ["track", str(tmp / "movie.tif"), "--seed-labels", str(tmp / "seeds.tif"),
                  "--out", str(tmp / "tracks")],
        "embed": ["embed", str(tmp / "plane.tif")],
        "finetune": ["finetune", str(bundle), "--out", str(tmp / "dec.safetensors")],
        "eval": ["eval", str(bundle)],
    }


@pytest.mark.parametrize("cached", [False, True], ids=["empty cache", "vit_b_lm cached"])
@pytest.mark.parametrize("command", ["segment", "segment --auto", "track", "embed", "finetune",
                                     "eval"])
def test_every_command_uses_and_says_the_default(files, monkeypatch, capsys, command, cached):
    if cached:
        _cache_vit_b_lm()
    chosen = []

    def spy(model=None, *args, **kwargs):
        chosen.append(model)
        raise _Stop("stopped once the model was chosen")

    monkeypatch.setattr(model_loading, "load_model", spy)
    rc = main(_commands(*files)[command])
    err = capsys.readouterr().err
    assert rc == 1 and "stopped once the model was chosen" in err, err
    assert chosen == ["vit_b_lm" if cached else BUNDLED]
    name = command.split()[0]
    assert f"devosam {name}: {CACHED_LINE if cached else BUNDLED_LINE}\n" in err


def test_named_model_is_used_as_given_and_not_announced(files, monkeypatch, capsys):
    _cache_vit_b_lm()
    chosen = []

    def spy(model=None, *args, **kwargs):
        chosen.append(model)
        raise _Stop("stop")

    monkeypatch.setattr(model_loading, "load_model", spy)
    tmp, _ = files
    main(["embed", str(tmp / "plane.tif"), "--model", "vit_h"])
    assert chosen == ["vit_h"] and "model:" not in capsys.readouterr().err


@pytest.mark.parametrize("cached", [False, True])
def test_batch_runs_the_default_model(files, monkeypatch, capsys, cached):
    if cached:
        _cache_vit_b_lm()
    seen = []

    def fake_run_batch(client, files, out, opts):
        seen.append(opts.model)
        raise _Stop("stopped once the model was chosen")
        yield

    monkeypatch.setattr("napari_devosam.batch.runner.run_batch", fake_run_batch)
    monkeypatch.setattr("napari_devosam.batch.cluster.open_client",
                        lambda *args: contextlib.nullcontext())  # no dask cluster needed
    tmp, _ = files
    rc = main(["batch", str(tmp / "plane.tif"), "--out", str(tmp / "batch"), "--format", "tif",
               "--workers", "1"])
    err = capsys.readouterr().err
    assert rc == 1 and seen == ["vit_b_lm" if cached else BUNDLED], err
    assert f"devosam batch: {CACHED_LINE if cached else BUNDLED_LINE}\n" in err


def test_segment_with_an_empty_cache_runs_the_bundled_model(files, capsys):
    tmp, _ = files
    rc = main(["segment", str(tmp / "plane.tif"), "--box", ",".join(map(str, BOX)),
               "--device", "cpu", "--out", str(tmp / "seg.tif")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert f"devosam segment: {BUNDLED_LINE}" in captured.err
    assert tifffile.imread(tmp / "seg.tif").max() == 1


def test_segment_uses_the_cached_checkpoint(files, monkeypatch, capsys):
    _cache_vit_b_lm()
    real_load = model_loading.load_model

    def load(model=None, device="auto", decoder=None, **kw):  # the tiny architecture
        return real_load(model, device=device, decoder=decoder, builder=tiny_sam, **kw)

    monkeypatch.setattr(model_loading, "load_model", load)
    monkeypatch.setenv("DEVOSAM_MODEL_BASE_URL", "http://127.0.0.1:9/")  # no download possible
    tmp, _ = files
    rc = main(["segment", str(tmp / "plane.tif"), "--box", ",".join(map(str, BOX)),
               "--device", "cpu", "--out", str(tmp / "seg.tif")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert f"devosam segment: {CACHED_LINE}" in captured.err
    predictor = Predictor(tiny_sam(seed=SEED))  # the cached file's weights made these labels
    predictor.set_image(tifffile.imread(tmp / "plane.tif"))
    masks, _ = predictor.predict_boxes([BOX])
    np.testing.assert_array_equal(tifffile.imread(tmp / "seg.tif") > 0, masks[0])
