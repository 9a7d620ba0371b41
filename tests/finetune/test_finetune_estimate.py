"""The run-time estimate, the ETA, the time cap and whole-model fine-tuning."""

from __future__ import annotations

import pytest
import torch
from test_finetune_train import QUICK, scripted_scores

import phantom_pairs
from napari_devosam.finetune import RunSettings, run_finetune
from napari_devosam.finetune.estimate import RunEstimate, eta_seconds, thread_choices
from napari_devosam.finetune.train import trains_whole
from napari_devosam.models.identity import encoder_hash, model_hash
from napari_devosam.models.loading import load_model
from napari_devosam.models.model_files import is_model_file, model_config
from napari_devosam.testing import tiny_sam

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def small(tmp_path):
    return phantom_pairs.write_pairs(tmp_path / "small", 3, shape=(128, 128), n_cells=4,
                                     prefix="e")


def test_the_estimate_adds_measured_rates_and_names_the_cap():
    est = RunEstimate(planes=4, embed_s=0.5, steps=100, step_s=1.0, rounds=5, validate_s=2.0,
                      max_minutes=None, threads=1, whole=False)
    assert est.seconds == pytest.approx(112.0) and not est.capped
    assert est.line().startswith("estimated run time: about 1 min 52 s (decoder; 100 steps")
    capped = RunEstimate(planes=4, embed_s=0.5, steps=100, step_s=1.0, rounds=5,
                         validate_s=2.0, max_minutes=1.0, threads=1, whole=True)
    # the cap, plus the step that crosses it and the validation round after it
    assert capped.seconds == pytest.approx(63.0) and capped.capped
    assert capped.line().startswith("estimated run time: about 1 min 03 s, capped at 1 min by "
                                    "--max-minutes (about 1 min 52 s without it) (whole model;")
    assert capped.line().endswith("at the limit it stops and keeps the best weights so far")
    within = RunEstimate(planes=0, embed_s=0.0, steps=10, step_s=0.01, rounds=2,
                         validate_s=0.01, max_minutes=8.0, threads=0, whole=False)
    assert within.line().startswith("estimated run time: about 0.12 s, within the 8 min "
                                    "limit of --max-minutes (decoder; 10 steps at 0.01 s, ")
    # trial 16: "5 annotated planes" then "13 planes to embed": the views are said
    views = RunEstimate(planes=13, embed_s=0.064, steps=10, step_s=0.01, rounds=2,
                        validate_s=0.01, max_minutes=None, threads=1, whole=False, views=9)
    assert "13 images to embed at 0.064 s (9 of them zoomed views of small objects)" in \
        views.line()
    assert "4 images to embed at 0.5 s;" in est.line()


def test_eta_counts_steps_and_validation_rounds_left():
    # 100 steps at 1 s, rounds at 25, 50, 75, 100 left at 2 s each
    assert eta_seconds(0, 100, 1.0, 25, 2.0, None) == pytest.approx(108.0)
    assert eta_seconds(60, 100, 1.0, 25, 2.0, None) == pytest.approx(40.0 + 2 * 2.0)
    assert eta_seconds(100, 100, 1.0, 25, 2.0, None) == 0.0
    assert eta_seconds(0, 100, 1.0, 25, 2.0, deadline_left=10.0) == pytest.approx(13.0)


def test_the_estimate_comes_before_training_and_events_carry_an_eta(small, tmp_path):
    events = []
    result = run_finetune(small, tiny_sam(), out=tmp_path / "d.safetensors", steps=6,
                          validate_every=3, callback=events.append, **QUICK)
    first = events[0]
    assert first.phase == "embed" and first.message.startswith("estimated run time: about ")
    assert "6 steps at" in first.message and "3 validation rounds" in first.message
    assert first.eta > 0
    trains = [e for e in events if e.phase == "train"]
    assert events.index(first) < events.index(trains[0])
    assert all(e.eta is not None and e.eta >= 0 for e in trains)
    assert trains[-1].eta == 0.0 and result.steps_run == 6
    assert result.metadata["settings"]["threads"] == 1  # one_torch_thread: nothing else timed


def test_the_time_cap_stops_training_and_still_writes_the_best(small, tmp_path, monkeypatch):
    scripted_scores(monkeypatch, [0.30, 0.60])  # the first step's round beats the start
    out = tmp_path / "d.safetensors"
    result = run_finetune(small, tiny_sam(), out=out, steps=400, max_minutes=1e-6, **QUICK)
    assert result.stopped == "time_limit" and result.steps_run == 1
    assert result.improved and result.val_iou_after == 0.60 and out.is_file()


def test_time_cap_has_a_default_and_can_be_lifted():
    assert RunSettings().max_minutes == 8.0
    assert RunSettings(max_minutes=None).max_minutes is None


def test_who_trains_whole_by_default():
    bundled = load_model("embryo_tiny", device="cpu")
    assert not trains_whole(bundled, RunSettings())  # the default: the decoder only
    assert trains_whole(bundled, RunSettings(train_whole=None))  # auto: a bundled model whole
    assert not trains_whole(tiny_sam(), RunSettings(train_whole=None))  # anything else: not
    assert not trains_whole(bundled, RunSettings(train_whole=False))
    assert trains_whole(tiny_sam(), RunSettings(train_whole=True))
    assert thread_choices(RunSettings(threads=3), torch.device("cpu")) == [3]


def test_whole_model_training_changes_the_encoder_and_the_file_reloads(small, tmp_path,
                                                                       monkeypatch):
    scripted_scores(monkeypatch, [0.30, 0.40, 0.50])
    sam = load_model("embryo_tiny", device="cpu")
    before_model, before_encoder = model_hash(sam), encoder_hash(sam)
    out = tmp_path / "whole.safetensors"
    result = run_finetune(small, sam, out=out, steps=4, validate_every=2, train_whole=True,
                          **QUICK)
    assert result.improved and result.metadata["trained_encoder"]
    assert result.metadata["kind"] == "finetuned-model" and "--model" in result.message
    assert model_hash(sam) == before_model  # the model passed in never changes
    assert is_model_file(out)
    loaded = load_model(str(out), device="cpu")  # the safe path: safetensors, config checked
    assert encoder_hash(loaded) != before_encoder  # the encoder was trained
    assert model_config(loaded) == model_config(sam)
    assert loaded.devosam_bundled  # with train_whole=None (auto) it would train whole again
