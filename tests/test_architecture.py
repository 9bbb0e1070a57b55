"""The layering of README "Architecture", checked on the source: a module imports only from its own layer or
the layers below (the domain packages in a stated order: data below training); only faceapp.gui imports Qt;
the store, the metrics, the data package and the base layer never import torch themselves; the operator's
Thresholds tab and ``faceapp eval`` do not need the trainer; the GUI's views reach storage, training and nn
only through the application layer (faceapp.app), except the pages listed in GUI_EXCEPTIONS that have not
moved to a page model yet; scripts/ use the GUI only through its entry points."""

from __future__ import annotations

import ast
from pathlib import Path

import faceapp

PACKAGE = Path(faceapp.__file__).parent
LAYER = {
    "core": 0,
    "nn": 1,
    # the domain, in order: a package imports packages of its own rank or below
    "capture": 2, "vision": 2, "embedding": 2, "matching": 2, "storage": 2, "evaluation": 2,
    "data": 3,              # datasets, alignment cache, packs, pair protocols embedded and scored
    "liveness": 3,          # presentation-attack detection: PAD nets on face boxes, the active challenge
    "training": 4,          # the trainer
    "services": 5,
    "app": 6,               # the Workstation session and the page models
    "bench": 7, "cli": 7, "gui": 7,
}
GUI_FORBIDDEN = {"storage", "training", "nn"}     # the GUI gets these through faceapp.app
# Pages not yet moved to a page model in faceapp.app, and what they still import directly ("gui/pages/x.py":
# {"training"}, with a comment naming the page). Remove a line when its page moves; the rule only shrinks.
# Empty since the Trainer page moved to faceapp.app.trainer.
GUI_EXCEPTIONS: dict[str, set[str]] = {}
SCRIPTS = PACKAGE.parent / "scripts"
# What scripts may import of faceapp.gui: the package (its PySide6 fix), the window's entry point and the
# settings file location (the screenshot scripts point it at a throw-away file).
SCRIPT_GUI_ENTRY_POINTS = {"faceapp.gui", "faceapp.gui.app", "faceapp.gui.settings"}
QT = {"PySide6", "qdarkstyle", "pyqtgraph", "qtpy", "shiboken6"}
# faceapp.data embeds through faceapp.embedding's Embedder (torch) but imports no torch itself; the net being
# trained as an embedding function (torch) is faceapp.training.embed
NO_TORCH = {"core", "capture", "matching", "storage", "evaluation", "data"}
# what the operator's Thresholds tab and ``faceapp eval`` run (module, or module and handler function): none of
# it may reach faceapp.training, even through the modules it imports
NO_TRAINER = [("faceapp.services.thresholds", None), ("faceapp.gui.pages.thresholds", None),
              ("faceapp.cli.commands.training", "_eval")]


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
            if (package == "gui" and top[0] == "faceapp" and len(top) > 1 and top[1] in GUI_FORBIDDEN
                    and top[1] not in GUI_EXCEPTIONS.get("/".join(parts) + ".py", set())):
                found.append(where + " (the GUI reaches storage/training/nn through faceapp.app)")
    return found


def _script_violations(scripts_dir: Path = SCRIPTS) -> list[str]:
    found = []
    for path in sorted(scripts_dir.rglob("*.py")):
        for name in _imports(path):
            top = name.split(".")
            where = f"{path.relative_to(scripts_dir.parent)} imports {name}"
            if top[0] == "faceapp" and len(top) > 1:
                if top[1] not in LAYER:
                    found.append(where + " (no such faceapp package)")
                elif top[1] == "gui" and name not in SCRIPT_GUI_ENTRY_POINTS:
                    found.append(where + " (a faceapp.gui internal: use faceapp.gui.app)")
    return found


def test_layers_are_respected():
    assert _violations() == []


def test_scripts_use_only_public_gui_entry_points():
    assert _script_violations() == []


def test_gui_exceptions_are_still_needed():
    """An exception whose page no longer imports the package must be removed (the rule only shrinks)."""
    stale = []
    for module, allowed in GUI_EXCEPTIONS.items():
        used = {n.split(".")[1] for n in _imports(PACKAGE / module) if n.startswith("faceapp.")}
        stale += [f"{module}: {name}" for name in allowed - used]
    assert stale == []


def test_the_checker_sees_a_violation(tmp_path):
    """The rule can fail: a storage module importing torch and the GUI is reported."""
    fake = tmp_path / "faceapp"
    (fake / "storage").mkdir(parents=True)
    (fake / "storage" / "bad.py").write_text("import torch\nfrom faceapp.gui import app\n")
    (fake / "gui" / "pages").mkdir(parents=True)
    (fake / "gui" / "pages" / "live.py").write_text("from faceapp.storage import Store\n")
    (fake / "app").mkdir()
    (fake / "app" / "model.py").write_text("from faceapp.gui import context\nfrom PySide6 import QtCore\n")
    found = _violations(fake)
    assert any("torch-free" in f for f in found) and any("higher layer" in f for f in found)
    assert any("through faceapp.app" in f for f in found) and any("app/model.py imports faceapp.gui" in f for f in found)
    assert any("Qt outside" in f for f in found)
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "tool.py").write_text("from faceapp.gui.pages.live import LivePage\nfrom faceapp.gui.app import main\n")
    assert _script_violations(scripts) == ["scripts/tool.py imports faceapp.gui.pages.live (a faceapp.gui internal: "
                                           "use faceapp.gui.app)"]


def _module_file(module: str, package_dir: Path = PACKAGE) -> Path | None:
    """The file of ``faceapp.x.y`` (a package's ``__init__.py``), or None when it is not a module."""
    path = package_dir.joinpath(*module.split(".")[1:])
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _faceapp_imports(tree: ast.AST) -> list[str]:
    """The faceapp modules a syntax tree imports, at any depth (``from faceapp.x import y``: also ``faceapp.x.y``)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return [n for n in names if n.split(".")[0] == "faceapp"]


def _handler_imports(module: str, function: str, package_dir: Path = PACKAGE) -> list[str]:
    """What running ``function`` of ``module`` imports: the module's top-level imports, the imports inside the
    function and inside the module's functions it names (transitively)."""
    tree = ast.parse(_module_file(module, package_dir).read_text(encoding="utf-8"))
    functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    top = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    names = [name for node in top for name in _faceapp_imports(node)]
    todo, seen = [function], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        names.extend(_faceapp_imports(functions[name]))
        todo.extend(n.id for n in ast.walk(functions[name]) if isinstance(n, ast.Name) and n.id in functions)
    return names


def _reached(start: list[str], package_dir: Path = PACKAGE) -> dict[str, str]:
    """Every faceapp module reachable from ``start`` by imports at any depth (parent packages included, as
    Python runs their ``__init__``), each with the module that imported it."""
    found: dict[str, str] = {}
    todo = [(name, "(start)") for name in start]
    while todo:
        name, importer = todo.pop()
        parts = name.split(".")
        for k in range(2, len(parts) + 1):
            module = ".".join(parts[:k])
            file = _module_file(module, package_dir)
            if file is None or module in found:
                continue
            found[module] = importer
            todo.extend((n, module) for n in _faceapp_imports(ast.parse(file.read_text(encoding="utf-8"))))
    return found


def _trainer_paths(module: str, function: str | None, package_dir: Path = PACKAGE) -> list[str]:
    """Import chains from ``module`` (or its handler ``function``) to faceapp.training, one per module reached."""
    start = [module] if function is None else _handler_imports(module, function, package_dir)
    found = _reached(start, package_dir)
    chains = []
    for name in sorted(m for m in found if m == "faceapp.training" or m.startswith("faceapp.training.")):
        chain = [name]
        while found[chain[-1]] != "(start)":
            chain.append(found[chain[-1]])
        chains.append(" <- ".join(chain if function is None else chain + [f"{module}:{function}"]))
    return chains


def test_the_thresholds_tab_and_faceapp_eval_do_not_need_the_trainer():
    for module, function in NO_TRAINER:
        assert _trainer_paths(module, function) == [], f"{module} {function or ''} reaches faceapp.training"


def test_the_trainer_check_sees_a_path():
    """The rule can fail: ``faceapp train`` (the same module as ``faceapp eval``) does reach the trainer."""
    assert any(chain.startswith("faceapp.training") for chain in _trainer_paths("faceapp.cli.commands.training", "_train"))
