"""The image files named on the command line, read through ``io.read`` with messages in the
user's terms: a folder, or a glob naming several files, given to a command that reads one
image says so and points to the commands that take many (issue 25)."""

from __future__ import annotations

import os
import shlex

import numpy as np


def read_image_arg(path: str | os.PathLike, command: str, flag: str | None = None) -> np.ndarray:
    """``io.read.read_image(path)`` for ``devosam COMMAND``; ``flag`` names the option that
    gave ``path`` (``None``: the image argument itself).

    Raises what ``read_image`` raises, the message led by ``flag`` when one is given (a
    missing ``--seed-labels`` file read as a missing image); a folder or a glob gives a
    ``ValueError`` naming
    ``devosam annotate FOLDER`` and ``devosam batch`` (for the image) or saying that the
    option takes one file.
    """
    from napari_devosam.io.find import glob_matches
    from napari_devosam.io.read import FolderGivenError, read_image

    try:
        return read_image(path)
    except FolderGivenError as exc:
        raise ValueError(one_file_message(str(exc), str(path), command, flag)) from None
    except FileNotFoundError as exc:
        files = glob_matches(str(path))
        if not files:
            if flag is None:
                raise
            raise FileNotFoundError(f"{flag}: {exc}") from None
        what = f"{path} names {len(files)} image file{'s' if len(files) > 1 else ''}"
        raise ValueError(one_file_message(what, str(path), command, flag)) from None
    except (ValueError, OSError) as exc:  # unreadable: which option's file (trial 16)
        if flag is None:
            raise
        raise ValueError(f"{flag}: {exc}") from None


def one_file_message(what: str, path: str, command: str, flag: str | None) -> str:
    """One sentence: ``what`` went wrong, and what to give ``devosam COMMAND`` instead."""
    if flag is not None:
        return f"{what}; {flag} takes one label image file"
    arg = shlex.quote(path)  # a glob stays one argument when pasted into a shell
    return (f"{what}; devosam {command} reads one image file: to annotate many images one "
            f"after the other run `devosam annotate {arg}`, to segment them all run "
            f"`devosam batch {arg} --out OUT_FOLDER`")


def plane_arg(text: str, image: np.ndarray, flag: str = "--plane") -> tuple[int, ...]:
    """``engine.stacks.parse_plane_index(text, image)`` for an option (``flag``), with an
    index outside the image said in its planes: ``"the image has 61 planes (0-60);
    --plane 99 is outside"`` (``ValueError``), or per axis for a ``T:Z`` index."""
    from napari_devosam.engine.stacks import leading_shape, parse_plane_index, plane_count
    from napari_devosam.utils.text import count

    lead = leading_shape(image)
    try:
        parts = [int(p) for p in str(text).replace(" ", "").replace(",", ":").split(":")
                 if p != ""]
    except ValueError:
        parts = []  # malformed: parse_plane_index says how to write it
    total = plane_count(image)
    if len(parts) == 1 and not -total <= parts[0] < total:
        raise ValueError(f"the image has {count(total, 'plane')} ({_span(total)}); "
                         f"{flag} {text} is outside")
    if len(parts) == len(lead) > 1 and any(not -n <= i < n
                                           for i, n in zip(parts, lead, strict=True)):
        spans = ", ".join(_span(n) for n in lead)
        raise ValueError(f"the image has {' x '.join(str(n) for n in lead)} planes "
                         f"({spans} per axis); {flag} {text} is outside")
    return parse_plane_index(text, image)


def _span(n: int) -> str:
    """The indices of ``n`` planes: ``"0-60"``, ``"0"``."""
    return "0" if n == 1 else f"0-{n - 1}"
