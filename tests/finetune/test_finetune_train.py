"""Fine-tuning end to end on embryo phantoms with a tiny random SAM."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import phantom_pairs
from napari_devosam.finetune import (
    FinetuneResult,
    TrainingDiverged,
    evaluate,
    finetune,
    load_planes,
    run_finetune,
    split_planes,
)
from napari_devosam.io.write import write_tiff
from napari_devosam.models.decoder_files import apply_decoder, read_decoder_metadata, save_decoder
from napari_devosam.models.identity import model_hash
from napari_devosam.testing import tiny_sam

# Settings under which a random tiny decoder learns within seconds (seeded, deterministic).
QUICK = dict(lr=1e-3, loss="balanced", batch_prompts=8, correction_rounds=1, patience=None,
             zoom_views=False)  # views: test_finetune_views.py


def write_pairs(root, n, shape=(256, 256), n_cells=8):
    return phantom_pairs.write_pairs(root, n, shape=shape, n_cells=n_cells, prefix="e")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_torch_thread):
    root = write_pairs(tmp_path_factory.mktemp("ft") / "data", 6)
    sam = tiny_sam()
    before = model_hash(sam)
    events = []
    result = run_finetune(root, sam, out=root.parent / "dec.safetensors", epochs=30,
                          val_fraction=0.34, seed=0, callback=events.append, **QUICK)
    return {"root": root, "sam": sam, "hash": before, "events": events, "result": result}


@pytest.fixture
def small(tmp_path):
    return write_pairs(tmp_path / "small", 3, shape=(128, 128), n_cells=4)


def test_finetuning_raises_held_out_iou(trained):
    result = trained["result"]
    assert isinstance(result, FinetuneResult) and result.validated_on == "held-out"
    # measured: 0.253 -> 0.399 (the random decoder's masks are clipped to the box prompts)
    assert result.val_iou_after >= result.val_iou_before + 0.1
    assert result.improved and result.path.is_file()
    assert result.val_iou_after == max(h["val_iou"] for h in result.history)
    best = next(h for h in result.history if h["step"] == result.best_step)
    assert best["val_iou"] == result.val_iou_after and best["epoch"] == result.best_epoch
    # epochs=30 caps the step budget: 4 training planes, one step each per epoch
    assert result.steps_run == 120 and result.epochs_run == 30
    assert result.stopped == "completed"
    assert result.masks_per_s > 0


def test_events_tell_the_story(trained):
    events, result = trained["events"], trained["result"]
    phases = [e.phase for e in events]
    assert phases[:6] == ["embed"] * 6 and phases[6] == "validate" and phases[-1] == "done"
    trains = [e for e in events if e.phase == "train"]
    assert [e.step for e in trains] == list(range(1, 121))
    assert all(e.total_steps == 120 for e in trains)
    assert all(np.isfinite(e.loss) and e.epoch >= 1 for e in trains)
    # validation rounds every 25 steps, after the last step, and before training
    validations = [e for e in events if e.phase == "validate"]
    assert [e.step for e in validations] == [0, 25, 50, 75, 100, 120]
    assert [e.val_iou for e in validations] == [h["val_iou"] for h in result.history]
    assert events[-1].val_iou == result.val_iou_after and "wrote" in events[-1].message
    assert all(a.elapsed <= b.elapsed for a, b in zip(events, events[1:], strict=False))
    # learning rate: linear warm-up over 20 steps, then a cosine decay to 5 % at the end
    lrs = [e.lr for e in trains]
    assert lrs[0] == pytest.approx(1e-3 / 20) and lrs[19] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[19:], lrs[20:], strict=False))
    assert lrs[-1] == pytest.approx(5e-5)


def test_the_model_passed_in_is_not_modified(trained):
    assert model_hash(trained["sam"]) == trained["hash"]


def test_decoder_file_holds_the_best_decoder_and_its_story(trained, tmp_path):
    result, root = trained["result"], trained["root"]
    meta = read_decoder_metadata(result.path)
    extra = meta["extra"]
    assert meta["base_model"] == "custom-32"
    assert extra["val_iou_before"] == result.val_iou_before
    assert extra["val_iou_after"] == result.val_iou_after
    assert extra["settings"]["lr"] == 1e-3 and extra["settings"]["epochs"] == 30
    assert extra["settings"]["steps"] == 120 and extra["steps_run"] == 120
    assert extra["data"]["train"]["planes"] == 4 and extra["data"]["validation"]["planes"] == 2
    # devosam eval on the validation files reproduces the stored validation IoU
    _, val = split_planes(load_planes(root), 0.34, seed=0)
    val_dir = tmp_path / "val"
    for sub in ("images", "labels"):
        (val_dir / sub).mkdir(parents=True)
        for p in val:
            name = p.name.split("/")[-1]
            shutil.copy(root / sub / name, val_dir / sub / name)
    tuned = tiny_sam()
    base = evaluate(val_dir, tuned)["mean_iou"]
    apply_decoder(tuned, result.path)
    scores = evaluate(val_dir, tuned)
    assert base == pytest.approx(result.val_iou_before, abs=1e-9)
    assert scores["mean_iou"] == pytest.approx(result.val_iou_after, abs=1e-9)


def test_cancel_leaves_the_previous_decoder_byte_identical(small, tmp_path):
    out = tmp_path / "decoder.safetensors"
    save_decoder(tiny_sam(seed=5), out, metadata={"note": "previous"})
    previous = out.read_bytes()
    gen = finetune(small, tiny_sam(), out=out, epochs=5, **QUICK)
    for event in gen:
        if event.phase == "train" and event.step == 2:
            break
    gen.close()
    assert out.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decoder.safetensors", "small"]


def test_nan_loss_stops_with_a_clear_error(small, tmp_path, monkeypatch):
    from napari_devosam.finetune import trainer

    real = trainer.decoder_loss

    def poisoned(*args, **kwargs):
        loss, best = real(*args, **kwargs)
        return loss * float("nan"), best

    monkeypatch.setattr(trainer, "decoder_loss", poisoned)
    out = tmp_path / "d.safetensors"
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 1, step 1.*learning"):
        run_finetune(small, tiny_sam(), out=out, epochs=2, **QUICK)
    assert not out.exists()


def test_time_limit_stops_after_one_step(small, tmp_path):
    events = []
    result = run_finetune(small, tiny_sam(), out=tmp_path / "d.safetensors", epochs=50,
                          max_minutes=1e-6, callback=events.append, **QUICK)
    assert result.stopped == "time_limit" and result.steps_run == 1
    assert sum(e.phase == "train" for e in events) == 1
    assert [e.step for e in events if e.phase == "validate"] == [0, 1]
    assert (tmp_path / "d.safetensors").is_file() == result.improved


def scripted_scores(monkeypatch, ious):
    """Replace the validation score by a script: the n-th validation round returns ious[n]."""
    import importlib

    evaluate_module = importlib.import_module("napari_devosam.finetune.evaluate")

    calls = iter(ious)

    def score(_model, _targets):
        iou = next(calls)
        return {"mean_iou": iou, "box_iou": iou, "point_iou": iou}

    monkeypatch.setattr(evaluate_module, "score_targets", score)


# a decoder that gets worse for a while before it gets better (rounds 1-4), then plateaus
DIP = [0.30, 0.10, 0.00, 0.00, 0.05, 0.50, 0.40, 0.45, 0.40, 0.90, 0.90]


def test_training_continues_past_a_dip_and_patience_counts_rounds(small, tmp_path,
                                                                   monkeypatch):
    scripted_scores(monkeypatch, DIP)
    settings = {**QUICK, "patience": 3, "validate_every": 2, "min_steps": 8}
    result = run_finetune(small, tiny_sam(), out=tmp_path / "d.safetensors", steps=40,
                          **settings)
    # the dip (steps 2-6) comes before min_steps = 8 and is not counted; step 8 is the first
    # stale round counted, step 10 the best; steps 12, 14, 16 are stale: stop at step 16
    assert result.best_step == 10 and result.val_iou_after == 0.50
    assert result.stopped == "early_stopping" and result.steps_run == 16
    assert [h["step"] for h in result.history] == [0, 2, 4, 6, 8, 10, 12, 14, 16]
    assert result.improved and result.path.is_file()


def test_without_min_steps_the_dip_stops_training(small, tmp_path, monkeypatch):
    scripted_scores(monkeypatch, DIP)
    settings = {**QUICK, "patience": 3, "validate_every": 2, "min_steps": 0}
    out = tmp_path / "d.safetensors"
    events = []
    result = run_finetune(small, tiny_sam(), out=out, steps=40, callback=events.append,
                          **settings)
    assert result.stopped == "early_stopping" and result.steps_run == 6
    assert not result.improved and result.path is None and not out.exists()
    assert result.message == ("no improvement over the starting decoder (val IoU 0.300); "
                              "nothing written")
    assert events[-1].phase == "done" and events[-1].message == result.message


def test_a_run_without_gain_writes_nothing_and_says_so(small, tmp_path):
    out = tmp_path / "d.safetensors"
    save_decoder(tiny_sam(seed=5), out, metadata={"note": "previous"})
    previous = out.read_bytes()
    settings = {**QUICK, "lr": 1e-12, "patience": 2, "min_steps": 0, "validate_every": 1}
    result = run_finetune(small, tiny_sam(), out=out, steps=20, **settings)
    assert result.stopped == "early_stopping" and result.steps_run == 2
    assert result.best_step == 0 and result.val_iou_after == result.val_iou_before
    assert not result.improved and result.path is None
    assert result.message.startswith("no improvement over the starting decoder (val IoU ")
    assert result.message.endswith("); nothing written")
    assert out.read_bytes() == previous  # the file already there is not touched


def test_bad_settings_and_data_fail_before_any_event(small, tmp_path):
    bad_settings = {"epochs": 0, "steps": 0, "validate_every": 0, "patience": 0,
                    "warmup_steps": -1, "min_steps": -1, "lr": float("nan")}
    for name, value in bad_settings.items():
        pattern = "learning rate" if name == "lr" else name
        with pytest.raises(ValueError, match=pattern):
            next(finetune(small, tiny_sam(), out=tmp_path / "d.safetensors", **{name: value}))
    with pytest.raises(ValueError, match="is a folder"):
        next(finetune(small, tiny_sam(), out=tmp_path))
    write_tiff(small / "labels" / "e1.tif", np.zeros((128, 128), np.uint16))
    with pytest.raises(ValueError, match=r"e1\.tif has no objects"):
        next(finetune(small, tiny_sam(), out=tmp_path / "d.safetensors"))
    assert not (tmp_path / "d.safetensors").exists()
