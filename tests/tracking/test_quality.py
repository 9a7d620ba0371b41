"""CTC quality of propagation on phantom lineage movies, measured by traccuracy (the ``bench``
extra; skipped without it). The issue's TRA target (0.95) is not met yet (docs/tracking.md):
these floors sit just under what is measured now, so that a change that makes tracking worse
fails here."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_tracking",
                                                  ROOT / "benchmarks" / "bench_tracking.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# measured 2026-11-30 (3 movies): oracle TRA 0.884, division F1 0.916; embryo_tiny (phase 4
# weights) TRA 0.849, division F1 0.824 (phase 3 weights: 0.887, 0.856)
FLOORS = {"oracle": {"TRA": 0.85, "division_f1": 0.87},
          "embryo_tiny": {"TRA": 0.82, "division_f1": 0.78}}


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(FLOORS))
def test_ctc_quality_does_not_fall_below_what_is_measured(model):
    pytest.importorskip("traccuracy", reason="CTC metrics need traccuracy (bench extra)")
    q = _bench().bench_quality(model)
    for metric, floor in FLOORS[model].items():
        assert q[metric] >= floor, (metric, q[metric])
