"""`devosam batch` end to end on a real LocalCluster of 2 worker processes with embryo_tiny:
an interrupted run resumes without recomputing finished files, a worker killed mid-task does
not stop the run, a corrupt input is reported while the others complete, and the labels equal
those of the sequential `devosam embed` + `devosam segment --auto`."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile

from napari_devosam.batch.tasks import FAULT_ENV
from napari_devosam.cli import main
from napari_devosam.synthetic.phantoms import make_timelapse

pytest.importorskip("distributed")


def _env(**extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    env.pop(FAULT_ENV, None)
    env.update(extra)
    return env


def _done_files(manifest):
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return []
    return [f for f, rec in data["files"].items()
            if rec["steps"].get("auto", {}).get("state") == "done"]


N_FILES = 5


def test_batch_interrupt_resume_worker_death_and_sequential_equality(tmp_path, one_torch_thread):
    inputs = tmp_path / "in"
    inputs.mkdir()
    # five files for two workers: after the first one finishes, at least two more task
    # lengths separate the interrupt from the last file (with three, the other two could
    # both finish before SIGTERM was handled, on a fast or an unevenly loaded machine)
    for i in range(N_FILES):
        stack, _ = make_timelapse(n_timepoints=2, shape=(128, 128), seed=i)
        tifffile.imwrite(inputs / f"e{i}.tif", stack)
    (inputs / "bad.tif").write_bytes(b"not a tiff at all")
    out, cache = tmp_path / "out", tmp_path / "cache"
    cmd = [sys.executable, "-m", "napari_devosam", "batch", str(inputs), "--out", str(out),
           "--model", "embryo_tiny", "--device", "cpu", "--format", "tif", "--cache-dir",
           str(cache), "--workers", "2", "--steps", "embed,auto", "--no-progress"]

    # 1. interrupted (SIGTERM) after the first file finished
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 90
    while not _done_files(out / "manifest.json") and proc.poll() is None:
        assert time.monotonic() < deadline, "no file finished in time"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0, err
    finished = _done_files(out / "manifest.json")
    assert 1 <= len(finished) < N_FILES
    mtimes = {f: (out / f"{os.path.basename(f)[:-4]}_labels.tif").stat().st_mtime_ns
              for f in finished}

    # 2. rerun: resumes; the first task it runs kills its worker once; bad.tif is reported
    marker = tmp_path / "killed"
    run = subprocess.run(cmd, env=_env(**{FAULT_ENV: str(marker)}), capture_output=True,
                         text=True, timeout=150)
    assert run.returncode == 1, run.stdout + run.stderr
    assert marker.exists()  # a worker did die mid-task, and the run still finished
    assert "bad.tif" in run.stdout and "FAILED" in run.stdout
    assert f"{N_FILES + 1} files, {2 * N_FILES} planes" in run.stdout
    assert "1 failure;" in run.stdout
    for f, mtime in mtimes.items():  # finished work untouched
        assert (out / f"{os.path.basename(f)[:-4]}_labels.tif").stat().st_mtime_ns == mtime
    data = json.loads((out / "manifest.json").read_text())
    bad = data["files"][str(inputs / "bad.tif")]["steps"]
    assert bad["embed"]["state"] == "failed" and "cannot read" in bad["embed"]["error"]
    assert bad["auto"]["state"] == "skipped"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left

    # 3. the same labels as the single-machine commands (three of the files)
    seq_cache = tmp_path / "seq-cache"
    for i in range(3):
        image = str(inputs / f"e{i}.tif")
        assert main(["embed", image, "--model", "embryo_tiny", "--device", "cpu",
                     "--cache-dir", str(seq_cache), "--no-progress"]) == 0
        expected = tmp_path / f"seq{i}.tif"
        assert main(["segment", image, "--auto", "--model", "embryo_tiny", "--device", "cpu",
                     "--cache-dir", str(seq_cache), "--out", str(expected)]) == 0
        got = tifffile.imread(out / f"e{i}_labels.tif")
        assert got.dtype == np.uint16 and got.shape == (2, 128, 128)
        np.testing.assert_array_equal(got, tifffile.imread(expected))
