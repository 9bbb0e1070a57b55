"""What the GUI reads from the shipped ``resources/`` folder (``faceapp.core.paths.resources_dir``: inside the
installed package, else the repository's top level):

| file | used for |
|---|---|
| ``icons/faceapp-<size>.png`` (16-256, drawn by ``scripts/make_icons.py``) | the window and application icon |
| ``style.qss`` | rules added to qdarkstyle's stylesheet (verdicts, banners, status); ``${colour}``: the theme's |
| ``default_settings.json`` | defaults for keys that ``gui.ini`` does not hold yet |
| ``about.md`` | Help > About: what FaceApp is and the licences of the code, the models and the libraries |
| ``faceapp.desktop`` | the desktop entry (not read by the app; see docs/gui.md) |

A missing or unreadable file is logged and replaced by an empty default, so a damaged install still starts.
"""

from __future__ import annotations

import json
import logging
import string
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon

from faceapp.core.paths import resources_dir

log = logging.getLogger(__name__)

ICON_SIZES = (16, 32, 48, 64, 128, 256)


def resource_path(name: str) -> Path:
    """The shipped resource ``name`` (relative to the resources folder)."""
    return resources_dir() / name


@lru_cache(maxsize=None)
def _text(name: str) -> str:
    path = resource_path(name)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        log.warning("resource %s could not be read (%s): using an empty default", path, error)
        return ""


@lru_cache(maxsize=1)
def default_settings() -> dict[str, Any]:
    """``default_settings.json`` as a dict (keys as in gui.ini, ``group/name``; ``_``-keys are comments)."""
    text = _text("default_settings.json")
    try:
        data = json.loads(text) if text else {}
    except json.JSONDecodeError as error:
        log.warning("%s is not valid JSON (%s): built-in defaults are used", resource_path("default_settings.json"),
                    error)
        return {}
    return {k: v for k, v in data.items() if not k.startswith("_")} if isinstance(data, dict) else {}


def style_additions(colours: Mapping[str, str]) -> str:
    """``style.qss`` with its ``${name}`` placeholders replaced by ``colours`` (a theme's fields); an unknown
    placeholder is logged and left as it is (Qt then ignores that one rule)."""
    template = string.Template(_text("style.qss"))
    try:
        return template.substitute(colours)
    except (KeyError, ValueError) as error:
        log.warning("%s: placeholder %s is not a theme colour", resource_path("style.qss"), error)
        return template.safe_substitute(colours)


def about_markdown(version: str) -> str:
    """``about.md`` with ``${version}`` filled in."""
    text = _text("about.md") or "## FaceApp ${version}\n\nFace-verification workstation. Licence: MIT."
    return string.Template(text).safe_substitute(version=version)


@lru_cache(maxsize=1)
def app_icon() -> QIcon:
    """The application icon in every shipped size (a null icon when none is found); read once, shared by the
    application and its windows."""
    icon = QIcon()
    for size in ICON_SIZES:
        path = resource_path(f"icons/faceapp-{size}.png")
        if path.is_file():
            icon.addFile(str(path), QSize(size, size))
    if icon.isNull():
        log.warning("no application icon found in %s", resource_path("icons"))
    return icon
