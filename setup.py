"""Build step (everything else is in pyproject.toml): a wheel carries the repository's top-level ``models/``
and ``resources/`` inside the package, as ``faceapp/models`` and ``faceapp/resources``, where
``faceapp.core.paths.shipped_dir`` finds them through ``importlib.resources``.

The top-level folders stay the source of truth (every model folder under ``models/`` is shipped, e.g.
``models/default``). An editable install (``pip install -e .``) copies nothing: the package then finds them
beside itself in the repository.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED = ("models", "resources")        # top-level folder -> faceapp/<folder> in the wheel


def shipped_files(folder: Path) -> list[Path]:
    """The files under ``folder`` that ship: all but caches and hidden files."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


class BuildPyWithShippedData(build_py):
    """``build_py`` that also copies ``models/`` and ``resources/`` into ``<build_lib>/faceapp/``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in SHIPPED:
            source = HERE / name
            if not source.is_dir():
                raise FileNotFoundError(f"{source} is missing: the wheel must ship it")
            shutil.rmtree(Path(self.build_lib) / "faceapp" / name, ignore_errors=True)   # nothing stale
            for path in shipped_files(source):
                target = Path(self.build_lib) / "faceapp" / name / path.relative_to(source)
                self.mkpath(str(target.parent))
                self.copy_file(str(path), str(target))


setup(cmdclass={"build_py": BuildPyWithShippedData})
