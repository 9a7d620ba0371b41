"""The viewer survives what a user does first: dock the annotator from the plugin menu in a
fresh napari (nothing imported beforehand) with ``DEVOSAM_CHECKPOINT`` set, and background
jobs whose error reporting itself fails.

Run under a display: ``xvfb-run -a python -m pytest tests/qt/test_qt_startup.py``.

The checkpoint: ``load_model`` detects the official architectures from the weights, and a
tiny SAM (``testing.tiny_sam``) needs a ``builder``, which ``DEVOSAM_CHECKPOINT`` cannot
name. A real random vit_b is 375 MB; instead every tensor of a vit_b-shaped state dict is a
view of one zero storage, which ``torch.save`` writes once: a 13 MB file that loads as a
vit_b in a fraction of a second (the weights are meaningless; only loading is tested).
"""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

SCRIPT = textwrap.dedent("""
    import sys, time
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True)
    assert "segment_anything" not in sys.modules, "imported too early: the test is void"
    dock, widget = viewer.window.add_plugin_dock_widget("napari-devosam", "SAM annotator")
    app = QApplication.instance()
    deadline = time.time() + 120
    while widget.sam is None and time.time() < deadline:
        app.processEvents()
        time.sleep(0.01)
    print("MODEL:", widget._model_text, flush=True)
    ok = widget.sam is not None
    viewer.close()
    sys.exit(0 if ok else 3)
""")


def _shared_storage_vit_b(path):
    import torch
    from segment_anything import sam_model_registry

    with torch.device("meta"):
        sam = sam_model_registry["vit_b"](checkpoint=None)
    shapes = {k: v.shape for k, v in sam.state_dict().items()}
    zeros = torch.zeros(max(s.numel() for s in shapes.values()))
    torch.save({k: zeros[:s.numel()].view(s) for k, s in shapes.items()}, path)


@pytest.mark.parametrize("run", range(2))
def test_plugin_dock_in_fresh_napari_loads_the_env_checkpoint(tmp_path_factory, run):
    folder = tmp_path_factory.getbasetemp() / "startup"
    folder.mkdir(exist_ok=True)
    ckpt = folder / "vit_b_zeros.pth"
    if not ckpt.exists():
        _shared_storage_vit_b(ckpt)
    env = dict(os.environ, DEVOSAM_CHECKPOINT=str(ckpt), DEVOSAM_DEVICE="cpu",
               XDG_CACHE_HOME=str(folder / "cache"), XDG_DATA_HOME=str(folder / "data"),
               OMP_NUM_THREADS="1")
    env.pop("QT_QPA_PLATFORM", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "MODEL: vit_b from vit_b_zeros.pth" in proc.stdout


def test_a_job_whose_signals_are_gone_does_not_abort(qtbot, qapp):
    """Reporting fails (the signal object was deleted): a notification, not SIGABRT."""
    from napari.qt.threading import create_worker
    from napari.utils.notifications import notification_manager

    from napari_devosam._qt.workers import SafeGeneratorWorker, reported

    class SignalsGone(SafeGeneratorWorker):
        def __getattr__(self, name):
            if name == "errored":
                raise RuntimeError("wrapped C/C++ object of type GeneratorWorkerSignals has "
                                   "been deleted")
            return super().__getattr__(name)

    def job():
        yield
        raise RuntimeError("boom")

    shown = []
    notification_manager.notification_ready.connect(shown.append)
    try:
        worker = create_worker(reported(job), _start_thread=False, _ignore_errors=True,
                               _worker_class=SignalsGone)
        worker.start()
        qtbot.waitUntil(lambda: any("could not report" in str(n.message) for n in shown),
                        timeout=10_000)
    finally:
        notification_manager.notification_ready.disconnect(shown.append)
