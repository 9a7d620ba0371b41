"""``manifest.json``: what a batch did, per input file and step, written atomically.

``{"format": ..., "settings": {...}, "files": {input: {"stem", "size", "mtime", "planes",
"steps": {step: {"state", "seconds", "error", "output"}}}}}``. States: ``pending``,
``done``, ``failed``, ``skipped`` (an earlier step of the file failed). A rerun with the same
settings skips every step that is ``done`` for an unchanged input whose output still exists.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from napari_devosam.utils.atomic import write_text

FORMAT = "devosam-batch-v1"
NAME = "manifest.json"


class Manifest:
    """The manifest of the output folder ``out_dir``, for one batch's ``settings``."""

    def __init__(self, out_dir: str | os.PathLike, settings: dict):
        self.path = Path(out_dir) / NAME
        self.settings = dict(settings)
        self.files: dict[str, dict] = {}
        self._lock = threading.Lock()
        old = self._read()
        if old and old.get("format") == FORMAT and old.get("settings") == self.settings:
            self.files = old.get("files", {})

    def _read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def entry(self, path: Path, stem: str) -> dict:
        """The record of input ``path``, reset when the file changed since it was made."""
        st = path.stat()
        key = str(path)
        old = self.files.get(key)
        if not old or old.get("size") != st.st_size or old.get("mtime") != st.st_mtime \
                or old.get("stem") != stem:
            old = {"stem": stem, "size": st.st_size, "mtime": st.st_mtime, "planes": None,
                   "steps": {}}
            self.files[key] = old
        return old

    def is_done(self, path: Path, step: str, out_dir: Path) -> bool:
        rec = self.files.get(str(path), {}).get("steps", {}).get(step, {})
        if rec.get("state") != "done":
            return False
        return all((out_dir / name).exists() for name in rec.get("outputs", []))

    def set(self, path: Path, step: str, state: str, **info) -> None:
        with self._lock:
            rec = self.files[str(path)]["steps"].setdefault(step, {})
            rec.clear()
            rec["state"] = state
            rec.update({k: v for k, v in info.items() if v is not None and k != "planes"})
            if info.get("planes") is not None:
                self.files[str(path)]["planes"] = info["planes"]

    def save(self) -> None:
        with self._lock:
            text = json.dumps({"format": FORMAT, "settings": self.settings,
                               "files": self.files}, indent=1, sort_keys=True)
        write_text(self.path, text + "\n")
