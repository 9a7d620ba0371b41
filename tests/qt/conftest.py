"""Fixtures shared by the widget tests: a small time-lapse, a tiny random SAM, and the napari
notifications shown during a test."""

import pytest


@pytest.fixture(scope="module")
def stack():
    """A 3 x 96 x 128 uint16 phantom time-lapse of 4 cells."""
    from napari_devosam.synthetic.phantoms import make_timelapse

    return make_timelapse(n_timepoints=3, shape=(96, 128), n_cells=4, seed=3)[0]


@pytest.fixture(scope="module")
def sam():
    """A tiny random SAM (fast enough for widget tests; no quality claims)."""
    from napari_devosam.testing import tiny_sam

    return tiny_sam()


@pytest.fixture
def notes():
    """The napari ``Notification`` objects shown during the test, in order."""
    from napari.utils.notifications import notification_manager

    seen = []
    notification_manager.notification_ready.connect(seen.append)
    yield seen
    notification_manager.notification_ready.disconnect(seen.append)
