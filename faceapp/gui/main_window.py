"""The workstation's main window: side bar of pages, message banners, status bar, menus, shortcuts.

Pages come from ``faceapp.gui.pages`` (``@register_page``) or ``add_page``; Ctrl+1..Ctrl+9 switch
between them. Window geometry, the current page and the theme are remembered in ``gui.ini``.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QByteArray, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication, QLabel, QListWidget, QListWidgetItem, QMainWindow, QMessageBox, QSplitter, QStackedWidget,
    QVBoxLayout, QWidget,
)

from faceapp import __version__
from faceapp.gui import theme as themes
from faceapp.gui.context import AppContext
from faceapp.gui.errors import BannerArea, describe_error
from faceapp.gui.pages import Page, PageSpec, PendingPage, discover_pages, registered_pages
from faceapp.gui.resources import about_markdown, app_icon
from faceapp.gui.settings import app_settings, read_setting, write_setting
from faceapp.gui.workers import shutdown_workers

log = logging.getLogger(__name__)

STATUS_FIELDS = ("model", "device", "database", "camera", "fps")
ANALYST_PAGES = ("trainer", "embeddings", "thresholds")    # hidden in operator mode


class MainWindow(QMainWindow):
    """Side bar + page stack + banners + status bar, driven by one ``AppContext``."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle("FaceApp")
        self.setWindowIcon(app_icon())
        self.setMinimumSize(QSize(960, 620))
        self._pages: dict[str, Page] = {}
        self._pending: dict[str, PendingPage] = {}      # lazy pages not built yet
        self._current: str | None = None
        self._closing = False

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        self.banners = BannerArea()
        outer.addWidget(self.banners)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setMinimumWidth(130)
        self.sidebar.setMaximumWidth(220)
        self.sidebar.setToolTip("Pages (Ctrl+1..Ctrl+9); View > Operator mode hides the analyst pages")
        self.sidebar.currentRowChanged.connect(self._row_changed)
        self.stack = QStackedWidget()
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(self.stack)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([150, 1050])
        outer.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        self._status: dict[str, QLabel] = {}
        for key in STATUS_FIELDS:
            label = QLabel("")
            label.setObjectName(f"status_{key}")
            label.setContentsMargins(6, 0, 6, 0)
            self.statusBar().addPermanentWidget(label)
            self._status[key] = label
        self.set_status("fps", "FPS: -")
        self.set_status("camera", "Camera: off")

        self._build_menus()
        ctx.message.connect(self.show_message)
        ctx.retracted.connect(self.banners.dismiss_text)
        ctx.status.connect(self.set_status)
        ctx.services_changed.connect(self._refresh_service_status)
        ctx.loading_changed.connect(self._loading_changed)
        ctx.passphrase_needed.connect(self._passphrase_needed)

        discover_pages()
        for spec in registered_pages():
            if spec.lazy:
                self._pending[spec.key] = self.add_page(PendingPage(ctx, spec), spec.key, spec.title,
                                                        tooltip=spec.tooltip)
                continue
            try:
                page = spec.factory(ctx)
            except Exception as error:  # noqa: BLE001 - a broken page must not stop the window
                log.exception("page %s could not be built", spec.key)
                self.show_message("error", describe_error(error, f"Building the {spec.title} page")[1], True)
                continue
            self.add_page(page, spec.key, spec.title, tooltip=spec.tooltip)
        self._install_page_shortcuts()
        self._restore_state()
        self.set_operator_mode(read_setting("window/operator_mode", False, bool))
        self._refresh_service_status()

    # -- pages ----------------------------------------------------------------------------------
    def add_page(self, page: Page, key: str, title: str, *, tooltip: str = "", position: int | None = None) -> Page:
        """Add ``page`` to the side bar under ``key`` (at ``position`` or last); returns it."""
        key = key.lower()
        if key in self._pages:
            raise ValueError(f"a page {key!r} is already in the window")
        page.key, page.title = key, title
        page.setObjectName(f"page_{key}")
        item = QListWidgetItem(title)
        item.setData(Qt.ItemDataRole.UserRole, key)
        item.setToolTip(tooltip or title)
        item.setSizeHint(QSize(120, 34))
        row = self.sidebar.count() if position is None else max(0, min(position, self.sidebar.count()))
        self.stack.insertWidget(row, page)
        self.sidebar.insertItem(row, item)
        self._pages[key] = page
        return page

    def page(self, key: str) -> Page:
        """The page registered under ``key`` (a lazy page is built now); KeyError listing the keys otherwise."""
        key = key.lower()
        if key in self._pending:
            return self._build_pending(key)
        try:
            return self._pages[key]
        except KeyError:
            raise KeyError(f"no page {key!r}; pages: {', '.join(self.page_keys())}") from None

    def is_built(self, key: str) -> bool:
        """Whether the page ``key`` exists yet (lazy pages are built when first shown)."""
        return key.lower() in self._pages and key.lower() not in self._pending

    def _build_pending(self, key: str) -> Page:
        placeholder = self._pending.pop(key)
        spec: PageSpec = placeholder.spec
        try:
            page = spec.factory(self.ctx)
        except Exception as error:  # noqa: BLE001 - a broken page must not stop the window
            log.exception("page %s could not be built", key)
            text = describe_error(error, f"Building the {spec.title} page")[1]
            placeholder.label.setText(text)
            self.show_message("error", text, True)
            return placeholder
        page.key, page.title = key, spec.title
        page.setObjectName(f"page_{key}")
        current = self.stack.currentWidget() is placeholder
        self.stack.insertWidget(self.stack.indexOf(placeholder), page)
        if current:
            self.stack.setCurrentWidget(page)
        self.stack.removeWidget(placeholder)
        placeholder.deleteLater()
        self._pages[key] = page
        return page

    def page_keys(self) -> list[str]:
        """Keys of the pages in side-bar order."""
        return [self.sidebar.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.sidebar.count())]

    def show_page(self, key: str) -> Page:
        """Make the page ``key`` the visible one."""
        page = self.page(key)
        self.sidebar.setCurrentRow(self.page_keys().index(page.key))
        return page

    @property
    def current_page(self) -> Page | None:
        widget = self.stack.currentWidget()
        return widget if isinstance(widget, Page) else None

    def _row_changed(self, row: int) -> None:
        if row < 0:
            return
        previous = self._pages.get(self._current) if self._current else None
        key = self.sidebar.item(row).data(Qt.ItemDataRole.UserRole)
        page = self.page(key)
        if previous is page:
            return
        if previous is not None:
            previous.deactivated()
        self.stack.setCurrentWidget(page)
        self._current = key
        page.activated()

    def _install_page_shortcuts(self) -> None:
        # slots are bound methods (PySide6 tracks their receiver), never lambdas capturing the window
        for index in range(min(9, self.sidebar.count())):
            shortcut = QShortcut(QKeySequence(f"Ctrl+{index + 1}"), self)
            shortcut.setProperty("row", index)
            shortcut.activated.connect(self._page_shortcut)
            item = self.sidebar.item(index)
            item.setToolTip(f"{item.toolTip()}  (Ctrl+{index + 1})")

    def _page_shortcut(self) -> None:
        shortcut = self.sender()
        if shortcut is not None:
            row = int(shortcut.property("row"))
            if not self.sidebar.item(row).isHidden():
                self.sidebar.setCurrentRow(row)

    # -- operator mode --------------------------------------------------------------------------
    def set_operator_mode(self, on: bool) -> None:
        """Hide (or show again) the analyst pages (Trainer, Embeddings, Thresholds) and remember it."""
        on = bool(on)
        self.operator_mode = on
        for row, key in enumerate(self.page_keys()):
            self.sidebar.item(row).setHidden(on and key in ANALYST_PAGES)
        if on and self._current in ANALYST_PAGES and "live" in self.page_keys():
            self.show_page("live")
        if self.operator_action.isChecked() != on:
            self.operator_action.setChecked(on)
        write_setting("window/operator_mode", on)

    def visible_page_keys(self) -> list[str]:
        """Keys of the pages the side bar shows (operator mode hides the analyst pages)."""
        return [key for row, key in enumerate(self.page_keys()) if not self.sidebar.item(row).isHidden()]

    # -- messages and status --------------------------------------------------------------------
    def show_message(self, level: str, text: str, persistent: bool = False) -> None:
        """Show a banner at the top of the window (``level``: info, warning or error); info fades after
        8 s and warnings after 20 s unless ``persistent``; errors stay until dismissed."""
        timeout = None if persistent or level == "error" else (8000 if level == "info" else 20000)
        self.banners.show_message(text, level, timeout_ms=timeout)
        if level == "error":
            self.statusBar().showMessage(text.split("\n")[0], 8000)

    def _passphrase_needed(self, text: str) -> None:
        banner = self.banners.show_message(text, "error", action="Enter passphrase...")
        banner.action_triggered.connect(self.ask_gallery_passphrase)

    def ask_gallery_passphrase(self) -> None:
        """Ask for the gallery's passphrase (hidden input) and open the gallery again with it."""
        from PySide6.QtWidgets import QInputDialog, QLineEdit

        where = getattr(self.ctx.store, "where", "the gallery")
        text, ok = QInputDialog.getText(self, "Gallery passphrase", f"Passphrase of gallery {where}:",
                                        QLineEdit.EchoMode.Password)
        if ok and text:
            self.banners.dismiss_text(self.ctx.errors.get("gallery", ""))
            self.ctx.use_passphrase(text)

    def set_status(self, key: str, text: str, role: str = "") -> None:
        """Set a permanent status-bar field (model, device, database, camera, fps)."""
        label = self._status.get(key)
        if label is None:
            return
        label.setText(text)
        label.setProperty("role", role)
        themes.repolish(label)

    def status_text(self, key: str) -> str:
        return self._status[key].text()

    def _loading_changed(self, loading: bool) -> None:
        if loading:
            self.banners.clear()     # a reload reports its own problems afresh
            self.set_status("model", "Model: loading...")

    def _refresh_service_status(self) -> None:
        info = self.ctx.describe()
        self.set_status("model", info["model"], info["model_role"])
        self.set_status("device", info["device"])
        self.set_status("database", info["database"], info["database_role"])
        if info.get("search_building"):
            QTimer.singleShot(2000, self._refresh_service_status)     # until the FAISS index is swapped in

    # -- menus ----------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.reload_action = QAction("&Reload model and database", self)
        self.reload_action.setShortcut(QKeySequence("Ctrl+R"))
        self.reload_action.triggered.connect(self.reload_services)
        file_menu.addAction(self.reload_action)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        self.file_menu = file_menu

        view = bar.addMenu("&View")
        group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for name in themes.THEMES:
            action = QAction(f"{name.title()} theme", self, checkable=True)
            action.setData(name)
            group.addAction(action)
            view.addAction(action)
            self.theme_actions[name] = action
        group.triggered.connect(self._theme_chosen)
        toggle = QAction("Toggle theme", self)
        toggle.setShortcut(QKeySequence("Ctrl+Shift+T"))
        toggle.triggered.connect(self.toggle_theme)
        view.addAction(toggle)
        view.addSeparator()
        self.operator_action = QAction("Operator mode (hide analyst pages)", self, checkable=True)
        self.operator_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.operator_action.toggled.connect(self.set_operator_mode)
        view.addAction(self.operator_action)
        full = QAction("Full screen", self, checkable=True)
        full.setShortcut(QKeySequence.StandardKey.FullScreen)
        full.toggled.connect(self._set_full_screen)
        view.addAction(full)
        self.view_menu = view
        self.theme_actions[themes.current_theme().name].setChecked(True)

        help_menu = bar.addMenu("&Help")
        keys = QAction("Keyboard shortcuts", self)
        keys.setShortcut(QKeySequence.StandardKey.HelpContents)
        keys.triggered.connect(self._show_shortcuts)
        help_menu.addAction(keys)
        about = QAction("About FaceApp", self)
        about.triggered.connect(self._show_about)
        help_menu.addAction(about)

    def reload_services(self) -> None:
        """Reload the database, the embedding model and the MediaPipe assets (Ctrl+R)."""
        self.ctx.load()

    def _theme_chosen(self, action: QAction) -> None:
        self.set_theme(str(action.data()))

    def toggle_theme(self) -> None:
        """Switch between dark and light (Ctrl+Shift+T)."""
        self.set_theme("light" if themes.current_theme().name == "dark" else "dark")

    def _set_full_screen(self, on: bool) -> None:
        if on:
            self.showFullScreen()
        else:
            self.showNormal()

    def set_theme(self, name: str) -> None:
        """Switch theme now and remember it."""
        app = QApplication.instance()
        if app is None:
            return
        themes.apply_theme(app, name)
        self.theme_actions[name].setChecked(True)
        write_setting("theme", name)

    def shortcuts(self) -> list[tuple[str, str]]:
        """(keys, what) for every window and page shortcut, for the help dialog."""
        rows = [(f"Ctrl+{i + 1}", f"show {self.sidebar.item(i).text()}") for i in range(min(9, self.sidebar.count()))]
        rows += [("Ctrl+R", "reload model and database"), ("Ctrl+Shift+T", "toggle dark/light theme"),
                 ("Ctrl+Shift+O", "operator mode (hide the analyst pages)"),
                 ("F11", "full screen"), ("Ctrl+Q", "quit"), ("F1", "this list")]
        for page in self._pages.values():
            source = page.spec.factory if isinstance(page, PendingPage) else page
            rows += list(getattr(source, "SHORTCUTS", ()))
        return rows

    def _show_shortcuts(self) -> None:
        text = "\n".join(f"{keys:<16} {what}" for keys, what in self.shortcuts())
        box = QMessageBox(QMessageBox.Icon.Information, "Keyboard shortcuts", text, parent=self)
        box.setStyleSheet("QLabel { font-family: monospace; }")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def about_text(self) -> str:
        """Help > About: ``resources/about.md`` (what FaceApp is; the licences of the code, models, libraries)."""
        return about_markdown(__version__)

    def _show_about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "About FaceApp", self.about_text(), parent=self)
        box.setTextFormat(Qt.TextFormat.MarkdownText)
        box.setIconPixmap(self.windowIcon().pixmap(64, 64))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # -- state ----------------------------------------------------------------------------------
    def _restore_state(self) -> None:
        settings = app_settings()
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(read_setting("window/width", 1280, int), read_setting("window/height", 820, int))
        state = settings.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        splitter = settings.value("window/splitter")
        if isinstance(splitter, QByteArray) and not splitter.isEmpty():
            self.splitter.restoreState(splitter)
        keys = self.page_keys()
        page = str(settings.value("window/page", keys[0] if keys else ""))
        if keys:
            self.sidebar.setCurrentRow(keys.index(page) if page in keys else 0)

    def save_state(self) -> None:
        """Remember geometry, splitter and current page."""
        settings = app_settings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        settings.setValue("window/splitter", self.splitter.saveState())
        if self._current:
            settings.setValue("window/page", self._current)
        settings.sync()

    def shutdown(self) -> None:
        """Stop every page's threads and every worker (idempotent); called on close."""
        if self._closing:
            return
        self._closing = True
        self.save_state()
        for page in self._pages.values():
            if isinstance(page, PendingPage):
                continue
            try:
                page.shutdown()
            except Exception:  # noqa: BLE001 - closing must finish
                log.exception("page %s failed to shut down", page.key)
        shutdown_workers(10.0)      # workers may still use the store: join them before closing it
        self.ctx.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        self.shutdown()
        super().closeEvent(event)
