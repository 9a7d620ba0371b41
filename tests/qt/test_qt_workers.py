"""``_qt.workers.create_job``: the activity dock's bar follows what a job's events say.

Run under a display: ``xvfb-run -a python -m pytest tests/qt/test_qt_workers.py``.
"""

from types import SimpleNamespace

import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

TIMEOUT = 10_000


def _run(qtbot, gen_func, total):
    from napari_devosam._qt.workers import create_job

    worker = create_job(gen_func, progress={"total": total, "desc": "test"})
    bar = worker.pbar
    with qtbot.waitSignal(worker.finished, timeout=TIMEOUT):
        worker.start()
    return bar


def test_a_job_that_first_yields_none_done_ends_full_not_busy(qtbot, qapp):
    def job():  # as iter_segment_stack: "0 of 3" first, then one per plane
        for done in range(4):
            yield done, 3

    bar = _run(qtbot, job, 3)
    assert (bar.n, bar.total) == (3, 3)


def test_events_with_done_and_total_set_the_bar(qtbot, qapp):
    def job():  # as tracking's Progress: a total that grows
        yield SimpleNamespace(done=1, total=4)
        yield SimpleNamespace(done=5, total=6)

    bar = _run(qtbot, job, 4)
    assert (bar.n, bar.total) == (5, 6)


def test_other_events_count_one_step_each(qtbot, qapp):
    def job():
        yield "a"
        yield "b"

    bar = _run(qtbot, job, 3)
    assert (bar.n, bar.total) == (2, 3)
