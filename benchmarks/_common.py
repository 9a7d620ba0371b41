"""Helpers shared by the benchmark scripts: machine description, timing, memory, reporting."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine(device: str = "cpu") -> dict:
    """Name the machine the figures come from."""
    import torch

    info = {
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def interleaved(
    fns: dict[str, Callable[[], object]], runs: int, warmup: int = 3, device: str = "cpu"
) -> dict[str, dict]:
    """Time every function ``runs`` times, alternating between them (order rotated each round)
    so that load from other processes hits all of them alike. Wall and CPU time in ms."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    sync(device)
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for r in range(runs):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            c0, t0 = time.process_time(), time.perf_counter()
            fns[name]()
            sync(device)
            wall[name].append((time.perf_counter() - t0) * 1e3)
            cpu[name].append((time.process_time() - c0) * 1e3)
    return {n: summary(wall[n], cpu[n]) for n in names}


def summary(wall_ms, cpu_ms=None) -> dict:
    w = np.asarray(wall_ms, dtype=float)
    out = {
        "n": int(w.size),
        "p50_ms": float(np.percentile(w, 50)),
        "p90_ms": float(np.percentile(w, 90)),
        "min_ms": float(w.min()),
    }
    if cpu_ms is not None:
        out["cpu_p50_ms"] = float(np.percentile(np.asarray(cpu_ms, dtype=float), 50))
    return out


def once(fn: Callable[[], object], device: str = "cpu") -> tuple[float, object]:
    sync(device)
    t0 = time.perf_counter()
    result = fn()
    sync(device)
    return (time.perf_counter() - t0) * 1e3, result


def peak_rss_mib() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def ratio(stock: float, ours: float) -> str:
    return f"{stock / ours:5.2f}x" if ours > 0 else "  n/a"


def write_json(path: str | None, results: dict) -> None:
    if path:
        from napari_devosam.utils.atomic import write_text

        write_text(path, json.dumps(results, indent=2, default=str))
        print(f"results written to {path}")
