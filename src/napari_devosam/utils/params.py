"""Parameters declared once: a dataclass field made with ``param`` carries its kind, range,
section, whether it is advanced, and its help text. Validation (``check``), reading a dict or
a JSON file (``from_mapping``), the command line (``add_arguments`` / ``given``), the Qt forms
(``_qt/param_editors.py``) and the docs tables (``markdown_table``) all read that declaration,
so a new parameter is one ``param(...)`` line in its dataclass.
"""

from __future__ import annotations

import argparse
import math
import numbers
from dataclasses import MISSING, Field, dataclass, field, fields

import numpy as np

KINDS = (bool, int, float, str)


@dataclass(frozen=True)
class Spec:
    """What one parameter is (``field.metadata["param"]``).

    kind: ``bool``, ``int``, ``float`` or ``str`` (``int`` values are whole numbers, ``float``
      values finite numbers; a ``float`` field takes whole numbers too).
    help: one or more sentences for tooltips, ``--help`` and the docs table.
    section: the group it belongs to (a key of the owner's ``SECTIONS``).
    low, high: the valid range, both ends included (None: open on that side).
    above, below: values must be greater (less) than this: an open end (a learning rate > 0).
    optional: None is a valid value ("no such limit"); ``none_text`` says what None means.
    choices: the valid values of a ``str`` field.
    advanced: shown under "Advanced" in the forms.
    step, edit_max, decimals: the form's step, largest value where ``high`` is None, and
      decimals (a float field with ``decimals`` 0 is typed as text: e.g. ``1e-3``).
    needs: a ``bool`` field this one matters only while it is on (the form greys it out).
    label: how messages and forms name it (default: the field's name).
    why: said after a range error.
    """

    kind: type
    help: str
    section: str = ""
    low: float | None = None
    high: float | None = None
    above: float | None = None
    below: float | None = None
    optional: bool = False
    none_text: str = "none"
    choices: tuple[str, ...] | None = None
    advanced: bool = False
    step: float | None = None
    edit_max: float | None = None
    decimals: int = 2
    needs: str | None = None
    label: str | None = None
    why: str = ""


def param(default, help: str, *, kind: type | None = None, **spec) -> Field:
    """A dataclass field with its ``Spec`` (keyword arguments: ``Spec``'s fields)."""
    kind = kind or type(default)
    if kind not in KINDS:
        raise TypeError(f"a parameter's kind is one of bool, int, float, str, not {kind}")
    if default is None:
        spec["optional"] = True
    return field(default=default, metadata={"param": Spec(kind=kind, help=help, **spec)})


def specs(cls) -> dict[str, Spec]:
    """``{field name: Spec}`` of a dataclass (class or instance), in declaration order."""
    out = {}
    for f in fields(cls):
        if "param" not in f.metadata:
            raise TypeError(f"{f.name} of {cls.__name__} is not declared with param()")
        out[f.name] = f.metadata["param"]
    return out


def defaults(cls) -> dict:
    """``{field name: default}`` of a dataclass made of ``param`` fields."""
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def _kind_ok(spec: Spec, value) -> tuple[bool, str]:
    if spec.kind is bool:
        return isinstance(value, bool | np.bool_), "True or False"
    if spec.kind is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)
        return ok, "a whole number"
    if spec.kind is float:
        ok = (isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
              and math.isfinite(value))
        return ok, "a finite number"
    if spec.choices is not None:
        return value in spec.choices, "one of " + ", ".join(spec.choices)
    return isinstance(value, str), "text"


def _range_text(spec: Spec) -> str:
    if spec.above is not None:
        return f"> {spec.above:g}"
    if spec.below is not None:
        return f"within [{spec.low or 0:g}, {spec.below:g})"
    if spec.low is not None and spec.high is not None:
        return f"within [{spec.low:g}, {spec.high:g}]"
    if spec.low is not None:
        return f">= {spec.low:g}"
    return f"<= {spec.high:g}" if spec.high is not None else ""


def check_value(name: str, spec: Spec, value) -> None:
    """``ValueError`` naming the parameter when ``value`` is of the wrong kind (NaN and
    infinity are not finite numbers; text is no number) or out of range."""
    label = spec.label or name
    if value is None:
        if not spec.optional:
            raise ValueError(f"{label} must be {_kind_ok(spec, 0)[1]}, got None")
        return
    ok, want = _kind_ok(spec, value)
    if not ok:
        none = " (or None)" if spec.optional else ""
        raise ValueError(f"{label} must be {want}{none}, got {value!r}")
    if spec.kind in (bool, str):
        return
    bad = ((spec.above is not None and not value > spec.above)
           or (spec.low is not None and value < spec.low)
           or (spec.high is not None and value > spec.high)
           or (spec.below is not None and not value < spec.below))
    if bad:
        why = f": {spec.why}" if spec.why else ""
        raise ValueError(f"{label} must be {_range_text(spec)}, got {value}{why}")


def check(obj) -> None:
    """Check every field of a dataclass instance against its declaration."""
    for name, spec in specs(obj).items():
        check_value(name, spec, getattr(obj, name))


def flatten(cls, values: dict, sections=()) -> dict:
    """``values`` with a section's dict (``{"prompts": {...}}``) merged into the top level;
    ``ValueError`` for a name given twice, or one given in a section it is not declared in.
    A section's dict is a section even where a parameter has the section's name (the
    "new_tracks" switch of the "new_tracks" section): no parameter takes a dict."""
    known = specs(cls)
    out: dict = {}
    for key, value in values.items():
        section = key in sections and isinstance(value, dict)
        for name, v in (value.items() if section else [(key, value)]):
            if section and name in known and known[name].section != key:
                raise ValueError(f"{name} belongs to the section {known[name].section}, "
                                 f"not {key}")
            if name in out:
                raise ValueError(f"{name} is given twice")
            out[name] = v
    return out


def from_mapping(cls, values: dict, what: str = "parameter", sections=()):
    """``cls(**values)``; ``ValueError`` for unknown names (listed), or a bad value."""
    if not isinstance(values, dict):
        raise ValueError(f"{what}s must be a mapping of names to values, got "
                         f"{type(values).__name__}")
    values = flatten(cls, values, sections)
    unknown = sorted(set(values) - set(specs(cls)))
    if unknown:
        raise ValueError(f"unknown {what}(s): {', '.join(unknown)}")
    return cls(**values)


# -- command line ---------------------------------------------------------------------------


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _number(kind: type):
    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'a whole number' if kind is int else 'a number'}") from None
    parse.__name__ = kind.__name__
    return parse


def add_arguments(parser, cls, skip=()) -> None:
    """One flag per field (``--min-steps N``; ``--name`` for a ``bool`` off by default,
    ``--no-name`` for one on by default, ``auto|on|off`` for an optional ``bool``, and
    ``--no-name`` too for an optional limit that has a default). Flags not given stay out
    of the namespace: ``given(args, cls)`` returns only those given."""
    default_of = defaults(cls)
    for name, spec in specs(cls).items():
        if name in skip:
            continue
        default, flag, text = default_of.get(name), _flag(name), spec.help
        common = dict(dest=name, default=argparse.SUPPRESS)
        if spec.kind is bool and spec.optional:
            shown = "auto" if default is None else ("on" if default else "off")
            parser.add_argument(flag, choices=("auto", "on", "off"), help=f"{text} "
                                f"(default {shown})", **common)
        elif spec.kind is bool:
            off = "--no-" + flag[2:]
            parser.add_argument(off if default else flag, action="store_const",
                                const=not default, help=text, **common)
        else:
            if spec.choices:
                kw = dict(choices=spec.choices)
            else:
                kw = dict(type=_number(spec.kind), metavar="N" if spec.kind is int else "F")
            shown = (spec.none_text if default is None
                     else f"{default:g}" if isinstance(default, float) else default)
            parser.add_argument(flag, help=f"{text} (default {shown})", **kw, **common)
            if spec.optional and default is not None:
                parser.add_argument("--no-" + flag[2:], action="store_const", const=None,
                                    help=f"no {spec.label or name} limit", **common)


def given(args, cls) -> dict:
    """The fields of ``cls`` whose flags (``add_arguments``) were given, as values."""
    out = {}
    for name, spec in specs(cls).items():
        if name in vars(args):
            value = getattr(args, name)
            if spec.kind is bool and spec.optional and isinstance(value, str):
                value = {"auto": None, "on": True, "off": False}[value]
            out[name] = value
    return out


# -- docs -----------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _range_cell(spec: Spec) -> str:
    if spec.kind is bool:
        text = "on/off"
    elif spec.choices:
        text = ", ".join(f"`{c}`" for c in spec.choices)
    else:
        text = _range_text(spec) or "any"
    return text + (f"; none: {spec.none_text}" if spec.optional else "")


def markdown_table(cls, titles: dict[str, str] | None = None) -> str:
    """The declaration as a Markdown table: section, name, default, range, advanced, help."""
    rows = ["| section | parameter | default | range | advanced | what it does |",
            "| --- | --- | --- | --- | --- | --- |"]
    default_of = defaults(cls)
    for name, spec in specs(cls).items():
        section = (titles or {}).get(spec.section, spec.section)
        default = default_of.get(name)
        default = spec.none_text if default is None else f"`{default}`"
        rows.append(f"| {section} | `{name}` | {default} | {_range_cell(spec)} | "
                    f"{'yes' if spec.advanced else ''} | {_cell(spec.help)} |")
    return "\n".join(rows) + "\n"
