"""Pages of the main window and the registry that places them in the side bar.

A page is a ``Page`` subclass registered with ``@register_page``; every module in this package is
imported when the main window is built, so adding a tab is one new file:

    # faceapp/gui/pages/trainer.py
    from faceapp.gui.pages import Page, register_page

    @register_page("trainer", "Trainer", order=40, tooltip="Train an embedding network")
    class TrainerPage(Page):
        def __init__(self, ctx, parent=None):
            super().__init__(ctx, parent)
            ...

Keys listed in ``RESERVED`` get a placeholder page until a module registers them. Pages can also be
added at run time with ``MainWindow.add_page(page, key, title)``.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from faceapp.gui.context import AppContext

log = logging.getLogger(__name__)


class Page(QWidget):
    """Base class of a main-window page: gets the shared ``AppContext``, hears when it is shown."""

    key: str = ""
    title: str = ""

    def __init__(self, ctx: "AppContext", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx

    def activated(self) -> None:
        """Called when the page becomes the visible one (start previews, refresh lists)."""

    def deactivated(self) -> None:
        """Called when another page is shown (pause work the operator cannot see)."""

    def shutdown(self) -> None:
        """Called once when the window closes: stop threads, release cameras. Must not block long."""


@dataclass(frozen=True)
class PageSpec:
    """How a registered page is built and where it goes in the side bar."""

    key: str
    title: str
    factory: Callable[["AppContext"], Page]
    order: int = 100
    tooltip: str = ""


_PAGES: dict[str, PageSpec] = {}

# Pages the operator side ships (10-30) and places later issues fill (40-60).
RESERVED: tuple[tuple[str, str, int, str], ...] = (
    ("trainer", "Trainer", 40, "Train an embedding network with the loss zoo"),
    ("thresholds", "Thresholds", 50, "ROC, FAR/FRR and threshold selection per model"),
    ("embeddings", "Embeddings", 60, "Look at the gallery's embedding space"),
)


def register_page(key: str, title: str, *, order: int = 100, tooltip: str = "") -> Callable[[type[Page]], type[Page]]:
    """Class decorator adding a ``Page`` subclass to the side bar under ``key``."""

    def decorate(cls: type[Page]) -> type[Page]:
        name = key.lower()
        if name in _PAGES and _PAGES[name].factory is not cls:
            raise ValueError(f"page {name!r} is registered twice ({_PAGES[name].factory!r} and {cls!r})")
        cls.key = name
        cls.title = title
        _PAGES[name] = PageSpec(name, title, cls, order, tooltip or (cls.__doc__ or "").strip().split("\n")[0])
        return cls

    return decorate


def discover_pages() -> None:
    """Import every module of this package so their ``@register_page`` decorators run.

    A page module that fails to import is logged and skipped: one broken tab must not stop the app.
    """
    for info in pkgutil.iter_modules(__path__):
        try:
            importlib.import_module(f"{__name__}.{info.name}")
        except Exception:  # noqa: BLE001 - keep the workstation usable
            log.exception("page module %s could not be imported", info.name)


def registered_pages() -> list[PageSpec]:
    """Registered pages plus placeholders for reserved keys nobody registered, in side-bar order."""
    specs = dict(_PAGES)
    for key, title, order, tooltip in RESERVED:
        if key not in specs:
            specs[key] = PageSpec(key, title, _placeholder_factory(key, title, tooltip), order, tooltip)
    return sorted(specs.values(), key=lambda spec: (spec.order, spec.key))


def _placeholder_factory(key: str, title: str, tooltip: str) -> Callable[["AppContext"], Page]:
    def build(ctx: "AppContext") -> Page:
        from faceapp.gui.pages._placeholder import PlaceholderPage

        page = PlaceholderPage(ctx, title, tooltip)
        page.key, page.title = key, title
        return page

    return build
