"""The package layout holds: layers, no import cycles, small modules and functions.

The rules are drawn in docs/architecture.md; this test is what keeps them true.
"""

from __future__ import annotations

import ast
from pathlib import Path

import napari_devosam

PACKAGE = Path(napari_devosam.__file__).parent
GUI_LIBRARIES = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui",
                 "superqt", "vispy")
# Which folder may import which (besides itself, utils and _version); see architecture.md.
ALLOWED = {
    "utils": set(),
    "synthetic": set(),
    "models": set(),
    "engine": {"models"},
    "io": {"engine"},
    "annotation": {"engine"},
    "export": {"io", "annotation", "engine", "models"},
    "finetune": {"export", "io", "annotation", "engine", "models"},
    "automatic": {"engine", "models", "annotation"},
    "tracking": {"automatic", "annotation", "engine", "export", "io", "models"},
    "batch": {"automatic", "tracking", "annotation", "engine", "export", "io", "models"},
    "series": {"io", "annotation", "engine", "models"},
    "cli": {"series", "batch", "tracking", "automatic", "finetune", "export", "annotation",
            "io", "engine", "models", "sample_data", "_qt"},
    "_qt": {"series", "batch", "tracking", "automatic", "finetune", "export", "annotation",
            "io", "engine", "models", "synthetic"},
}
ROOT_MODULES = {"__init__", "__main__", "_version", "sample_data", "writers", "testing"}


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(("napari_devosam", *parts)).removesuffix(".__init__")
        yield name, path, ast.parse(path.read_text(), str(path))


def imported(tree, name, path):
    """Every module name imported anywhere in the file (lazy imports included)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def folder_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ALLOWED) else ""


def test_root_holds_only_the_public_face():
    root = {p.stem for p in PACKAGE.glob("*.py")}
    assert root <= ROOT_MODULES and len(root) <= 10, root - ROOT_MODULES


def test_core_never_imports_gui_libraries():
    for name, path, tree in modules():
        if folder_of(name) in ("_qt", "cli"):
            continue
        bad = {m for m in imported(tree, name, path) if m.split(".")[0] in GUI_LIBRARIES}
        assert not bad, f"{name} imports {sorted(bad)}"


def test_folders_import_only_lower_layers():
    for name, path, tree in modules():
        here = folder_of(name)
        if here not in ALLOWED:
            continue
        allowed = ALLOWED[here] | {here, "utils", "_version", "synthetic"}
        for target in imported(tree, name, path):
            if not target.startswith("napari_devosam."):
                continue
            there = folder_of(target) or target.split(".")[1]
            assert there in allowed or there in ALLOWED.get(here, ()), f"{name} -> {target}"


def test_no_import_cycles():
    names = {}
    graph = {}
    for name, path, tree in modules():
        names[name] = path
        graph[name] = set(imported(tree, name, path))
    # A package is always imported before its modules, so "from pkg import module" inside pkg
    # is not a cycle: edges to one's own ancestors are left out.
    graph = {n: {t for t in targets if t in names and not n.startswith(t)}
             for n, targets in graph.items()}
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_modules_and_functions_are_small():
    for name, path, tree in modules():
        lines = len(path.read_text().splitlines())
        assert lines <= 400, f"{name}: {lines} lines"
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= 80, f"{name}.{node.name}: {length} lines"


def test_image_files_are_read_only_in_io():
    """One reader (issue 24): bioio and scikit-image's file reader are imported only by io/."""
    readers = ("bioio", "skimage.io")
    for name, path, tree in modules():
        if folder_of(name) == "io":
            continue
        bad = {m for m in imported(tree, name, path)
               if m in readers or m.startswith("bioio.") or m == "skimage.io.imread"}
        assert not bad, f"{name} imports {sorted(bad)}: read image files with io.read"


def test_only_the_engine_imports_its_fast_kernels():
    """``engine._fast`` is private: the rest of the package decodes through
    ``engine.decoding`` (the decoder door) and never reaches the kernels themselves."""
    private = "napari_devosam.engine._fast"
    for name, path, tree in modules():
        if name == "napari_devosam.engine" or name.startswith("napari_devosam.engine."):
            continue
        bad = {m for m in imported(tree, name, path)
               if m == private or m.startswith(private + ".")}
        assert not bad, f"{name} imports {sorted(bad)}"
