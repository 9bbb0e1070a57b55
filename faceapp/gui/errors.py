"""Showing failures to the operator: a message banner inside the window and non-blocking dialogs.

Every failure the user can cause or meet (no camera, unplugged camera, corrupt file, no face, locked
database, missing model) arrives here as an exception; ``describe_error`` turns it into a title and a
plain sentence, and the window shows it without stopping anything else. Bugs (exceptions that are not
``FaceAppError``) say so and keep their traceback in the dialog's details.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMessageBox, QPushButton, QToolButton, QVBoxLayout, QWidget

from faceapp.app.errors import describe_error, is_user_error  # noqa: F401 - re-exported for the pages
from faceapp.gui.theme import repolish

LEVELS = ("info", "warning", "error")


class MessageBanner(QFrame):
    """One dismissable message strip (info / warning / error) with an optional action button."""

    closed = Signal()
    action_triggered = Signal()

    def __init__(self, text: str, level: str = "info", *, action: str | None = None,
                 timeout_ms: int | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if level not in LEVELS:
            raise ValueError(f"banner level must be one of {LEVELS}, not {level!r}")
        self.level = level
        self.dismissed = False
        self.setProperty("role", f"banner-{level}")
        self.setObjectName(f"banner_{level}")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        icon = {"info": "i", "warning": "!", "error": "x"}[level]
        badge = QLabel(icon)
        badge.setProperty("role", "heading")
        badge.setFixedWidth(14)
        badge.setObjectName("banner_badge")
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.label.setObjectName("banner_text")
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(badge)
        layout.addWidget(self.label, 1)
        if action:
            button = QPushButton(action)
            button.setToolTip(action)
            button.clicked.connect(self.action_triggered)
            layout.addWidget(button)
        close = QToolButton()
        close.setText("×")
        close.setToolTip("Dismiss (Esc)")
        close.setAutoRaise(True)
        close.clicked.connect(self.dismiss)
        layout.addWidget(close)
        repolish(self)
        if timeout_ms:
            QTimer.singleShot(timeout_ms, self, self.dismiss)

    @property
    def text(self) -> str:
        return self.label.text()

    def dismiss(self) -> None:
        """Remove the banner."""
        if self.dismissed:
            return
        self.dismissed = True
        self.hide()
        self.closed.emit()
        self.deleteLater()


class BannerArea(QWidget):
    """The banners at the top of the window, compact: only the newest one shows, the others wait behind a
    "N more" button that expands them (so a burst of messages never pushes the pages down); identical
    messages are not repeated."""

    MAX = 4

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(6, 4, 6, 0)
        self._layout.setSpacing(2)
        self._banners: list[MessageBanner] = []
        self.expanded = False
        self.more_button = QToolButton()
        self.more_button.setObjectName("banner_more")
        self.more_button.setAutoRaise(True)
        self.more_button.setToolTip("Show or hide the older messages")
        self.more_button.clicked.connect(self.toggle_expanded)
        self.more_button.hide()
        self._layout.addWidget(self.more_button, 0, Qt.AlignmentFlag.AlignRight)

    def show_message(self, text: str, level: str = "info", *, action: str | None = None,
                     timeout_ms: int | None = None) -> MessageBanner:
        """Show ``text`` (replacing an identical visible banner) and return the banner."""
        for banner in list(self._banners):
            if banner.text == text and banner.level == level:
                self._remove(banner)
                banner.dismiss()
        banner = MessageBanner(text, level, action=action, timeout_ms=timeout_ms, parent=self)
        # never capture the banner in a closure connected to its own signal: the closure would hold the
        # last reference to the wrapper while Qt destroys the C++ object (crashes PySide6)
        banner.closed.connect(self._prune)
        self._banners.append(banner)
        self._layout.insertWidget(0, banner)            # newest on top
        while len(self._banners) > self.MAX:
            self._banners[0].dismiss()
        self._arrange()
        return banner

    def _remove(self, banner: MessageBanner) -> None:
        if banner in self._banners:
            self._banners.remove(banner)

    def _prune(self) -> None:
        self._banners = [b for b in self._banners if not b.dismissed]
        self._arrange()

    def toggle_expanded(self) -> None:
        """Show every message, or only the newest."""
        self.expanded = not self.expanded
        self._arrange()

    def _arrange(self) -> None:
        live = [b for b in self._banners if not b.dismissed]
        for index, banner in enumerate(reversed(live)):          # newest first
            banner.setVisible(self.expanded or index == 0)
        hidden = len(live) - 1
        self.more_button.setVisible(hidden > 0)
        if hidden > 0:
            self.more_button.setText("Show fewer ▴" if self.expanded else
                                     f"{hidden} more message{'s' if hidden > 1 else ''} ▾")

    def messages(self, level: str | None = None) -> list[str]:
        """Texts of the banners (shown or waiting behind "N more"; optionally of one level), oldest first."""
        return [b.text for b in self._banners if level is None or b.level == level]

    def dismiss_text(self, text: str) -> None:
        """Dismiss the banners showing ``text`` (a problem that went away, e.g. a camera that now works)."""
        for banner in [b for b in self._banners if b.text == text]:
            banner.dismiss()

    def clear(self) -> None:
        """Dismiss every banner."""
        for banner in list(self._banners):
            banner.dismiss()


def error_dialog(parent: QWidget | None, error: BaseException, context: str = "") -> QMessageBox:
    """A window-modal, non-blocking dialog for ``error`` (opened with ``open()``, never ``exec()``)."""
    title, message = describe_error(error, context)
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning if is_user_error(error) else QMessageBox.Icon.Critical)
    box.setWindowTitle(title)
    box.setText(message)
    details = getattr(error, "__traceback_text__", "")
    if details and not is_user_error(error):
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
