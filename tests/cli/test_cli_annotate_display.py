"""`devosam annotate` without a screen says so in one line and exits non-zero (never aborts)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from napari_devosam.cli.annotate import check_display


def _annotate(env_changes: dict, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(env_changes)
    env["DEVOSAM_CACHE_DIR"] = str(tmp_path)
    return subprocess.run([sys.executable, "-m", "napari_devosam", "annotate"],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland rule is Linux's")
@pytest.mark.parametrize("env, says", [
    ({}, "DISPLAY is not set"),
    ({"DISPLAY": ":987"}, "no X server answers at DISPLAY=:987"),
])
def test_annotate_without_a_display_names_xvfb_run_and_exits_1(env, says, tmp_path):
    run = _annotate(env, tmp_path)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 1, run.stderr
    assert len(lines) == 1 and says in lines[0] and "xvfb-run -a devosam annotate" in lines[0]


def test_the_display_rule():
    check_display({"DISPLAY": "remote:0"}, "linux")  # a remote X server: Qt's to judge
    check_display({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    check_display({"QT_QPA_PLATFORM": "vnc"}, "linux")
    check_display({}, "darwin")
    with pytest.raises(RuntimeError, match="DISPLAY is not set"):
        check_display({}, "linux")
