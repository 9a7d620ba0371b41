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


def test_a_job_ending_after_its_widget_was_deleted_raises_nothing(qtbot, qapp):
    """Trial 17: the viewer closed mid-propagation; the job's end wrote to the panel's
    deleted label (``RuntimeError: wrapped C/C++ object ... has been deleted``, a traceback).
    Slots are skipped once their widget is gone; slots of live widgets still run, with the
    signal's arguments they take (as Qt drops the others)."""
    from qtpy.QtWidgets import QLabel

    from napari_devosam._qt.workers import create_job

    def job():
        yield 1
        return "done"

    gone, live, seen = QLabel(), QLabel(), []
    worker = create_job(job)
    worker.finished.connect(lambda: gone.setText("cancelled"))
    worker.returned.connect(lambda value: live.setText(value))
    worker.yielded.connect(lambda: seen.append("no argument taken"))
    gone.deleteLater()
    qapp.processEvents()
    qapp.sendPostedEvents(None, 0)
    with qtbot.waitSignal(worker.finished, timeout=TIMEOUT):
        worker.start()
    qapp.processEvents()
    assert live.text() == "done" and seen == ["no argument taken"]


def test_other_runtime_errors_of_a_slot_are_not_hidden():
    from napari_devosam._qt.workers import when_alive

    def broken():
        raise RuntimeError("CUDA out of memory")

    with pytest.raises(RuntimeError, match="CUDA"):
        when_alive(broken)()
