"""The layering of README "Architecture", checked on the source: a module imports only from its own layer or
the layers below; only faceapp.gui imports Qt; the store, the metrics and the base layer never import torch."""

from __future__ import annotations

import ast
from pathlib import Path

import faceapp

PACKAGE = Path(faceapp.__file__).parent
LAYER = {
    "core": 0,
    "nn": 1,
    "capture": 2, "vision": 2, "embedding": 2, "matching": 2, "storage": 2, "evaluation": 2, "data": 2, "training": 2,
    "services": 3,
    "bench": 4, "cli": 4, "gui": 4,
}
QT = {"PySide6", "qdarkstyle", "pyqtgraph", "qtpy", "shiboken6"}
NO_TORCH = {"core", "capture", "matching", "storage", "evaluation"}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _violations(package_dir: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).with_suffix("").parts
        if len(parts) < 2:
            continue            # faceapp/__init__.py, __main__.py
        package = parts[0]
        assert package in LAYER, f"faceapp.{package} has no layer in this test (and in the README): add it"
        for name in _imports(path):
            top = name.split(".")
            where = f"{path.relative_to(package_dir.parent)} imports {name}"
            if top[0] == "faceapp" and len(top) > 1 and top[1] in LAYER:
                if LAYER[top[1]] > LAYER[package] or (package == "cli" and top[1] == "gui"):
                    found.append(where + " (a higher layer)")
            if top[0] in QT and package != "gui":
                found.append(where + " (Qt outside faceapp.gui)")
            if top[0] == "torch" and package in NO_TORCH:
                found.append(where + " (torch in a torch-free layer)")
    return found


def test_layers_are_respected():
    assert _violations() == []


def test_the_checker_sees_a_violation(tmp_path):
    """The rule can fail: a storage module importing torch and the GUI is reported."""
    fake = tmp_path / "faceapp"
    (fake / "storage").mkdir(parents=True)
    (fake / "storage" / "bad.py").write_text("import torch\nfrom faceapp.gui import app\n")
    found = _violations(fake)
    assert any("torch-free" in f for f in found) and any("higher layer" in f for f in found)
