"""Words and numbers in messages: counts with their plural, plain numbers, planes by axis.

numpy 2 writes its scalars as ``np.float64(10.0)`` in ``repr`` (and so inside tuples and
lists), which is not a number a user typed; messages format numbers with these helpers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 plane"``, ``"3 planes"``; ``plural`` for irregular nouns."""
    n = int(n)
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def number(value) -> str:
    """A number as a user would write it: ``10``, ``10.5``, ``1e-05`` (no numpy repr)."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:g}"


def numbers(values: Iterable) -> str:
    """``(10, 20.5, 30, 40)`` for any sequence of numbers (numpy scalars included)."""
    return "(" + ", ".join(number(v) for v in values) + ")"


def plane_name(index: Sequence[int], axes: str | None = None) -> str:
    """A plane named by its axes: ``T=1, Z=3``; ``plane 3`` with one unnamed axis.

    ``axes`` names the leading axes (e.g. "TZ", "Z"); without it two leading axes are read as
    T then Z (the package's convention for stacks) and one axis stays unnamed.
    """
    index = tuple(int(i) for i in index)
    if not index:
        return "the plane"
    names = axes if axes and len(axes) == len(index) else ("TZ" if len(index) == 2 else None)
    if names is None:
        return "plane " + ", ".join(str(i) for i in index)
    return ", ".join(f"{a}={i}" for a, i in zip(names, index, strict=True))
