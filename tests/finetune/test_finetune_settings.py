"""finetune.settings.RunSettings: one declaration that the CLI, the widget and the API build."""

import subprocess
import sys

import pytest

from napari_devosam.cli import build_parser
from napari_devosam.cli.finetune import run_settings
from napari_devosam.finetune.settings import SECTIONS, RunSettings
from napari_devosam.utils.params import specs

BASE = ["finetune", "data", "--out", "d.safetensors"]


def _settings(*flags):
    return run_settings(build_parser().parse_args([*BASE, *flags]))


def test_every_setting_is_declared_with_a_section_and_help():
    for name, spec in specs(RunSettings).items():
        assert spec.section in SECTIONS and spec.help.endswith("."), name


def test_no_flag_gives_the_defaults_and_every_field_has_a_flag():
    assert _settings() == RunSettings()
    help_text = build_parser()._subparsers._group_actions[0].choices["finetune"].format_help()
    for name in specs(RunSettings):
        assert "--" + name.replace("_", "-") in help_text, name


def test_flags_build_the_settings_object():
    s = _settings("--steps", "50", "--epochs", "3", "--max-minutes", "1.5", "--lr", "2e-4",
                  "--no-patience", "--min-steps", "0", "--validate-every", "5",
                  "--warmup-steps", "0", "--weight-decay", "0", "--correction-rounds", "1",
                  "--loss", "focal", "--train-prompt-encoder", "--mixed-precision", "off",
                  "--batch-prompts", "2", "--val-fraction", "0.5", "--seed", "7")
    assert s == RunSettings(steps=50, epochs=3, max_minutes=1.5, lr=2e-4, patience=None,
                            min_steps=0, validate_every=5, warmup_steps=0, weight_decay=0.0,
                            correction_rounds=1, loss="focal", train_prompt_encoder=True,
                            mixed_precision=False, batch_prompts=2, val_fraction=0.5, seed=7)
    assert _settings("--mixed-precision", "on").mixed_precision is True
    with pytest.raises(ValueError, match="val_fraction must be within"):
        _settings("--val-fraction", "1")
    with pytest.raises(ValueError, match="learning rate must be > 0"):
        _settings("--lr", "0")


def test_the_api_takes_the_object_or_its_fields(tmp_path):
    from napari_devosam.finetune import finetune
    from napari_devosam.testing import tiny_sam

    with pytest.raises(ValueError, match="unknown fine-tuning setting.*: stepz"):
        next(finetune(tmp_path, tiny_sam(), out=tmp_path / "d.safetensors", stepz=3))
    with pytest.raises(ValueError, match="epochs must be >= 1"):  # a field overrides the object
        next(finetune(tmp_path, tiny_sam(), out=tmp_path / "d.safetensors",
                      settings=RunSettings(epochs=2), epochs=0))


def test_reading_the_declaration_does_not_load_torch():
    code = ("import sys; from napari_devosam.finetune.settings import RunSettings; "
            "import napari_devosam._qt.finetune_job; RunSettings(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
