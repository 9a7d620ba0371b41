"""Planes of (T, Z, Y, X) and RGB stacks, and plane indices from user text."""

import numpy as np
import pytest

from napari_devosam.engine.stacks import (
    iter_planes,
    leading_shape,
    parse_plane_index,
    plane_count,
    plane_indices,
    plane_ndim,
)


@pytest.mark.parametrize(
    "shape, lead, ndim",
    [
        ((10, 12), (), 2),
        ((10, 12, 3), (), 3),
        ((10, 12, 4), (), 3),
        ((5, 10, 12), (5,), 2),
        ((2, 5, 10, 12), (2, 5), 2),
        ((2, 10, 12, 3), (2,), 3),
    ],
)
def test_plane_layout(shape, lead, ndim):
    stack = np.zeros(shape)
    assert plane_ndim(stack) == ndim and leading_shape(stack) == lead
    assert plane_count(stack) == int(np.prod(lead)) == len(plane_indices(stack))


def test_iter_planes_in_c_order():
    stack = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    planes = list(iter_planes(stack))
    assert [i for i, _ in planes] == [(t, z) for t in range(2) for z in range(3)]
    for (t, z), plane in planes:
        np.testing.assert_array_equal(plane, stack[t, z])
    assert [i for i, _ in iter_planes(np.zeros((4, 5)))] == [()]


def test_parse_plane_index():
    stack = np.zeros((2, 3, 4, 5))
    assert parse_plane_index("1:2", stack) == (1, 2)
    assert parse_plane_index("1,2", stack) == (1, 2)
    assert parse_plane_index("5", stack) == (1, 2)  # flat, C order
    assert parse_plane_index("-1", stack) == (1, 2)
    assert parse_plane_index(4, stack) == (1, 1)
    assert parse_plane_index("2", np.zeros((3, 4, 5))) == (2,)
    assert parse_plane_index("0", np.zeros((4, 5))) == ()


@pytest.mark.parametrize(
    "text, message",
    [("6", "does not exist"), ("x", "bad plane"), ("", "bad plane"), ("2:0", "outside"),
     ("0:3", "outside"), ("1:1:1", "3 number")],
)
def test_bad_plane_index(text, message):
    with pytest.raises(ValueError, match=message):
        parse_plane_index(text, np.zeros((2, 3, 4, 5)))


def test_one_dimensional_input_is_an_error():
    with pytest.raises(ValueError, match="2 dimensions"):
        plane_ndim(np.zeros(5))
