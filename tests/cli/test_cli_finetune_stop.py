"""``devosam finetune``: Ctrl-C keeps the best weights trained so far (exit 130), and the
estimate printed before the run honours ``--max-minutes`` (issue 25). Model loading is
replaced by a tiny random SAM; validation scores are scripted."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from napari_devosam.cli import main
from napari_devosam.models import loading as model_loading
from napari_devosam.testing import tiny_sam
from phantom_pairs import write_pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def data(tmp_path):
    return write_pairs(tmp_path / "bundle", 3, shape=(128, 128), prefix="p")


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(model_loading, "load_model", lambda *a, **k: tiny_sam())


def scripted(monkeypatch, ious):
    """The n-th validation round scores ious[n] (the last one from then on)."""
    import importlib

    evaluate_module = importlib.import_module("napari_devosam.finetune.evaluate")
    calls = itertools.chain(ious, itertools.repeat(ious[-1]))

    def score(_model, _targets):
        iou = next(calls)
        return {"mean_iou": iou, "box_iou": iou, "point_iou": iou}

    monkeypatch.setattr(evaluate_module, "score_targets", score)


def interrupt_step(monkeypatch, at: int):
    """Ctrl-C during training step ``at``."""
    from napari_devosam.finetune import loop

    real = loop._step

    def step(run, st, t, idx):
        if st.step == at:
            raise KeyboardInterrupt
        return real(run, st, t, idx)

    monkeypatch.setattr(loop, "_step", step)


def interrupt_event(monkeypatch, phase: str, step: int):
    """Ctrl-C while the CLI shows the ``phase`` event of ``step`` (outside the generator)."""
    from napari_devosam.cli import finetune as cli_finetune

    real, fired = cli_finetune._Bars.update, []

    def update(self, ev):
        if not fired and ev.phase == phase and ev.step == step:
            fired.append(ev)
            raise KeyboardInterrupt
        return real(self, ev)

    monkeypatch.setattr(cli_finetune._Bars, "update", update)
    return fired


def _finetune(data, tmp_path, *extra):
    out = tmp_path / "dec.safetensors"
    rc = main(["finetune", str(data), "--model", "vit_b", "--out", str(out), "--steps", "40",
               "--validate-every", "2", "--device", "cpu", "--no-progress", "--cache-dir",
               str(tmp_path / "cache"), "--json", *extra])
    return rc, out


@pytest.mark.parametrize("where", ["in a step", "between steps"])
def test_ctrl_c_in_training_writes_the_best_weights_and_exits_130(data, tmp_path, tiny,
                                                                  monkeypatch, capsys, where):
    scripted(monkeypatch, [0.30, 0.60, 0.55])  # the round at step 2 beats the start
    if where == "in a step":
        interrupt_step(monkeypatch, 3)
    else:
        assert interrupt_event(monkeypatch, "train", 3) is not None
    rc, out = _finetune(data, tmp_path)
    captured = capsys.readouterr()
    assert rc == 130, captured.err
    assert out.is_file()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["stopped"] == "interrupted" and summary["best_step"] == 2
    assert summary["steps_run"] == 3 and summary["val_iou_after"] == 0.60
    assert summary["path"] == str(out)
    assert (f"devosam finetune: interrupted at step 3; the best weights so far are in {out}"
            in captured.err)


def test_ctrl_c_before_any_gain_writes_nothing(data, tmp_path, tiny, monkeypatch, capsys):
    scripted(monkeypatch, [0.30, 0.20])
    interrupt_step(monkeypatch, 3)
    rc, out = _finetune(data, tmp_path)
    err = capsys.readouterr().err
    assert rc == 130 and not out.exists()
    assert "no validation round beat the starting decoder yet: nothing written" in err


def test_ctrl_c_while_embedding_stops_at_once(data, tmp_path, tiny, monkeypatch, capsys):
    interrupt_event(monkeypatch, "embed", 1)
    rc, out = _finetune(data, tmp_path)
    err = capsys.readouterr().err
    assert rc == 130 and not out.exists()
    assert err.strip().splitlines()[-1] == "devosam: interrupted"


def test_the_estimate_names_the_time_limit(data, tmp_path, tiny, capsys):
    _finetune(data, tmp_path, "--steps", "4")
    err = capsys.readouterr().err
    assert err.index("devosam finetune: 3 annotated planes; timing the encoder on the first") \
        < err.index("estimated run time")
    line = next(x for x in err.splitlines() if x.startswith("estimated run time"))
    assert "about under" not in line
    assert re.match(r"estimated run time: about .+, within the 8 min limit of "
                    r"--max-minutes \(decoder; 4 steps at ", line), line
    _finetune(data, tmp_path, "--steps", "400", "--max-minutes", "0.0001")
    line = next(x for x in capsys.readouterr().err.splitlines()
                if x.startswith("estimated run time"))
    assert re.match(r"estimated run time: about .+, capped at 0\.006 s by "
                    r"--max-minutes \(about .+ without it\) \(decoder; 400 steps",
                    line), line
    assert line.endswith("at the limit it stops and keeps the best weights so far")
