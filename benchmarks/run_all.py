"""Run every benchmark that exists here, one after the other, and keep their JSON results.

``python benchmarks/run_all.py [--device cuda] [--encoder] [--quick] [--out DIR]``

* ``bench_click.py``: per-click latency vs stock ``SamPredictor``, embedding, cached reload,
  memory (``--device``, ``--encoder`` passed on).
* ``bench_napari.py``: end-to-end napari latency; needs a display, so it runs under
  ``xvfb-run -a`` when there is no ``DISPLAY`` and ``xvfb-run`` exists (skipped otherwise).
* ``bench_finetune.py``: decoder fine-tuning throughput (masks/s), when present.

Each script runs in its own process (no shared thread pools or caches between them). The exit
status is the number of scripts that failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def plan(args) -> list[tuple[str, list[str]]]:
    quick = ["--runs", "8"] if args.quick else []
    steps = [("bench_click.py", ["--device", args.device, *quick])]
    if args.encoder:
        steps[0][1].append("--encoder")
    if args.amp != "none":
        steps[0][1].extend(["--amp", args.amp])
    steps.append(("bench_napari.py", quick))
    steps.append(("bench_finetune.py", ["--device", args.device] if args.device != "cpu" else []))
    return steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="run all benchmarks")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--encoder", action="store_true", help="bench_click: time the encoder too")
    ap.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none")
    ap.add_argument("--quick", action="store_true", help="fewer runs (a smoke test)")
    ap.add_argument("--out", default="benchmark-results", help="folder for the JSON results")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for script, extra in plan(args):
        path = HERE / script
        if not path.is_file():
            print(f"== {script}: not present, skipped")
            continue
        cmd = [sys.executable, str(path), *extra, "--json", str(out / f"{path.stem}.json")]
        if script == "bench_napari.py" and not os.environ.get("DISPLAY"):
            xvfb = shutil.which("xvfb-run")
            if xvfb is None:
                print(f"== {script}: no display and no xvfb-run, skipped")
                continue
            cmd = [xvfb, "-a", *cmd]
        print(f"== {script}: {' '.join(cmd)}", flush=True)
        rc = subprocess.call(cmd)
        if rc != 0:
            print(f"== {script} failed with exit status {rc}")
            failed += 1
    return failed


if __name__ == "__main__":
    sys.exit(main())
