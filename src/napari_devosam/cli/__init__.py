"""The ``devosam`` command line: one module per subcommand, dispatched here.

Each subcommand module defines ``add_parser(subparsers)``, which registers its parser and
sets ``func`` to a callable taking the parsed arguments and returning an exit code. User
errors end as one line on stderr and a non-zero exit; ``DEVOSAM_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from importlib import import_module

from napari_devosam._version import __version__

SUBCOMMANDS = ("annotate", "segment", "embed", "export", "finetune", "eval", "track",
               "import-tracks", "batch")


def model_help() -> str:
    """``--model``'s help: the bundled models from ``models.registry`` (``cli.checks.
    bundled_names``: the recommended one first), then the downloaded ones."""
    from napari_devosam.cli.checks import bundled_names
    from napari_devosam.models.registry import recommended_bundled

    return (f"{bundled_names()}: bundled, offline; vit_b_lm, vit_l_lm (micro-sam, trained on "
            "light microscopy), vit_b, vit_l, vit_h (downloaded on first use); or a "
            "checkpoint path. Default: $DEVOSAM_CHECKPOINT, else the best official checkpoint "
            "already cached (vit_l_lm > vit_b_lm > vit_h > vit_l > vit_b), else the bundled "
            f"{recommended_bundled()}; never a download (see docs/models.md)")


MODEL_HELP = model_help()

PRECISION_HELP = ("image encoder precision: fp32, or bf16 (about 3x faster for vit_b on CPUs with "
                  "AMX/AVX512-BF16 and on recent CUDA cards; masks within IoU 0.98 of fp32's); "
                  "default: $DEVOSAM_PRECISION, else fp32")

USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, PermissionError, OSError,
               RuntimeError, KeyError)


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """``--precision`` for a subcommand that runs the image encoder."""
    parser.add_argument("--precision", default="auto", type=str.lower,
                        choices=("auto", "fp32", "bf16"), help=PRECISION_HELP)


def chosen_model(args) -> str:
    """``args.model``, or the default model rule's choice (``models.defaults``) when it is
    None: then said on one stderr line (``devosam CMD: model: NAME (why)``) and stored in
    ``args.model``."""
    from napari_devosam.models.defaults import resolve_model

    value, rule = resolve_model(args.model)
    if rule is not None:
        command = getattr(args, "command", None)
        print(f"devosam{' ' + command if command else ''}: {rule.describe()}", file=sys.stderr)
        args.model = value
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line on stderr (exit 2), like our other errors;
    ``--help`` still prints the whole usage. Subcommand parsers are of this class too."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="devosam",
        description="Segment Anything for grayscale embryo microscopy.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module_name = f"{__name__}.{name.replace('-', '_')}"
        try:
            module = import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.add_parser(sub)
    return parser


_prefix = "devosam"  # "devosam COMMAND" once the command is known: warnings name it too


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Python warnings as one line each, like our errors and our own warnings (``devosam
    COMMAND: warning: ...``; no source file, no code line)."""
    return f"{_prefix}: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    import warnings

    global _prefix
    previous, warnings.formatwarning = warnings.formatwarning, _format_warning
    try:
        return _main(argv)
    finally:
        warnings.formatwarning = previous
        _prefix = "devosam"


#: A value made of numbers, the first one negative: ``-50,-50,600,600``, ``-1:2``.
_NEGATIVE_VALUES = re.compile(r"^-\d[\d.]*(\s*[,:]\s*-?\d[\d.]*)+$")


def join_negative_values(argv: list[str]) -> list[str]:
    """``["--box", "-50,-50,600,600"]`` -> ``["--box=-50,-50,600,600"]``: argparse takes a
    value that starts with ``-`` and is not one number for an option (then "expected one
    argument"); a list of numbers after an option is that option's value."""
    out: list[str] = []
    for token in argv:
        prev = out[-1] if out else ""
        if (_NEGATIVE_VALUES.match(token) and prev.startswith("-") and "=" not in prev
                and not _NEGATIVE_VALUES.match(prev) and prev != "--"):
            out[-1] = f"{prev}={token}"
        else:
            out.append(token)
    return out


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(join_negative_values(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    global _prefix
    _prefix = f"devosam {args.command}"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("devosam: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if os.environ.get("DEVOSAM_DEBUG"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"devosam {args.command}: error: {message}", file=sys.stderr)
        return 1
