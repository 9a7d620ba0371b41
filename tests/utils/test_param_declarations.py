"""utils.params: a parameter declared once is validated, parsed from flags, and tabled."""

import argparse
from dataclasses import dataclass

import pytest

from napari_devosam.utils.params import (
    add_arguments,
    from_mapping,
    given,
    markdown_table,
    param,
    specs,
)


@dataclass
class Knobs:
    """A new knob is one ``param`` line: each of these gets validation, a flag and a row."""

    size: int = param(3, "How big.", low=1, section="a")
    share: float = param(0.5, "How much.", low=0.0, below=1.0, section="a")
    rate: float = param(1e-3, "How fast.", above=0.0, section="b", label="the rate")
    cap: int | None = param(None, "At most.", kind=int, low=1, none_text="no cap", section="b")
    tries: int | None = param(4, "Tries.", low=1, optional=True, section="b")
    mode: str = param("x", "Which.", choices=("x", "y"), section="b", advanced=True)
    fast: bool | None = param(None, "Faster.", kind=bool, section="b")
    on: bool = param(True, "Switch.", section="b")

    def __post_init__(self):
        from napari_devosam.utils.params import check

        check(self)


@pytest.mark.parametrize("values, message", [
    ({"size": 0}, "size must be >= 1, got 0"),
    ({"size": 2.0}, "size must be a whole number"),
    ({"share": 1.0}, r"share must be within \[0, 1\), got 1.0"),
    ({"rate": 0.0}, "the rate must be > 0"),
    ({"rate": "fast"}, "the rate must be a finite number"),
    ({"cap": 0}, "cap must be >= 1"),
    ({"tries": 1.5}, r"tries must be a whole number \(or None\)"),
    ({"mode": "z"}, "mode must be one of x, y"),
    ({"fast": "on"}, "fast must be True or False"),
    ({"on": None}, "on must be True or False, got None"),
])
def test_validation_follows_the_declaration(values, message):
    with pytest.raises(ValueError, match=message):
        Knobs(**values)


def test_none_where_declared_optional():
    assert Knobs(cap=None, tries=None, fast=None).tries is None
    with pytest.raises(ValueError, match="unknown knob"):
        from_mapping(Knobs, {"sizes": 2}, "knob")


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser, Knobs)
    return given(parser.parse_args(argv), Knobs)


def test_one_flag_per_field_and_only_given_ones_come_back():
    assert _parse([]) == {}
    assert _parse(["--size", "5", "--share", "0.25", "--rate", "1e-4", "--cap", "9",
                   "--no-tries", "--mode", "y", "--fast", "off", "--no-on"]) == {
        "size": 5, "share": 0.25, "rate": 1e-4, "cap": 9, "tries": None, "mode": "y",
        "fast": False, "on": False}
    assert _parse(["--fast", "auto", "--tries", "2"]) == {"fast": None, "tries": 2}
    with pytest.raises(SystemExit):
        _parse(["--size", "big"])


def test_the_table_has_one_row_per_field():
    table = markdown_table(Knobs, {"a": "First", "b": "Second"})
    rows = table.strip().splitlines()[2:]
    assert [r.split("|")[2].strip() for r in rows] == [f"`{n}`" for n in specs(Knobs)]
    assert "| First | `size` | `3` | >= 1 |" in table
    assert "| Second | `cap` | no cap | >= 1; none: no cap |" in table
    assert "| yes | Which. |" in table
