"""The "Fine-tune decoder" widget: a real (tiny) training run in a napari worker, cancel,
bad data, and handing the new decoder to the docked annotator.

Run headless with ``xvfb-run -a python -m pytest tests/test_qt_finetune_widget.py``.
"""

# Imported before any viewer exists: segment_anything pulls in torchvision -> triton, and
# loading triton's LLVM after Mesa's llvmpipe GL (xvfb) has started crashes the process.
import segment_anything  # noqa: F401  isort: skip

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from napari_devosam.io.write import write_tiff
from napari_devosam.models.decoder_files import read_decoder_metadata, save_decoder
from napari_devosam.synthetic.phantoms import make_embryo
from napari_devosam.testing import tiny_sam

pytestmark = pytest.mark.gui
TIMEOUT_MS = 60_000


@pytest.fixture
def bundle(tmp_path):
    """Two annotated phantom planes as images/ + labels/ TIFFs (one trains, one validates)."""
    root = tmp_path / "data"
    for i in range(2):
        image, labels = make_embryo(shape=(96, 96), n_cells=4, seed=i)
        write_tiff(root / "images" / f"plane_{i}.tif", image)
        write_tiff(root / "labels" / f"plane_{i}.tif", labels.astype(np.uint16))
    return root


@pytest.fixture
def notes():
    """The napari notifications shown during the test: list of (severity, message)."""
    from napari.utils.notifications import notification_manager

    seen = []

    def record(event):
        seen.append((str(event.severity), str(event.message)))

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)


def _widget(viewer, data, out, model=None, epochs=2, steps=400):
    """The widget as napari opens it from the Plugins menu (napari.yaml)."""
    _, widget = viewer.window.add_plugin_dock_widget("napari-devosam", "Fine-tune decoder")
    if model is not None:
        widget.set_model(model)
    if data is not None:
        widget.add_data_dir(data)
    widget.set_output(out)
    widget.form.epochs_spin.setValue(epochs)
    widget.form.steps_spin.setValue(steps)
    widget.form.device_combo.setCurrentText("cpu")
    return widget


def _decoder_state(sam):
    return {k: v.detach().clone() for k, v in sam.mask_decoder.state_dict().items()}


def _annotator(viewer, sam, tmp_path):
    from napari_devosam._qt.annotator_widget import AnnotatorWidget

    annotator = AnnotatorWidget(viewer, sam=sam, cache_dir=tmp_path / "cache")
    viewer.window.add_dock_widget(annotator, name="SAM annotator")
    return annotator


def test_training_runs_and_feeds_the_annotator(make_napari_viewer, qtbot, tmp_path, notes):
    from phantom_pairs import write_pairs

    bundle = write_pairs(tmp_path / "bundle", 3, shape=(128, 128), prefix="p")
    viewer = make_napari_viewer()
    # the annotator's model: the same image encoder, another decoder
    live_sam = tiny_sam(seed=0)
    live_sam.mask_decoder.load_state_dict(tiny_sam(seed=1).mask_decoder.state_dict())
    annotator = _annotator(viewer, live_sam, tmp_path)
    encoder = {k: v.clone() for k, v in live_sam.image_encoder.state_dict().items()}
    live_before = _decoder_state(live_sam)
    sam = tiny_sam(seed=0)
    sam_before = _decoder_state(sam)
    out = tmp_path / "decoder.safetensors"
    # 2 training planes of 4 objects: 2 steps per epoch; 40 epochs cap the budget at 80 steps;
    # a short warm-up and frequent validation (not in the form) catch the gain of this data
    # (the same run as tests/cli/test_cli_finetune.py: 0.261 -> 0.389)
    widget = _widget(viewer, bundle, out, model=sam, epochs=40)
    read_settings = widget._settings

    def settings():
        s = read_settings()
        s.extra.update(warmup_steps=4, validate_every=10, lr=1e-3)  # as the CLI test
        return s

    widget._settings = settings
    assert widget.use_in_annotator() is False  # nothing trained yet: a warning, no crash
    with qtbot.waitSignal(widget.finished, timeout=TIMEOUT_MS) as done:
        widget.start_btn.click()
        assert widget.is_running and not widget.start_btn.isEnabled()
    outcome = done.args[0]
    assert outcome.error is None and not outcome.cancelled, outcome.error
    assert outcome.model is sam
    assert not widget.is_running and widget.start_btn.isEnabled()
    # the live curve got training losses and validation IoUs (x: steps; 0 = before)
    assert len(widget.plot.loss_points) == 80
    ious = widget.plot.iou_points
    assert [x for x, _ in ious] == list(range(0, 81, 10))
    assert outcome.result.improved, outcome.result.message
    assert all(0.0 <= y <= 1.0 for _, y in ious)
    assert "->" in widget.iou_label.text()
    # the output file is a decoder with metadata naming its base model and the IoUs
    assert out.is_file() and widget.decoder_path() == out
    meta = read_decoder_metadata(out)
    assert meta["base_model"].startswith("custom-")
    assert meta["extra"]["val_iou_before"] == pytest.approx(ious[0][1])
    assert any(sev == "info" and str(out) in msg for sev, msg in notes)
    # neither the model given to the widget nor the annotator's changed while training
    assert all(torch.equal(sam_before[k], v) for k, v in _decoder_state(sam).items())
    assert all(torch.equal(live_before[k], v) for k, v in _decoder_state(live_sam).items())

    assert widget.use_btn.isEnabled()
    widget.use_btn.click()
    trained = load_file(str(out))
    live = annotator.sam.state_dict()
    assert annotator.sam is live_sam
    assert all(torch.equal(live[k], v) for k, v in trained.items())
    assert any(not torch.equal(live_before[k], live["mask_decoder." + k]) for k in live_before)
    # the encoder (and so every embedding) is unchanged
    assert all(torch.equal(encoder[k], v) for k, v in live_sam.image_encoder.state_dict().items())
    assert out.name in annotator.model_panel.active_label.text()
    assert any(sev == "info" and "annotator now uses" in msg for sev, msg in notes)


def test_cancel_keeps_the_previous_decoder(make_napari_viewer, qtbot, bundle, tmp_path):
    viewer = make_napari_viewer()
    annotator = _annotator(viewer, tiny_sam(), tmp_path)
    out = tmp_path / "decoder.safetensors"
    save_decoder(tiny_sam(seed=1), out, metadata={"note": "previous"})
    previous = out.read_bytes()
    widget = _widget(viewer, bundle, out, model=None, epochs=500)  # "loaded model"
    with qtbot.waitSignal(widget.finished, timeout=TIMEOUT_MS) as done:
        widget.start()
        qtbot.waitUntil(lambda: len(widget.plot.loss_points) > 0, timeout=TIMEOUT_MS)
        widget.cancel_btn.click()
    outcome = done.args[0]
    assert outcome.cancelled
    assert outcome.model is annotator.sam  # the annotator's model was reused, not reloaded
    assert out.read_bytes() == previous
    assert not list(tmp_path.glob(".decoder*"))  # no temporary file left behind
    assert "Cancelled" in widget.status_label.text()
    assert widget.start_btn.isEnabled() and not widget.use_btn.isEnabled()


def test_a_run_without_gain_offers_nothing_to_use(make_napari_viewer, qtbot, bundle, tmp_path,
                                                  notes):
    viewer = make_napari_viewer()
    out = tmp_path / "decoder.safetensors"
    widget = _widget(viewer, bundle, out, model=tiny_sam(), epochs=2)
    widget.form.lr_edit.setText("1e-12")  # the decoder cannot change: no gain
    with qtbot.waitSignal(widget.finished, timeout=TIMEOUT_MS) as done:
        widget.start()
    result = done.args[0].result
    assert result is not None and not result.improved and result.path is None
    assert not out.exists() and widget.decoder_path() is None
    assert "No improvement over the starting decoder" in widget.iou_label.text()
    assert "nothing written" in widget.status_label.text()
    assert not widget.use_btn.isEnabled()
    assert any(sev == "warning" and "nothing written" in msg for sev, msg in notes)


def test_bad_data_is_a_notification(make_napari_viewer, qtbot, bundle, tmp_path, notes):
    viewer = make_napari_viewer()
    (bundle / "labels" / "plane_1.tif").rename(bundle / "labels" / "other.tif")
    out = tmp_path / "decoder.safetensors"
    widget = _widget(viewer, bundle, out, model=tiny_sam())
    with qtbot.waitSignal(widget.finished, timeout=TIMEOUT_MS) as done:
        widget.start()
    assert done.args[0].error is not None
    errors = [msg for sev, msg in notes if sev == "error"]
    assert errors and ("plane_1" in errors[-1] or "other" in errors[-1])
    assert not out.exists() and widget.start_btn.isEnabled()
    # settings that cannot work are refused before any worker starts
    notes.clear()
    widget.set_data_dirs([tmp_path / "missing"])
    widget.start()
    assert widget.worker is None
    assert notes and notes[-1][0] == "error" and "missing" in notes[-1][1]
    widget.set_data_dirs([bundle])
    widget.form.lr_edit.setText("fast")
    widget.start()
    assert widget.worker is None and "learning rate" in notes[-1][1]


def test_nan_loss_is_a_notification(make_napari_viewer, qtbot, bundle, tmp_path, notes):
    viewer = make_napari_viewer()
    out = tmp_path / "decoder.safetensors"
    widget = _widget(viewer, bundle, out, model=tiny_sam(), epochs=3)
    widget.form.lr_edit.setText("1e30")  # the weights blow up after the first step
    with qtbot.waitSignal(widget.finished, timeout=TIMEOUT_MS) as done:
        widget.start()
    error = done.args[0].error
    assert isinstance(error, RuntimeError) and "nan" in str(error).lower()
    errors = [msg for sev, msg in notes if sev == "error"]
    assert errors and "learning rate" in errors[-1]
    assert not out.exists() and widget.start_btn.isEnabled() and not widget.use_btn.isEnabled()


def test_the_form_has_an_editor_per_setting_and_reads_one_settings_object(qtbot, bundle,
                                                                          tmp_path):
    from napari_devosam._qt.finetune_form import FinetuneForm
    from napari_devosam.finetune.settings import RunSettings
    from napari_devosam.utils.params import specs

    form = FinetuneForm()
    qtbot.addWidget(form)
    editors = form.settings_editors.editors
    assert set(editors) == set(specs(RunSettings))
    for name, spec in specs(RunSettings).items():
        assert editors[name].toolTip() == spec.help
        assert form.advanced.isAncestorOf(editors[name]) == spec.advanced, name
    form.add_data_dir(bundle)
    assert form.read().settings == RunSettings()  # the editors start at the defaults
    form.settings_editors.set_values({"patience": None, "loss": "focal", "epochs": 3,
                                      "mixed_precision": False})
    settings = form.read().settings
    assert (settings.patience, settings.loss, settings.epochs) == (None, "focal", 3)
    assert settings.mixed_precision is False and settings.steps is None
    form.minutes_spin.setValue(0)
    assert form.read().settings.max_minutes is None  # "no limit"


def test_the_estimate_shows_before_start(make_napari_viewer, qtbot, bundle, tmp_path):
    viewer = make_napari_viewer()
    out = tmp_path / "decoder.safetensors"
    widget = _widget(viewer, bundle, out, model=tiny_sam(), epochs=2)
    with qtbot.waitSignal(widget.finished, timeout=TIMEOUT_MS) as done:
        widget.estimate_btn.click()
    outcome = done.args[0]
    assert outcome.estimate.startswith("estimated run time: about ")
    assert widget.estimate_label.text().startswith("Estimated run time: about ")
    assert outcome.result is None and not out.exists()  # nothing trained or written
    assert widget.start_btn.isEnabled() and widget.estimate_btn.isEnabled()
