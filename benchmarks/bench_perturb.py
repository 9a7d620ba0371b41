"""Automatic segmentation under acquisition changes, on the labelled real sources.

A held-out set of real images judges the package, so the figures of ``bench_real.py`` on
four sources say little by themselves: the same nuclei imaged at another pixel size, with
fewer photons, out of focus, on another camera range or under uneven light should give
about the same result. This script changes each labelled plane of ``real_sources.py``
(DSB2018, cells3d, CTC HeLa, CTC CHO; evaluation only, never training data) in one way at
a time and runs seeded automatic segmentation (``automatic.segment_all``, stain ``auto``,
the bundled ``embryo`` model) on the result, scored against the labels changed the same way
(nearest-neighbour for a rescale):

- ``scale0.5``, ``scale2``: resampled (bilinear) to half and twice the pixel size's
  inverse: nuclei half and twice as many pixels across;
- ``photons10``, ``photons50``: the plane scaled to 10 or 50 photons at its 99.9th
  percentile, 1 photon of background, Poisson noise, uint16;
- ``blur2``: Gaussian blur, sigma 2 px (out of focus);
- ``offset``: 40000 subtracted, float32 (a shifted or background-subtracted range);
- ``dim16``: 300 grey levels above a pedestal of 100 with Gaussian read noise of 5, uint16;
- ``gradient``: a left-to-right background ramp as bright as the nuclei;
- ``vignette``: light falling off from the centre to 0.4 in the corners (multiplied, over a
  background a tenth of the nuclei's range);
- ``gamma0.5``: a compressive display curve.

Per change and source: F1@0.5 and mSA (pooled over the source's planes), objects found
against the truth's, the stain decided. Usage:
``python benchmarks/bench_perturb.py [--sources dsb2018,cells3d,hela,cho]
[--changes ...] [--threads 1] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_eval as E  # noqa: E402
import real_sources as R  # noqa: E402
from _common import machine, write_json  # noqa: E402


def _unit(plane: np.ndarray) -> np.ndarray:
    p = plane.astype(np.float64)
    lo, hi = np.percentile(p, (0.1, 99.9))
    return np.clip((p - lo) / max(hi - lo, 1e-12), 0, 1)


def _zoom(factor: float):
    from scipy import ndimage

    def change(plane, labels, rng):
        return (ndimage.zoom(plane.astype(np.float32), factor, order=1),
                ndimage.zoom(labels, factor, order=0))
    return change


def _photons(n: float):
    def change(plane, labels, rng):
        return rng.poisson(_unit(plane) * n + 1.0).astype(np.uint16), labels
    return change


def _blur(plane, labels, rng):
    from scipy import ndimage

    return ndimage.gaussian_filter(plane.astype(np.float32), 2.0), labels


def _offset(plane, labels, rng):
    return plane.astype(np.float32) - 40_000.0, labels


def _dim16(plane, labels, rng):
    noisy = _unit(plane) * 300 + 100 + rng.normal(0, 5, plane.shape)
    return np.clip(noisy, 0, None).astype(np.uint16), labels


def _gradient(plane, labels, rng):
    ramp = np.linspace(0.0, 1.0, plane.shape[1])[None, :]
    return ((_unit(plane) + ramp) * 1000).astype(np.uint16), labels


def _vignette(plane, labels, rng):
    h, w = plane.shape
    r2 = (np.linspace(-1, 1, h)[:, None] ** 2 + np.linspace(-1, 1, w)[None, :] ** 2) / 2
    return ((_unit(plane) + 0.1) * (1.0 - 0.6 * r2) * 1000).astype(np.uint16), labels


def _gamma(plane, labels, rng):
    return (_unit(plane) ** 0.5 * 255).astype(np.uint8), labels


CHANGES = {
    "none": lambda plane, labels, rng: (plane, labels),
    "scale0.5": _zoom(0.5), "scale2": _zoom(2.0),
    "photons10": _photons(10), "photons50": _photons(50),
    "blur2": _blur, "offset": _offset, "dim16": _dim16, "gradient": _gradient,
    "vignette": _vignette, "gamma0.5": _gamma,
}


def run(sam, sources: dict, changes: list[str], seed: int = 0) -> list[dict]:
    """One row per (change, source): F1@0.5, mSA, objects, truth, stains, seconds."""
    from napari_devosam import Predictor
    from napari_devosam.automatic.core import segment_all

    rows = []
    for name in changes:
        for label, planes in sources.items():
            rng = np.random.default_rng(seed)
            counts, stains, secs = [], set(), []
            for plane, truth in planes:
                changed, labels = CHANGES[name](plane, truth, rng)
                start = time.perf_counter()
                pred = Predictor(sam, cache_dir=None)
                res = segment_all(changed, pred, embedding=pred.set_image(changed),
                                  stain="auto")
                secs.append(time.perf_counter() - start)
                stains.add(str(res.stain) if res.stain is not None else "none")
                counts.append(E.match_counts(res.labels, labels))
            q = E.pooled(counts)
            rows.append({"change": name, "source": label, "f1": q["f1"], "msa": q["msa"],
                         "objects": q.get("n_pred", 0), "truth": q.get("n_true", 0),
                         "stain": ",".join(sorted(stains)), "s_per_plane": float(np.mean(secs))})
            r = rows[-1]
            print(f"{name:10s} {label:8s} F1 {r['f1']:.3f}  mSA {r['msa']:.3f}  objects "
                  f"{r['objects']:4d} / {r['truth']:4d}  stain {r['stain']}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", default="dsb2018,cells3d,hela,cho")
    ap.add_argument("--changes", default=",".join(CHANGES))
    ap.add_argument("--model", default="embryo")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    import torch

    from napari_devosam import load_model

    torch.set_num_threads(args.threads)
    sources = {}
    for name in args.sources.split(","):
        try:
            sources[name] = R.LABELLED[name]().planes
        except R.SourceUnavailable as exc:
            print(f"skipped {name}: {exc}")
    sam = load_model(args.model, device="cpu", progress=False)
    rows = run(sam, sources, [c for c in args.changes.split(",") if c])
    write_json(args.json, {"machine": machine(), "model": args.model, "rows": rows})


if __name__ == "__main__":
    main()
