"""Long CLI work says how long it will take before its planes are processed (issue 25):
``devosam track`` and ``devosam batch`` (``embed`` and ``segment --auto``:
test_cli_segment.py; ``finetune``: test_cli_finetune_stop.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tifffile
import torch

import napari_devosam.models.loading as model_loading
from napari_devosam.cli import main
from napari_devosam.synthetic.lineage import make_lineage_timelapse
from napari_devosam.testing import tiny_sam


@pytest.fixture
def movie(tmp_path, monkeypatch):
    """A 5-frame movie, seeds on frame 0, a tiny checkpoint."""
    torch.set_num_threads(1)
    ckpt = tmp_path / "tiny.pth"
    torch.save(tiny_sam(seed=3).state_dict(), ckpt)
    real_load = model_loading.load_model

    def load(model=None, device="auto", decoder=None, **kw):
        return real_load(model, device=device, decoder=decoder, builder=tiny_sam, **kw)

    monkeypatch.setattr(model_loading, "load_model", load)
    stack, labels, _ = make_lineage_timelapse(5, (96, 96), 3, seed=2)
    tifffile.imwrite(tmp_path / "movie.tif", stack)
    tifffile.imwrite(tmp_path / "seeds.tif", labels[0].astype(np.uint16))
    return tmp_path, str(ckpt)


def _track(tmp, ckpt, out, *extra):
    return main(["track", str(tmp / "movie.tif"), "--seed-labels", str(tmp / "seeds.tif"),
                 "--model", ckpt, "--device", "cpu", "--out", str(tmp / out), *extra])


def test_track_says_how_long_before_propagating(movie, capsys):
    tmp, ckpt = movie
    assert _track(tmp, ckpt, "o1") == 0
    err = capsys.readouterr().err
    assert "devosam track: 5 planes to embed; timing the encoder on the first two" in err
    line = next(x for x in err.splitlines() if "left to embed" in x)
    assert re.fullmatch(r"devosam track: about .+ for 3 planes left to embed "
                        r"\([\d.]+ s per plane, measured here, warm\)", line), line
    assert err.index(line) < err.index("propagating")  # before the first plane is tracked
    # the next run: the time recorded by this one, said before any encoder work
    assert _track(tmp, ckpt, "o2", "--cache-dir", str(tmp / "other")) == 0
    err = capsys.readouterr().err
    assert "timing the encoder" not in err
    line = next(x for x in err.splitlines() if "to embed" in x)
    assert re.fullmatch(r"devosam track: about .+ for 5 planes to embed "
                        r"\([\d.]+ s per plane, recorded on an earlier run here\)", line), line
    # every plane cached (by devosam embed): said so
    cache = str(tmp / "filled")
    assert main(["embed", str(tmp / "movie.tif"), "--model", ckpt, "--device", "cpu",
                 "--cache-dir", cache, "--no-progress"]) == 0
    capsys.readouterr()
    assert _track(tmp, ckpt, "o3", "--cache-dir", cache) == 0
    err = capsys.readouterr().err
    assert "devosam track: all 5 planes already embedded (cache): no encoder work" in err


def test_batch_says_how_long_before_any_task(tmp_path, capsys):
    pytest.importorskip("distributed")
    (tmp_path / "in").mkdir()
    for i in range(2):
        tifffile.imwrite(tmp_path / "in" / f"m{i}.tif",
                         np.random.default_rng(i).integers(0, 255, (3, 64, 64), np.uint8))
    out = tmp_path / "out"
    argv = ["batch", str(tmp_path / "in"), "--out", str(out), "--format", "tif",
            "--workers", "1", "--model", "embryo_tiny", "--steps", "embed", "--no-progress"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    err = captured.err
    assert "devosam batch: 6 planes to embed in 2 files; timing the encoder here" in err
    line = next(x for x in err.splitlines() if "left to embed" in x)
    assert re.fullmatch(r"devosam batch: about .+ for 5 planes left to embed "
                        r"\([\d.]+ s per plane, measured here, warm\) in 2 files "
                        r"\(encoder time, shared by the workers\)", line), line
    assert "2 files, 6 planes" in captured.out  # the report comes after
    # rerun: every step is done, nothing to embed, nothing said about it
    assert main(argv) == 0
    assert "to embed" not in capsys.readouterr().err


def test_batch_reads_the_recorded_time_without_loading_a_model(tmp_path, monkeypatch, capsys):
    from napari_devosam.batch.runner import BatchOptions
    from napari_devosam.cli.batch_estimate import say_before_batch
    from napari_devosam.utils.estimate import record_key, record_seconds

    tifffile.imwrite(tmp_path / "a.tif", np.zeros((4, 32, 32), np.uint8))
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((32, 32), np.uint8))
    record_seconds(record_key("embryo_tiny", "cpu", "fp32"), 2.5)

    def no_load(*args, **kwargs):
        raise AssertionError("no model is loaded when a time is recorded")

    monkeypatch.setattr(model_loading, "load_model", no_load)
    opts = BatchOptions(model="embryo_tiny", device="cpu", precision="fp32", fmt="tif")
    line = say_before_batch([tmp_path / "a.tif", tmp_path / "b.tif"], tmp_path / "out", opts)
    assert line == ("about 12 s for 5 planes to embed (2.5 s per plane, recorded on an "
                    "earlier run here) in 2 files (encoder time, shared by the workers)")
    assert capsys.readouterr().err.strip() == f"devosam batch: {line}"
