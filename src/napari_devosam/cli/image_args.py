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

    Raises what ``read_image`` raises; a folder or a glob gives a ``ValueError`` naming
    ``devosam annotate FOLDER`` and ``devosam batch`` (for the image) or saying that the
    option takes one file.
    """
    from napari_devosam.io.find import glob_matches
    from napari_devosam.io.read import FolderGivenError, read_image

    try:
        return read_image(path)
    except FolderGivenError as exc:
        raise ValueError(one_file_message(str(exc), str(path), command, flag)) from None
    except FileNotFoundError:
        files = glob_matches(str(path))
        if not files:
            raise
        what = f"{path} names {len(files)} image file{'s' if len(files) > 1 else ''}"
        raise ValueError(one_file_message(what, str(path), command, flag)) from None


def one_file_message(what: str, path: str, command: str, flag: str | None) -> str:
    """One sentence: ``what`` went wrong, and what to give ``devosam COMMAND`` instead."""
    if flag is not None:
        return f"{what}; {flag} takes one label image file"
    arg = shlex.quote(path)  # a glob stays one argument when pasted into a shell
    return (f"{what}; devosam {command} reads one image file: to annotate many images one "
            f"after the other run `devosam annotate {arg}`, to segment them all run "
            f"`devosam batch {arg} --out OUT_FOLDER`")
