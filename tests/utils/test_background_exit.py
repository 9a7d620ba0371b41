"""Background threads are stopped and joined at exit: none is inside torch while Python tears
down (that aborts the process: "terminate called without an active exception")."""

import subprocess
import sys

SCRIPT = """
import torch
from napari_devosam.utils.background import niced

def work():
    a = torch.randn(1500, 1500)
    for i in range(1000):
        for _ in range(20):
            a = torch.tanh(a @ a / 1500)
        yield i

gen = niced(work)
next(gen)
print("leaving with the thread inside torch", flush=True)
"""


def test_exit_while_a_background_thread_computes_is_clean():
    for _ in range(3):
        run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0, run.stderr
        assert "terminate called" not in run.stderr
