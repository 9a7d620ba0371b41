"""Messages: counts with plurals, plain numbers (no numpy repr), planes named by axis."""

import numpy as np
import pytest

from napari_devosam.engine.coords import clip_box
from napari_devosam.utils.text import count, number, numbers, plane_name


def test_counts_and_numbers():
    assert count(1, "plane") == "1 plane" and count(3, "plane") == "3 planes"
    assert count(np.int64(1), "object") == "1 object"
    assert number(np.float64(10.0)) == "10" and number(np.float32(0.5)) == "0.5"
    assert numbers(np.array([1.0, 2.5])) == "(1, 2.5)"


def test_planes_are_named_by_axis():
    assert plane_name(()) == "the plane"
    assert plane_name((3,)) == "plane 3"
    assert plane_name((np.int64(1), 3)) == "T=1, Z=3"
    assert plane_name((2,), axes="Z") == "Z=2"


def test_user_errors_show_numbers_as_typed():
    """The kind: numpy scalars in a message read like np.float64(10.0)."""
    with pytest.raises(ValueError) as err:
        clip_box(np.array([10.0, 20.0, 5.0, 30.0]), (64, 64))
    assert "np." not in str(err.value) and "(10, 20, 5, 30)" in str(err.value)
