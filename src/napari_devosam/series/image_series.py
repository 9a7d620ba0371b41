"""An image series: image files annotated one after the other, with a "done" mark each.

A series is opened from a folder (its images, sorted by name, not recursive), a glob or a list
of files (``io.find.find_inputs`` reads them, as ``devosam batch`` does). Each image keeps
its own annotation store (``annotation.store_location``); the series only adds the order, the
position and the marks. These live in ``devosam_series.json`` in the series' folder (the one
folder given, else the deepest folder holding every file), with paths relative to it so the
folder can be moved. When that folder cannot be written, the file goes to the user data folder
(``<store root>/series/<digest of the folder path>.json``) and ``note`` says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from napari_devosam.utils.atomic import write_text

SERIES_FILE = "devosam_series.json"
FORMAT = 1


class ImageSeries:
    """The files of a series, the current position and the done marks (saved at each change).

    Arguments:
      paths: the image files, in order (at least one).
      folder: the series' folder (default: the deepest folder holding every file).

    ``index`` is 0-based. Raises ``ValueError`` for an empty list.
    """

    def __init__(self, paths, folder: str | os.PathLike | None = None):
        self.paths = [Path(p).expanduser().resolve() for p in paths]
        if not self.paths:
            raise ValueError("an image series needs at least one image")
        parents = [str(p.parent) for p in self.paths]
        self.folder = Path(folder).expanduser().resolve() if folder else \
            Path(os.path.commonpath(parents))
        self.marks_path, self.note = _marks_location(self.folder)
        self.index = 0
        self._done: dict[str, str] = {}
        self._load()

    @classmethod
    def open(cls, inputs: list[str]) -> ImageSeries:
        """The series of ``inputs`` (folders, globs, files; see ``io.find.find_inputs``),
        at the position saved last time. Raises ``ValueError`` (one sentence) when they name
        no image."""
        from napari_devosam.io.find import find_inputs
        from napari_devosam.io.read import IMAGE_SUFFIXES

        inputs = [str(i) for i in inputs]
        files = find_inputs(inputs)
        others = [f for f in files if f.suffix.lower() not in IMAGE_SUFFIXES]
        if others:  # named one by one: folders and globs only ever give images
            raise ValueError(f"{others[0]} is not an image file (looked for "
                             f"{', '.join(IMAGE_SUFFIXES)})")
        folder = inputs[0] if len(inputs) == 1 and Path(inputs[0]).expanduser().is_dir() \
            else None
        return cls(files, folder)

    # --- position --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def path(self) -> Path:
        return self.paths[self.index]

    def go(self, index: int) -> Path:
        """Move to image ``index`` (clipped to the series) and save the position."""
        self.index = min(max(int(index), 0), len(self.paths) - 1)
        self._save()
        return self.path

    def next(self) -> Path | None:
        """Move to the next image; None (no move) at the end."""
        return None if self.index + 1 >= len(self) else self.go(self.index + 1)

    def previous(self) -> Path | None:
        """Move to the previous image; None (no move) at the start."""
        return None if self.index == 0 else self.go(self.index - 1)

    def next_undone(self) -> Path | None:
        """Move to the first image after this one (wrapping) not marked done; None if all are."""
        for step in range(1, len(self) + 1):
            i = (self.index + step) % len(self)
            if not self.is_done(i):
                return self.go(i)
        return None

    def upcoming(self, n: int) -> list[Path]:
        """The ``n`` images after the current one (fewer at the end): what to prefetch."""
        return self.paths[self.index + 1 : self.index + 1 + max(0, int(n))]

    # --- marks -----------------------------------------------------------------------------

    def is_done(self, index: int | None = None) -> bool:
        return self._key(self.index if index is None else index) in self._done

    def set_done(self, done: bool = True, index: int | None = None) -> None:
        """Mark image ``index`` (default: the current one) done or not; saved at once."""
        key = self._key(self.index if index is None else index)
        if done:
            self._done[key] = time.strftime("%Y-%m-%dT%H:%M:%S")
        else:
            self._done.pop(key, None)
        self._save()

    @property
    def done_count(self) -> int:
        return sum(self.is_done(i) for i in range(len(self)))

    # --- file ------------------------------------------------------------------------------

    def _key(self, index: int) -> str:
        path = self.paths[index]
        try:
            return path.relative_to(self.folder).as_posix()
        except ValueError:
            return str(path)

    def _load(self) -> None:
        source = self.marks_path
        if not source.is_file():  # moved to the data folder: start from the folder's own
            source = self.folder / SERIES_FILE
        try:
            saved = json.loads(source.read_text())
            done = {str(k): str(v) for k, v in dict(saved.get("done", {})).items()}
            current = saved.get("current")
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            kept = _set_aside(source)
            self.note = f"the series file {source} could not be read ({exc}); starting with " \
                "no image marked done" + (f" (the damaged file is kept as {kept})" if kept else "")
            return
        self._done = done
        keys = [self._key(i) for i in range(len(self))]
        if current in keys:
            self.index = keys.index(current)

    def _save(self) -> None:
        data = {"format": FORMAT, "current": self._key(self.index),
                "images": [self._key(i) for i in range(len(self))], "done": self._done}
        self.marks_path.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.marks_path, json.dumps(data, indent=1))


def _marks_location(folder: Path) -> tuple[Path, str | None]:
    """Where the series file of ``folder`` goes, and a note when it is not in the folder."""
    from napari_devosam.annotation.store_location import default_store_root, is_writable

    own = folder / SERIES_FILE
    if is_writable(folder):
        return own, None
    digest = hashlib.blake2b(str(folder).encode(), digest_size=8).hexdigest()
    other = default_store_root() / "series" / f"{digest}.json"
    return other, (f"the series folder {folder} is not writable: the done marks are kept in "
                   f"{other}")


def _set_aside(path: Path) -> Path | None:
    """Rename a damaged series file so that the next save does not destroy it."""
    target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.replace(path, target)
    except OSError:
        return None
    return target
