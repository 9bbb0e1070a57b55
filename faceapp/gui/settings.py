"""Remembered GUI state (window geometry, theme, last source, page, splitter sizes) in an INI file, over
the shipped defaults of ``resources/default_settings.json``.

The file lives in the FaceApp data directory (``$FACEAPP_DATA_DIR/gui.ini``), not in the platform's
registry, so tests and portable installs stay isolated and the file can be inspected or deleted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from faceapp.core.paths import ENV_EMBED_MODEL, data_dir


def settings_path() -> Path:
    """Where the GUI's settings are kept."""
    return data_dir() / "gui.ini"


def app_settings() -> QSettings:
    """A QSettings bound to ``settings_path()`` (cheap: create one wherever needed)."""
    return QSettings(str(settings_path()), QSettings.Format.IniFormat)


def read_setting(key: str, default: Any, kind: type | None = None) -> Any:
    """Read ``key``, converted to ``kind`` (default: the type of ``default``). A key gui.ini does not hold
    yet takes the shipped default (``resources/default_settings.json``), else ``default``; ``default`` on
    bad values."""
    from faceapp.gui.resources import default_settings

    kind = kind or (type(default) if default is not None else None)
    default = default_settings().get(key, default)
    value = app_settings().value(key, default)
    if value is None or kind is None:
        return value
    try:
        if kind is bool and isinstance(value, str):
            return value.lower() in ("1", "true", "yes", "on")
        if kind is list and not isinstance(value, list):
            return [value]
        return kind(value)
    except (TypeError, ValueError):
        return default


def write_setting(key: str, value: Any) -> None:
    """Store ``key`` = ``value`` and flush to disk."""
    settings = app_settings()
    settings.setValue(key, value)
    settings.sync()


ACTIVE_MODEL_SETTING = "model/active"


def remember_active_model(folder: Path) -> None:
    """Remember the model the operator activated, so the next start uses it (``--model`` still wins)."""
    write_setting(ACTIVE_MODEL_SETTING, str(Path(folder).resolve()))


def remembered_model(explicit: Path | None) -> tuple[Path | None, str | None]:
    """The model folder to start with and, when the remembered one has vanished, its path (then forgotten).

    ``--model`` wins, then $FACEAPP_EMBED_MODEL (resolved by the Embedder), then the model the operator
    activated last time, then the Embedder's default (models/default).
    """
    if explicit is not None or os.environ.get(ENV_EMBED_MODEL, "").strip():
        return explicit, None
    remembered = read_setting(ACTIVE_MODEL_SETTING, "", str)
    if not remembered:
        return None, None
    if (Path(remembered) / "config.json").is_file():
        return Path(remembered), None
    write_setting(ACTIVE_MODEL_SETTING, "")
    return None, remembered
