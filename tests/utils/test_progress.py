import pytest

from napari_devosam.utils.progress import drain, drain_with_bar


def _job(n, fail_at=None, log=None):
    try:
        for i in range(1, n + 1):
            if i == fail_at:
                raise ValueError("broken")
            yield i, n
        return "result"
    finally:
        if log is not None:
            log.append("closed")


def test_drain_returns_the_result_and_reports_every_yield():
    seen = []
    assert drain(_job(3), seen.append) == "result"
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_drain_closes_the_generator_on_error():
    log = []
    with pytest.raises(ValueError, match="broken"):
        drain(_job(5, fail_at=3, log=log))
    assert log == ["closed"]


def test_drain_with_bar_draws_on_stderr(capsys):
    assert drain_with_bar(_job(4), desc="working", unit="plane") == "result"
    err = capsys.readouterr().err
    assert "working" in err and "4/4" in err
    assert drain_with_bar(_job(2), desc="quiet", enabled=False) == "result"
    assert "quiet" not in capsys.readouterr().err


def test_bar_rate_counts_the_work_before_the_first_yield(capsys):
    """The kind: a bar opened at the first yield used to report thousands of items/s."""
    import time as _time

    from napari_devosam.utils.progress import drain_with_bar

    def slow_then_fast():
        _time.sleep(0.6)  # the first item's work (an encoder run, say)
        yield 1, 3
        yield 2, 3
        yield 3, 3

    drain_with_bar(slow_then_fast(), desc="work", unit="plane")
    err = capsys.readouterr().err
    assert "plane/s" in err or "s/plane" in err
    rates = [x.split("plane/s")[0].split()[-1] for x in err.split("\r") if "plane/s" in x]
    rates = [float(r.lstrip(",")) for r in rates if r.lstrip(",")[:1].isdigit()]
    assert rates and all(rate < 20 for rate in rates), err
