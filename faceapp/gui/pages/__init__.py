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

Pages can also be added at run time with ``MainWindow.add_page(page, key, title)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from PySide6.QtWidgets import QWidget

from faceapp.core.registry import import_submodules

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

    def model_message(self, level: str, text: str, persistent: bool = False) -> None:
        """What a page model says to the operator (its ``message`` event), shown by the window's banner."""
        self.ctx.notify(text, level, persistent=persistent)

    def confirm(self, title: str, text: str, accept: str = "Yes") -> bool:
        """Ask before something that cannot be undone (a modal warning; Cancel is the default button).
        ``accept`` names the accepting standard button ("Yes", "Save", ...)."""
        from PySide6.QtWidgets import QMessageBox

        yes = getattr(QMessageBox.StandardButton, accept)
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, yes | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == yes

    def activated(self) -> None:
        """Called when the page becomes the visible one (start previews, refresh lists)."""

    def deactivated(self) -> None:
        """Called when another page is shown (pause work the operator cannot see)."""

    def shutdown(self) -> None:
        """Called once when the window closes: stop threads, release cameras. Must not block long."""


class PendingPage(Page):
    """Stands in the page stack for a lazy page until it is first shown; says why if building it failed."""

    def __init__(self, ctx: "AppContext", spec: "PageSpec", parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        from PySide6.QtCore import Qt
        from PySide6.QtWidgets import QLabel, QVBoxLayout

        self.spec = spec
        self.label = QLabel(f"Opening {spec.title}...")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setProperty("role", "muted")
        self.label.setWordWrap(True)
        QVBoxLayout(self).addWidget(self.label)


@dataclass(frozen=True)
class PageSpec:
    """How a registered page is built and where it goes in the side bar."""

    key: str
    title: str
    factory: Callable[["AppContext"], Page]
    order: int = 100
    tooltip: str = ""
    lazy: bool = False          # built when first shown (the analyst pages), not with the window


_PAGES: dict[str, PageSpec] = {}


def register_page(key: str, title: str, *, order: int = 100, tooltip: str = "",
                  lazy: bool = False) -> Callable[[type[Page]], type[Page]]:
    """Class decorator adding a ``Page`` subclass to the side bar under ``key``; a ``lazy`` page is built
    when first shown (or first asked for with ``MainWindow.page``), which keeps start-up short."""

    def decorate(cls: type[Page]) -> type[Page]:
        name = key.lower()
        if name in _PAGES and _PAGES[name].factory is not cls:
            raise ValueError(f"page {name!r} is registered twice ({_PAGES[name].factory!r} and {cls!r})")
        cls.key = name
        cls.title = title
        _PAGES[name] = PageSpec(name, title, cls, order, tooltip or (cls.__doc__ or "").strip().split("\n")[0], lazy)
        return cls

    return decorate


def discover_pages() -> None:
    """Import every module of this package so their ``@register_page`` decorators run.

    A page module that fails to import is logged and skipped: one broken tab must not stop the app.
    """
    def skip(name: str, _error: Exception) -> None:     # called while the import error is handled
        log.exception("page module %s could not be imported", name)

    import_submodules(__name__, on_error=skip)


def registered_pages() -> list[PageSpec]:
    """Registered pages in side-bar order."""
    return sorted(_PAGES.values(), key=lambda spec: (spec.order, spec.key))
