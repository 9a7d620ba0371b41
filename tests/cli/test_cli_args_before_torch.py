"""Argument errors end in one stderr line and a non-zero exit before torch is imported (issue
25): each command runs in a fresh interpreter, which then reports whether torch was loaded."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile

from phantom_pairs import write_pairs

RUN = ("import sys\n"
       "from napari_devosam.cli import main\n"
       "rc = main(sys.argv[1:])\n"
       "print('torch imported' if 'torch' in sys.modules else 'no torch')\n"
       "raise SystemExit(rc)\n")

CASES = [
    (["segment", "{tmp}/missing.tif", "--box", "1,1,9,9", "--out", "{tmp}/o.tif"],
     "no image file"),
    (["segment", "{stack}", "--box", "1,1,9,9", "--plane", "9", "--out", "{tmp}/o.tif"],
     "the image has 3 planes (0-2); --plane 9 is outside"),
    (["segment", "{stack}", "--box", "1,1,9,9", "--plane", "0", "--model", "vit_q",
      "--out", "{tmp}/o.tif"], "unknown model 'vit_q'"),
    (["segment", "{stack}", "--box", "1,1,9,9", "--plane", "0", "--device", "gpu",
      "--out", "{tmp}/o.tif"], "unknown device 'gpu'"),
    (["segment", "{stack}", "--box", "1,1,9,9", "--plane", "0", "--model", "{tmp}/no.pth",
      "--out", "{tmp}/o.tif"], "checkpoint file"),
    (["segment", "{tmp}/missing.tif", "--auto", "--out", "{tmp}/o.tif"], "no image file"),
    (["segment", "{stack}", "--auto", "--plane", "9", "--out", "{tmp}/o.tif"],
     "the image has 3 planes (0-2); --plane 9 is outside"),
    (["segment", "{stack}", "--auto", "--model", "vit_q", "--out", "{tmp}/o.tif"],
     "unknown model 'vit_q'"),
    (["segment", "{stack}", "--auto", "--model", "{tmp}", "--out", "{tmp}/o.tif"],
     "is a folder, not a checkpoint file (--model)"),  # trial 18: "does not exist"
    (["segment", "{stack}", "--auto", "--decoder", "{tmp}", "--out", "{tmp}/o.tif"],
     "is a folder, not a decoder file (--decoder)"),
    (["embed", "{tmp}/missing.tif"], "no image file"),
    (["embed", "{stack}", "--model", "vit_q"], "unknown model 'vit_q'"),
    (["track", "{stack}", "--seed-labels", "{seeds}", "--model", "vit_q", "--out",
      "{tmp}/trk"], "unknown model 'vit_q'"),
    (["track", "{stack}", "--seed-labels", "{seeds}", "--seed-plane", "9", "--out",
      "{tmp}/trk"], "--seed-plane 9"),
    (["finetune", "{tmp}/nodata", "--out", "{tmp}/d.safetensors"], "does not exist"),
    (["finetune", "{data}", "--model", "vit_q", "--out", "{tmp}/d.safetensors"],
     "unknown model 'vit_q'"),
    (["finetune", "{data}", "--device", "cuda:x", "--out", "{tmp}/d.safetensors"],
     "unknown device 'cuda:x'"),
    (["eval", "{tmp}/nodata"], "does not exist"),
    (["eval", "{data}", "--model", "vit_q"], "unknown model 'vit_q'"),
    (["batch", "{tmp}/missing.tif", "--out", "{tmp}/b", "--format", "tif"], "missing.tif"),
    (["batch", "{stack}", "--out", "{tmp}/b", "--format", "tif", "--model", "vit_q"],
     "unknown model 'vit_q'"),
    (["batch", "{stack}", "--out", "{tmp}/b", "--format", "tif", "--steps", "embed,segment"],
     "unknown step segment"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("args")
    tifffile.imwrite(tmp / "stack.tif", np.zeros((3, 32, 32), np.uint8))
    seeds = np.zeros((32, 32), np.uint16)
    seeds[8:16, 8:16] = 1
    tifffile.imwrite(tmp / "seeds.tif", seeds)
    data = write_pairs(tmp / "bundle", 2, shape=(64, 64), prefix="p")
    return {"tmp": str(tmp), "stack": str(tmp / "stack.tif"), "seeds": str(tmp / "seeds.tif"),
            "data": str(data)}


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(c[0][:2]) + f" #{i}"
                                                      for i, c in enumerate(CASES)])
def test_argument_errors_come_before_torch(files, argv, message, tmp_path):
    argv = [a.format(**files) for a in argv]
    run = subprocess.run([sys.executable, "-c", RUN, *argv], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    err = run.stderr.strip()
    assert run.returncode != 0 and message in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert run.stdout.strip() == "no torch", (argv, err)
