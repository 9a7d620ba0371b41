"""The model panel follows the one default model rule and says which model and why."""

from __future__ import annotations

import torch

from napari_devosam._qt.annotator_widget import AnnotatorWidget
from napari_devosam._qt.model_panel import BUNDLED_CHOICE, ModelPanel
from napari_devosam.models.download import checkpoint_path
from napari_devosam.models.registry import canonical_name
from napari_devosam.testing import tiny_sam

TIMEOUT = 60_000


def _cache_vit_b_lm() -> None:
    path = checkpoint_path("vit_b_lm")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(tiny_sam(seed=2).state_dict(), path)


def test_empty_cache_presets_the_bundled_model(qtbot):
    panel = ModelPanel()
    qtbot.addWidget(panel)
    assert BUNDLED_CHOICE in ("embryo", "embryo_tiny")  # "embryo" once it is registered
    assert panel.model_combo.currentText() == BUNDLED_CHOICE
    assert panel.default_label.text() == (f"default model: {BUNDLED_CHOICE} (bundled; no "
                                          "official checkpoint cached)")
    items = [panel.model_combo.itemText(i) for i in range(panel.model_combo.count())]
    assert items[:5] == ["vit_b", "vit_l", "vit_h", "vit_b_lm", "vit_l_lm"]
    assert BUNDLED_CHOICE in items and "embryo_tiny" in items and panel.available_offline()


def test_cached_microscopy_checkpoint_is_preset(qtbot):
    _cache_vit_b_lm()
    panel = ModelPanel()
    qtbot.addWidget(panel)
    assert panel.model_combo.currentText() == "vit_b_lm" and panel.available_offline()
    assert "vit_b_lm (official microscopy-trained, cached)" in panel.default_label.text()
    panel.select("demo")  # an alias: the bundled model it names is chosen
    assert canonical_name(panel.model_combo.currentText()) == canonical_name("demo")


def test_annotator_autoloads_the_default_and_names_it(make_napari_viewer, qtbot):
    w = AnnotatorWidget(make_napari_viewer())  # offline, empty cache: the bundled model loads
    qtbot.waitUntil(lambda: w.predictor is not None, timeout=TIMEOUT)
    assert f"{BUNDLED_CHOICE}, bundled" in w.model_panel.active_label.text()
    # the key of its recorded times is the CLI's for `--model <name>` on this device
    from napari_devosam.models.registry import timing_key

    precision = w.model_panel.precision_combo.currentText()
    assert w.model_panel.loaded.name == BUNDLED_CHOICE
    assert w.model_panel.loaded.key == timing_key(BUNDLED_CHOICE, "cpu", precision)
    w.set_model(w.sam, "again")  # the same model set again keeps its name
    assert w.model_panel.loaded.name == BUNDLED_CHOICE
    w.set_model(tiny_sam(), "injected model")  # a model handed over: named by architecture
    assert w.model_panel.loaded.name.startswith("injected ")
