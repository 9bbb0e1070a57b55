"""A wheel is a working install: built from this working tree, installed (not editable) into a fresh venv,
its ``faceapp compare`` runs from a folder outside the repository on two real photos with the trained model
shipped inside the package, and the resources are there too.

Nothing is downloaded: the wheel is built without build isolation, and the fresh venv reuses this venv's
dependencies through a ``.pth`` file (so no torch is installed again) while faceapp itself comes from the
wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IGNORED = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                                 ".pytest_cache", "runs", ".cache", "out", ".gpu", "*.whl")


def _copy_working_tree(target: Path) -> Path:
    """The files git would see (tracked and new, not ignored) copied to ``target``: the build never writes
    into the repository, and a build folder left there cannot slip stale files into the wheel."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True)
    if listed.returncode != 0:          # not a git checkout: copy the tree minus what .gitignore names
        shutil.copytree(REPO, target, ignore=IGNORED)
        return target
    for name in filter(None, listed.stdout.split("\0")):
        source = REPO / name
        if source.is_file():            # a tracked file deleted in the working tree is not built
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _run(args: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed ({result.returncode}):\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with faceapp installed from a freshly built wheel; returns the venv folder."""
    root = tmp_path_factory.mktemp("packaging")
    source = _copy_working_tree(root / "src")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", root / "dist", source])
    wheel, = (root / "dist").glob("faceapp-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "_faceapp_test_dependencies.pth").write_text("\n".join(ours) + "\n")
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel])
    return venv


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FACEAPP_EMBED_MODEL", "PYTHONHOME")}
    env.update(FACEAPP_DATA_DIR=str(tmp / "data"), FACEAPP_CACHE_DIR=str(tmp / "cache"))
    return env          # FACEAPP_MODEL_DIR (MediaPipe) and FACEAPP_DATASETS stay: absolute, from conftest


def test_the_installed_wheel_compares_two_photos_with_the_shipped_trained_model(
        installed_venv: Path, cfp: Path, tmp_path: Path) -> None:
    bindir = installed_venv / ("Scripts" if os.name == "nt" else "bin")
    elsewhere = tmp_path / "elsewhere"            # not the repository: nothing can be found through the cwd
    elsewhere.mkdir()
    images = cfp / "Data" / "Images" / "001" / "frontal"
    result = _run([bindir / "faceapp", "compare", images / "01.jpg", images / "02.jpg", "--json"],
                  cwd=elsewhere, env=_env(tmp_path))
    data = json.loads(result.stdout)
    package = Path(_run([bindir / "python", "-c", "import faceapp, os; print(os.path.dirname(faceapp.__file__))"],
                        cwd=elsewhere, env=_env(tmp_path)).stdout.strip())
    assert package.is_relative_to(installed_venv) and not package.is_relative_to(REPO)
    assert data["trained"] is True and "UNTRAINED" not in result.stderr, result.stderr
    assert Path(data["model_folder"]) == package / "models" / "default"
    shipped_name = json.loads((REPO / "models" / "default" / "config.json").read_text())["name"]
    assert data["model_id"].split("@")[0] == shipped_name
    assert data["fallback"] is False and -1.0 <= data["similarity"] <= 1.0


def test_the_installed_wheel_ships_every_model_folder_and_the_resources(installed_venv: Path, tmp_path: Path) -> None:
    python = installed_venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    out = _run([python, "-c", "from faceapp.core.paths import bundled_models_dir, resources_dir; "
                "print(bundled_models_dir()); print(resources_dir())"], cwd=tmp_path, env=_env(tmp_path))
    models, resources = (Path(line) for line in out.stdout.split())
    assert models.is_relative_to(installed_venv) and resources.is_relative_to(installed_venv)
    in_repo = {p.parent.name for p in (REPO / "models").glob("*/config.json")}
    assert in_repo and {p.parent.name for p in models.glob("*/config.json")} == in_repo
    for name in ("faceapp.desktop", "style.qss", "about.md", "default_settings.json",
                 *(f"icons/faceapp-{size}.png" for size in (16, 32, 48, 64, 128, 256))):
        assert (resources / name).is_file(), f"{name} is not in the installed package"
        assert (resources / name).read_bytes() == (REPO / "resources" / name).read_bytes()
