"""Seeded mode quality on held-out phantoms with the trained ``embryo_tiny`` model (issue 12
targets: F1 at IoU 0.5 >= 0.95, mean matched IoU >= 0.85). Skipped until
``napari_devosam.load_model("embryo_tiny")`` works. The full comparison (grid mode, watershed
baseline, timings) is ``benchmarks/bench_automatic.py``."""

import numpy as np
import pytest

from napari_devosam.automatic import segment_all
from napari_devosam.automatic.metrics import match_scores
from napari_devosam.synthetic.phantoms import make_embryo

HELDOUT = [((256, 384), 12, "membrane", np.uint16, 10_000_000),
           ((320, 320), 24, "nuclei", np.uint8, 10_000_001),
           ((384, 256), 16, "membrane", np.uint8, 10_000_002),
           ((300, 500), 32, "nuclei", np.uint16, 10_000_003)]


@pytest.fixture(scope="module")
def embryo_tiny():
    from napari_devosam import load_model

    try:
        return load_model("embryo_tiny", device="cpu", progress=False)
    except Exception as exc:  # noqa: BLE001 - any failure means "not available yet"
        pytest.skip(f"embryo_tiny is not loadable yet ({type(exc).__name__}: {exc}); this "
                    "test is enabled when the trained model lands")


@pytest.mark.usefixtures("one_torch_thread")
def test_seeded_mode_meets_the_quality_targets(embryo_tiny):
    from napari_devosam import Predictor

    predictor = Predictor(embryo_tiny)
    tp = fp = fn = 0
    ious = []
    for shape, n, kind, dtype, seed in HELDOUT:
        img, truth = make_embryo(shape, n, seed=seed, dtype=dtype, kind=kind)
        res = segment_all(img, predictor, mode="seeded")
        m = match_scores(res.labels, truth)
        tp, fp, fn = tp + m["tp"], fp + m["fp"], fn + m["fn"]
        ious += [m["mean_iou"]] * m["tp"]
    f1 = 2 * tp / (2 * tp + fp + fn)
    trained = _training_summary()
    assert f1 >= 0.95, f"F1 {f1:.3f} (tp {tp}, fp {fp}, fn {fn}); model: {trained}"
    assert np.mean(ious) >= 0.85, f"mean IoU {np.mean(ious):.3f}; model: {trained}"


def _training_summary() -> str:
    """How long the bundled model was trained (from its metadata), for failure messages."""
    import json

    from safetensors import safe_open

    try:
        from napari_devosam.models.bundled import bundled_path

        with safe_open(str(bundled_path("embryo_tiny")), framework="pt") as f:
            training = json.loads((f.metadata() or {}).get("training", "{}"))
        return f"{training.get('steps_run', '?')} of {training.get('steps', '?')} steps"
    except Exception as exc:  # noqa: BLE001 - only a message
        return f"unknown ({exc})"
