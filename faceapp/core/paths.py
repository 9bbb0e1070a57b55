"""Where FaceApp keeps per-user state, each location overridable by an environment variable.

| what | variable | default |
|---|---|---|
| MediaPipe assets | FACEAPP_MODEL_DIR | <data>/mediapipe |
| user data (db, models, settings) | FACEAPP_DATA_DIR | platformdirs user data dir |
| caches (alignment cache) | FACEAPP_CACHE_DIR | platformdirs user cache dir |
| gallery key files (0600, folder 0700) | FACEAPP_KEY_DIR | platformdirs user config dir / keys |
| database URL | FACEAPP_DB | sqlite:///<data>/faceapp.db |
| active embedding model folder | FACEAPP_EMBED_MODEL | <shipped models>/default, else untrained |
| datasets (tests, benchmarks) | FACEAPP_DATASETS | <repo>/../shared/datasets |
| pretrained weights / teachers | FACEAPP_TEACHERS_DIR | <data>/teachers, then <repo>/../shared/teachers |
| liveness (PAD) weights | FACEAPP_PAD_MODEL_DIR | <data>/pad_models, then <repo>/../shared/pad_models |

Command-line options override the variables. Nothing is written inside the installed package.

What the app ships that is not code lives in the repository's top-level ``models/`` (embedding models) and
``resources/`` (icons, desktop entry, stylesheet additions, default settings, about text). A wheel carries
them inside the package as ``faceapp/models`` and ``faceapp/resources`` (the build step in ``setup.py``);
``shipped_dir`` finds them there through ``importlib.resources``, and in the repository (an editable
install or a source checkout) at the top level.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

APP_NAME = "FaceApp"
APP_AUTHOR = "FaceApp"

PACKAGE_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = PACKAGE_DIR.parent
ENV_EMBED_MODEL = "FACEAPP_EMBED_MODEL"       # the active embedding model folder (read by the Embedder and the GUI)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """Per-user data directory (database, trained models, downloaded assets), created on demand."""
    from platformdirs import user_data_dir

    path = _env_path("FACEAPP_DATA_DIR") or Path(user_data_dir(APP_NAME, APP_AUTHOR))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Per-user cache directory (alignment caches), created on demand."""
    from platformdirs import user_cache_dir

    path = _env_path("FACEAPP_CACHE_DIR") or Path(user_cache_dir(APP_NAME, APP_AUTHOR))
    path.mkdir(parents=True, exist_ok=True)
    return path


def key_dir() -> Path:
    """Where gallery key-encryption keys are kept when no OS keyring works: a private folder (0700) in the
    user config directory, created on demand."""
    from platformdirs import user_config_dir

    from faceapp.core.files import private_dir

    return private_dir(_env_path("FACEAPP_KEY_DIR") or Path(user_config_dir(APP_NAME, APP_AUTHOR)) / "keys")


def _asset_dirs(env_name: str, folder: str, *, shared: bool = True) -> list[Path]:
    """Where an asset kind is searched, in order: ``$env_name``, ``<data>/folder``, then (``shared``) the
    ``../shared/folder`` beside the repository."""
    env = _env_path(env_name)
    dirs = ([env] if env is not None else []) + [data_dir() / folder]
    return dirs + [REPO_DIR.parent / "shared" / folder] if shared else dirs


def mediapipe_model_dirs() -> list[Path]:
    """Folders searched for MediaPipe assets, in order: $FACEAPP_MODEL_DIR, then <data>/mediapipe."""
    return _asset_dirs("FACEAPP_MODEL_DIR", "mediapipe", shared=False)


@lru_cache(maxsize=None)
def shipped_dir(name: str) -> Path:
    """The shipped folder ``name`` (``"models"`` or ``"resources"``): ``faceapp/<name>`` inside an installed
    wheel, found through ``importlib.resources``; else the repository's top-level ``<name>/``."""
    packaged = files("faceapp") / name
    if packaged.is_dir():
        return Path(str(packaged))            # a package installed as files (wheels are never run zipped here)
    return REPO_DIR / name


def bundled_models_dir() -> Path:
    """The shipped embedding models (``models/default``, ...): inside the installed package, else the
    repository's ``models/``."""
    return shipped_dir("models")


def resources_dir() -> Path:
    """The shipped resources (icons, ``faceapp.desktop``, ``style.qss``, ``default_settings.json``,
    ``about.md``): inside the installed package, else the repository's ``resources/``."""
    return shipped_dir("resources")


def user_models_dir() -> Path:
    """Where trained embedding models are written by default."""
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def datasets_dir() -> Path:
    """Root of the bundled research datasets (tests and benchmarks only)."""
    return _env_path("FACEAPP_DATASETS") or (REPO_DIR.parent / "shared" / "datasets")


def default_database_url() -> str:
    """$FACEAPP_DB, else a SQLite file in the user data directory."""
    url = os.environ.get("FACEAPP_DB", "").strip()
    if url:
        return url
    return f"sqlite:///{data_dir() / 'faceapp.db'}"


def teachers_dirs() -> list[Path]:
    """Folders searched for pretrained starting points and teachers, in order: $FACEAPP_TEACHERS_DIR,
    <data>/teachers, then the shared folder beside the repository (``../shared/teachers``)."""
    return _asset_dirs("FACEAPP_TEACHERS_DIR", "teachers")


def pad_models_dirs(option: Path | None = None) -> list[Path]:
    """Folders searched for the liveness (presentation-attack detection) weights, in order: ``option`` (the
    CLI's ``--pad-model-dir``), $FACEAPP_PAD_MODEL_DIR, <data>/pad_models, then ``../shared/pad_models``."""
    return ([Path(option).expanduser()] if option is not None else []) + _asset_dirs("FACEAPP_PAD_MODEL_DIR",
                                                                                       "pad_models")
