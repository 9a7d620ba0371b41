"""Planes per second of `devosam batch` (steps embed,auto) with 1 and 2 local workers.

    python benchmarks/bench_batch.py [--files 4] [--planes 2] [--size 128] [--model embryo_tiny]

Each run uses a fresh embedding cache and output folder; the time includes starting the
LocalCluster and loading the model once per worker (what a user waits for). Prints one line
per worker count.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    import tifffile

    from napari_devosam.batch.cluster import open_client
    from napari_devosam.batch.runner import BatchOptions, run_batch
    from napari_devosam.synthetic.phantoms import make_timelapse
    from napari_devosam.utils.progress import drain

    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--planes", type=int, default=2)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--model", default="embryo_tiny")
    ap.add_argument("--workers", default="1,2")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = []
        for i in range(a.files):
            stack, _ = make_timelapse(n_timepoints=a.planes, shape=(a.size, a.size), seed=i)
            files.append(tmp / f"e{i}.tif")
            tifffile.imwrite(files[-1], stack)
        for n in (int(w) for w in a.workers.split(",")):
            opts = BatchOptions(steps=("embed", "auto"), model=a.model, device="cpu",
                                fmt="tif", cache_dir=str(tmp / f"cache{n}"))
            start = time.perf_counter()
            with open_client(n) as client:
                ready = time.perf_counter()
                drain(run_batch(client, files, tmp / f"out{n}", opts))
            end = time.perf_counter()
            planes = a.files * a.planes
            print(f"{n} worker(s): {planes} planes in {end - start:.1f} s = "
                  f"{planes / (end - start):.2f} planes/s (cluster start {ready - start:.1f} s,"
                  f" {a.model}, {a.size}x{a.size}, {os.cpu_count()} CPUs)", flush=True)


if __name__ == "__main__":
    main()
