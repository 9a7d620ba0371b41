"""``devosam finetune`` and ``devosam eval`` (model loading replaced by a tiny random SAM)."""

from __future__ import annotations

import json

import pytest

from napari_devosam.cli import main
from napari_devosam.finetune import evaluate
from napari_devosam.models import loading as model_loading
from napari_devosam.models.decoder_files import apply_decoder, read_decoder_metadata
from napari_devosam.testing import tiny_sam
from phantom_pairs import write_pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def data(tmp_path):
    return write_pairs(tmp_path / "bundle", 3, shape=(128, 128), prefix="p")


@pytest.fixture
def loads(monkeypatch):
    """Replace load_model by a tiny SAM (no checkpoint exists here); record the calls."""
    calls = []

    def fake_load_model(model=None, device="auto", decoder=None, **kwargs):
        calls.append((model, device, decoder))
        sam = tiny_sam()
        if decoder is not None:
            apply_decoder(sam, decoder)
        return sam

    monkeypatch.setattr(model_loading, "load_model", fake_load_model)
    return calls


def test_finetune_then_eval(data, tmp_path, loads, capsys):
    out = tmp_path / "dec.safetensors"
    rc = main(["finetune", str(data), "--model", "vit_b", "--out", str(out), "--epochs", "40",
               "--lr", "1e-3", "--warmup-steps", "4", "--validate-every", "10", "--seed", "0",
               "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["path"] == str(out) and out.is_file() and summary["improved"]
    # 2 training planes of 4 objects: one step each per epoch; a random decoder gets worse,
    # then better than it started (measured 0.261 -> 0.389)
    assert summary["steps_run"] == 80
    assert summary["val_iou_after"] >= summary["val_iou_before"] + 0.05
    assert "validation IoU before" in captured.out
    assert "starting decoder: validation IoU" in captured.err  # progress on stderr
    extra = read_decoder_metadata(out)["extra"]
    assert extra["settings"]["seed"] == 0 and extra["settings"]["lr"] == 1e-3
    assert extra["settings"]["warmup_steps"] == 4 and extra["settings"]["validate_every"] == 10
    assert extra["val_iou_after"] == summary["val_iou_after"]
    assert loads[0] == ("vit_b", "cpu", None)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 3  # embeddings went through cache

    rc = main(["eval", str(data), "--model", "vit_b", "--decoder", str(out), "--json",
               "--no-progress", "--cache-dir", str(tmp_path / "cache")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    lines = captured.out.strip().splitlines()
    scores = json.loads(lines[-1])
    assert lines[0].startswith("box prompts:") and lines[1].startswith("point prompts:")
    sam = tiny_sam()
    apply_decoder(sam, out)
    # the CLI read fp16 embeddings from the cache: equal up to that rounding
    assert scores["mean_iou"] == pytest.approx(evaluate(data, sam)["mean_iou"], abs=2e-3)
    assert {"box_iou", "point_iou", "n_objects"} <= set(scores)


def test_a_run_without_gain_writes_nothing_and_exits_3(data, tmp_path, loads, capsys):
    from napari_devosam.cli.finetune import NO_GAIN_EXIT_CODE

    out = tmp_path / "dec.safetensors"
    rc = main(["finetune", str(data), "--out", str(out), "--steps", "3", "--lr", "1e-12",
               "--validate-every", "1", "--min-steps", "0", "--patience", "2",
               "--no-progress", "--cache-dir", str(tmp_path / "cache"), "--json"])
    captured = capsys.readouterr()
    assert rc == NO_GAIN_EXIT_CODE == 3, captured.err
    assert not out.exists()
    lines = captured.out.strip().splitlines()
    assert any(line.startswith("no improvement over the starting decoder (val IoU ")
               and line.endswith("); nothing written") for line in lines)
    summary = json.loads(lines[-1])
    assert summary["path"] is None and summary["improved"] is False
    assert summary["stopped"] == "early_stopping" and summary["steps_run"] == 2


@pytest.mark.parametrize("command", ["finetune", "eval"])
def test_bad_data_is_one_stderr_line_before_loading_a_model(data, tmp_path, loads, capsys,
                                                             command):
    (data / "images" / "p2.tif").unlink()
    argv = [command, str(data), "--model", "vit_b", "--no-progress"]
    if command == "finetune":
        argv += ["--out", str(tmp_path / "d.safetensors")]
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1
    assert err[0].startswith(f"devosam {command}: error:") and "p2.tif" in err[0]
    assert loads == []


def test_the_estimate_is_printed_before_training(data, tmp_path, loads, capsys):
    out = tmp_path / "dec.safetensors"
    main(["finetune", str(data), "--model", "vit_b", "--out", str(out), "--steps", "4",
          "--validate-every", "2", "--device", "cpu", "--no-progress",
          "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert "estimated run time: " in err and "4 steps at" in err
    assert "within the 8 min limit of --max-minutes" in err and "about under" not in err
    assert err.index("estimated run time") < err.index("starting decoder: validation IoU")
