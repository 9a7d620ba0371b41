"""Write the parameter tables of the docs from their declarations (``utils.params``).

    python tools/params_table.py          # rewrite the tables in docs/
    python tools/params_table.py --check  # exit 1 and name the stale docs (tests call this)

Each table sits between ``<!-- params: NAME -->`` and ``<!-- /params -->`` in its document.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tables() -> dict[str, tuple[Path, str]]:
    """``{table name: (document, table text)}``."""
    from napari_devosam.finetune.settings import settings_table
    from napari_devosam.tracking.params import params_table

    return {"PropagationParams": (ROOT / "docs" / "tracking.md", params_table()),
            "RunSettings": (ROOT / "docs" / "finetune.md", settings_table())}


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- params: {name} -->\n)(.*?)(<!-- /params -->)", re.S)


def updated(text: str, name: str, table: str) -> str:
    """``text`` with the table ``name`` replaced (``ValueError`` when it has no markers)."""
    pattern = _pattern(name)
    if not pattern.search(text):
        raise ValueError(f"no '<!-- params: {name} -->' ... '<!-- /params -->' markers")
    return pattern.sub(lambda m: m.group(1) + "\n" + table + "\n" + m.group(3), text, count=1)


def stale() -> list[str]:
    """The tables whose document does not hold the declaration's current table."""
    out = []
    for name, (doc, table) in tables().items():
        text = doc.read_text(encoding="utf-8")
        if updated(text, name, table) != text:
            out.append(f"{doc.relative_to(ROOT)} ({name})")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say which tables are stale")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale()
        for entry in bad:
            print(f"stale parameter table: {entry}; run python tools/params_table.py")
        return 1 if bad else 0
    for name, (doc, table) in tables().items():
        text = doc.read_text(encoding="utf-8")
        new = updated(text, name, table)
        if new != text:
            doc.write_text(new, encoding="utf-8")
            print(f"wrote {doc.relative_to(ROOT)} ({name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
