"""The docs and the docstrings name only files and modules that exist (issue 24: they drifted).

Checked: ``docs/*.md``, ``README.md``, ``benchmarks/README.md``, ``tools/README.md`` and every
docstring under ``src/``. Three kinds of name are resolved:

- file paths ending in ``.py`` or ``.md`` (``src/napari_devosam/engine/coords.py``,
  ``engine/decoding.py``, ``tests/io/test_read.py``, ``../benchmarks/bench_real.py``, a bare
  ``coords.py``), against the text's own folder, the repository root, ``src/``,
  ``src/napari_devosam/``, or as the tail of a repository path (``divisions/split.py``);
  a bare file name must be the name of some repository file. Folders written with a slash
  inside (``engine/_fast/``) are checked the same way;
- dotted module names: ``napari_devosam.x.y[.name]``, and short forms in backticks that start
  with one of the package's folders (``tracking.records.TrackResult``,
  ``utils.progress.drain``): the longest prefix must be a module, and the next part a name
  bound in it (a submodule, a top-level def/class/assignment/import, or a string of its lazy
  ``__getattr__`` table);
- module names that moved away (the old column of docs/changelog.md's moved-modules tables,
  when no module has that name now): ``decoder_io.save_decoder`` is reported;
- ``from napari_devosam... import a, b`` lines in the docs' code samples.

Not checked: URLs, user files in examples (``labels.tif``, ``params.json``: other extensions),
files of other projects (``segment_anything/...``), and in docs/changelog.md the old paths
(first column) of the moved-modules table.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "napari_devosam"
DOCUMENTS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md",
             ROOT / "benchmarks" / "README.md", ROOT / "tools" / "README.md"]
TREES = ("src", "tests", "docs", "benchmarks", "tools")
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", "build", "dist"}
# paths of other projects, and scripts the user writes in an example
EXTERNAL = ("segment_anything/", "micro_sam/", "devolearn/", "site-packages/")
USER_FILES = {"start_cluster.py"}
# ``series.json`` or ``export.md`` start like our folders but are files
FILE_EXTENSIONS = {"md", "py", "json", "csv", "tif", "tiff", "txt", "zarr", "yaml", "yml",
                   "toml", "png", "jpg", "npz", "npy", "pt", "pth", "safetensors", "czi", "nd2",
                   "lif", "geff", "zip", "log", "html"}

URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+")
FILE_PATH = re.compile(r"(?<![\w./~$-])((?:\.{1,2}/)*(?:[\w.-]+/)*[\w-]+\.(?:py|md))(?![\w/-])")
FOLDER_PATH = re.compile(r"`((?:\.{1,2}/)*[\w.-]+/(?:[\w.-]+/)+)`")
FULL_DOTTED = re.compile(r"(?<![\w.])napari_devosam(?:\.[A-Za-z_]\w*)*")
BACKTICKED = re.compile(r"`+([^`\n]+?)`+")
IMPORT_LINE = re.compile(r"^\s*from\s+(napari_devosam[\w.]*)\s+import\s+\(?([\w\s,]+)\)?\s*$",
                         re.MULTILINE)


@cache
def repository() -> tuple[frozenset[str], frozenset[str]]:
    """The repository's files and folders, as posix paths relative to its root."""
    files, folders = set(), set()
    for top in TREES:
        for path in (ROOT / top).rglob("*"):
            rel = path.relative_to(ROOT)
            if SKIPPED_DIRS & set(rel.parts) or any(p.startswith(".") for p in rel.parts):
                continue
            (folders if path.is_dir() else files).add(rel.as_posix())
    files |= {p.name for p in ROOT.iterdir() if p.is_file()}
    folders |= set(TREES)
    return frozenset(files), frozenset(folders)


@cache
def package_folders() -> frozenset[str]:
    return frozenset(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())


def path_exists(name: str, base: Path, folder: bool = False) -> bool:
    """Whether ``name`` (as written in a text in folder ``base``) is a repository path."""
    files, folders = repository()
    pool = folders if folder else files
    name = name.rstrip("/")
    if "/" not in name:
        return any(PurePosixPath(p).name == name for p in pool)
    if name.startswith("."):  # relative to the text's folder, and nothing else
        target = (base / name).resolve()
        return target.is_dir() if folder else target.is_file()
    for root in (base, ROOT, ROOT / "src", PACKAGE):
        rel = (root / name).resolve()
        if rel.is_relative_to(ROOT) and rel.relative_to(ROOT).as_posix() in pool:
            return True
    return any(p.endswith("/" + name) for p in pool)


@cache
def module_file(dotted: str) -> Path | None:
    parts = dotted.split(".")[1:]
    base = PACKAGE.joinpath(*parts)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


@cache
def bound_names(path: Path) -> frozenset[str]:
    """Names a module binds at its top level; a package's submodules; lazy table strings."""
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    statements = list(tree.body)
    while statements:
        node = statements.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.If | ast.Try | ast.With):
            for field in ("body", "orelse", "finalbody", "handlers"):
                statements.extend(getattr(node, field, []))
        elif isinstance(node, ast.ExceptHandler):
            statements.extend(node.body)
    if "__getattr__" in names:
        names |= {n.value for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    if path.name == "__init__.py":
        names |= {p.stem for p in path.parent.glob("*.py")}
        names |= {p.name for p in path.parent.iterdir() if (p / "__init__.py").is_file()}
    return frozenset(names)


@cache
def moved_away() -> frozenset[str]:
    """Old module names of the changelog's moved-modules tables that no module has now.

    Only names with an underscore count (``decoder_io``, ``_workspace``): a plain word
    (``model``, ``inputs``) is too often a variable in the docs' examples.
    """
    old = set()
    for line in (ROOT / "docs" / "changelog.md").read_text().splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) >= 4:
            old |= {m.group(1).rsplit(".", 1)[-1]
                    for m in re.finditer(r"`(?:napari_devosam\.)?([\w.]+)`", cells[1])}
    current = {p.stem for p in PACKAGE.rglob("*.py")} | {p.name for p in PACKAGE.rglob("*")
                                                         if p.is_dir()}
    return frozenset(n for n in old - current if "_" in n and n == n.lower())


def dotted_problem(dotted: str) -> str | None:
    """None when ``napari_devosam.a.b.c`` is a module or a name bound in one, else why not."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        path = module_file(".".join(parts[:end]))
        if path is None:
            continue
        if end == len(parts) or parts[end] in bound_names(path):
            return None
        return f"{'.'.join(parts[:end])} has no {parts[end]!r}"
    return "no such module"


def dotted_names(text: str) -> set[str]:
    """``napari_devosam.x.y`` names, and short ``folder.module[.name]`` ones in backticks."""
    names = {m.group(0) for m in FULL_DOTTED.finditer(text)}
    for match in BACKTICKED.finditer(text):
        head = re.match(r"[A-Za-z_][\w.]*", match.group(1).strip())
        if head is None:
            continue
        parts = head.group(0).rstrip(".").split(".")
        if len(parts) >= 2 and parts[0] in package_folders() and parts[-1] not in FILE_EXTENSIONS:
            names.add(".".join(["napari_devosam", *parts]))
    return names


def moved_names(text: str) -> set[str]:
    """Names in backticks that start with a module name that moved away."""
    heads = (re.match(r"[A-Za-z_]\w*(?:\.\w+)+", m.group(1).strip())
             for m in BACKTICKED.finditer(text))
    return {h.group(0) for h in heads
            if h and h.group(0).split(".")[0] in moved_away()}


def problems_in(text: str, where: Path) -> list[str]:
    text = URL.sub(" ", text)
    found = []
    for match in FILE_PATH.finditer(text):
        name = match.group(1)
        if name.startswith(EXTERNAL) or name in USER_FILES:
            continue
        if not path_exists(name, where.parent):
            found.append(f"file {name}")
    for match in FOLDER_PATH.finditer(text):
        name = match.group(1)
        if not name.startswith(EXTERNAL) and not path_exists(name, where.parent, folder=True):
            found.append(f"folder {name}")
    for name in sorted(dotted_names(text)):
        if (why := dotted_problem(name)) is not None:
            found.append(f"{name} ({why})")
    found += [f"{name} (module moved: see docs/changelog.md)" for name in sorted(moved_names(text))]
    for module, imported in IMPORT_LINE.findall(text):
        for item in imported.replace("\n", " ").split(","):
            name = item.split(" as ")[0].strip()
            if name and (why := dotted_problem(f"{module}.{name}")) is not None:
                found.append(f"from {module} import {name} ({why})")
    return found


def changelog_text(text: str) -> str:
    """The changelog without the old paths of its moved-modules tables (they are history)."""
    rows = []
    for line in text.splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) >= 4:
            line = "|".join(["", *cells[2:]])
        rows.append(line)
    return "\n".join(rows)


def docstrings(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield getattr(node, "name", "module"), doc


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_documents_name_existing_files_and_modules(document):
    text = document.read_text()
    if document.name == "changelog.md":
        text = changelog_text(text)
    found = problems_in(text, document)
    assert not found, f"{document.relative_to(ROOT)} names what does not exist: {found}"


def test_docstrings_name_existing_files_and_modules():
    found = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        for owner, doc in docstrings(path):
            found += [f"{path.relative_to(ROOT)} ({owner}): {p}" for p in problems_in(doc, path)]
    assert not found, "\n".join(found)


def test_the_checker_finds_stale_names():
    """The checks above can fail: moved files and modules are reported, existing ones not."""
    here = ROOT / "docs" / "x.md"
    stale = ("`engine/window_decoder.py`, `tests/test_finetune_fast_decoding.py`, "
             "`_fast_encoder.py`, `napari_devosam.tracking.model`, `export.image_io.read_image`"
             ", `tracking/nowhere/`, `decoder_io.save_decoder`\n"
             "from napari_devosam.io.read import read_image, read_any\n")
    found = "\n".join(problems_in(stale, here))
    for name in ("engine/window_decoder.py", "tests/test_finetune_fast_decoding.py",
                 "_fast_encoder.py", "napari_devosam.tracking.model", "export.image_io",
                 "tracking/nowhere/", "decoder_io.save_decoder", "read_any"):
        assert name in found, name
    fine = ("`src/napari_devosam/engine/coords.py`, `engine/decoding.py`, `divisions/split.py`, "
            "`coords.py`, `../benchmarks/bench_real.py`, `tests/test_layout.py`, `engine/_fast/`"
            ", `napari_devosam.tracking.records`, `utils.progress.drain`, `ds.segment_all`, "
            "https://example.org/a/b.py, `labels.tif`, `series.json`, `export.md`, "
            "`napari_devosam.Predictor`, `segment_anything/modeling/sam.py`, `store.objects`\n"
            "from napari_devosam.io.read import read_image\n")
    assert problems_in(fine, here) == []


def architecture_rows() -> dict[str, set[str]]:
    """``{folder: the names in backticks of its row}`` of docs/architecture.md's folder table."""
    rows = {}
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        cells = line.split("|")
        folder = re.fullmatch(r"\s*`([\w/]+)/`\s*", cells[1]) if len(cells) >= 4 else None
        if folder:
            rows[folder.group(1)] = {re.match(r"\w*", m.group(1)).group(0)
                                     for m in BACKTICKED.finditer(cells[2])}
    return rows


def test_architecture_names_every_module():
    """Every folder of the package has a row, and every module of it is named in that row."""
    rows = architecture_rows()
    missing = []
    for init in sorted(PACKAGE.rglob("__init__.py")):
        folder = init.parent.relative_to(PACKAGE).as_posix()
        if folder == ".":
            continue
        if folder not in rows:
            missing.append(f"{folder}/ (no row)")
            continue
        missing += [f"{folder}/{p.name}" for p in sorted(init.parent.glob("*.py"))
                    if p.stem != "__init__" and p.stem not in rows[folder]]
    assert not missing, f"docs/architecture.md's folder table does not name: {missing}"
