"""Liveness on the Live page: the badge next to the verdict, the policy controls and the challenge prompt
drawn over the video. Thin views of ``faceapp.app.live.LiveModel`` (``liveness_of``, ``set_liveness``,
``restart_challenge``); the checks themselves run on the live thread (``faceapp.services.live_liveness``).
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from faceapp.gui import theme as themes
from faceapp.services.live_liveness import LIVENESS_MODES

BADGE = {                           # state -> (text, role)
    "live": ("● LIVE", "status-good"),
    "attack suspected": ("▲ ATTACK SUSPECTED", "status-bad"),
    "not checked": ("○ LIVENESS NOT CHECKED", "status-warn"),
}
MODE_TIPS = {
    "off": "No liveness check",
    "passive": "The MiniFASNet pair on the face (a printed photo or a screen scores low)",
    "challenge": "The person follows random prompts (blink, smile, turn the head) within a time limit",
    "both": "The passive models and the challenge: live only when both pass",
}


class LivenessBadge(QLabel):
    """"● LIVE" / "▲ ATTACK SUSPECTED" / "○ LIVENESS NOT CHECKED" beside the verdict; hidden when liveness is off.
    The tooltip gives the reason, the scores with their threshold and the challenge's progress."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.state = ""
        self.setVisible(False)

    def show_state(self, state: str, tooltip: str = "") -> None:
        """Show ``state`` ("" hides the badge); only what changed is set (called on every frame)."""
        if state != self.state:
            self.state = state
            text, role = BADGE.get(state, ("", ""))
            self.setText(text)
            self.setProperty("role", role)
            themes.repolish(self)
            self.setVisible(bool(state))
        if tooltip != self.toolTip():
            self.setToolTip(tooltip)


class LivenessControls(QWidget):
    """The liveness policy, "require liveness before MATCH" and "New challenge"; ``changed(mode, require)``."""

    changed = Signal(str, bool)
    restart = Signal()

    def __init__(self, mode: str = "off", require: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)                 # no group-box frame: the answer panel fits 1024x640 unscrolled
        layout.setContentsMargins(0, 2, 0, 0)
        layout.setSpacing(2)
        row = QHBoxLayout()
        row.addWidget(QLabel("Liveness"))
        self.mode_box = QComboBox()
        for index, name in enumerate(LIVENESS_MODES):
            self.mode_box.addItem(name, name)
            self.mode_box.setItemData(index, MODE_TIPS[name], Qt.ItemDataRole.ToolTipRole)
        self.mode_box.setCurrentIndex(LIVENESS_MODES.index(mode))
        self.mode_box.setToolTip("Which liveness checks run on the main face")
        self.new_challenge = QPushButton("New challenge")
        self.new_challenge.setToolTip("Start a fresh challenge (new random prompts) for the person in view")
        row.addWidget(self.mode_box, 1)
        row.addWidget(self.new_challenge)
        layout.addLayout(row)
        self.require_box = QCheckBox("Require liveness before MATCH")
        self.require_box.setToolTip("A MATCH (or a name) of a face that is not live reads \"LIVENESS REQUIRED\" "
                                    "and is audited as not a match")
        self.require_box.setChecked(require)
        layout.addWidget(self.require_box)
        self.mode_box.currentIndexChanged.connect(self._emit)
        self.require_box.toggled.connect(self._emit)
        self.new_challenge.clicked.connect(self.restart)
        self._update_enabled()

    @property
    def mode(self) -> str:
        return str(self.mode_box.currentData())

    def _emit(self, *_: object) -> None:
        self._update_enabled()
        self.changed.emit(self.mode, self.require_box.isChecked())

    def _update_enabled(self) -> None:
        self.new_challenge.setEnabled(self.mode in ("challenge", "both"))


class ChallengePrompt(QLabel):
    """The challenge's instruction ("Blink (1/3, 11 s)") over the bottom of a video view; hidden when empty."""

    def __init__(self, video: QWidget) -> None:
        super().__init__(video)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setStyleSheet("QLabel { color: white; background: rgba(0, 0, 0, 170); border-radius: 6px; "
                           "padding: 6px 14px; font-size: 18pt; font-weight: bold; }")
        self.setVisible(False)
        self._follower = _ResizeFollower(video, self._place)

    def show_prompt(self, text: str) -> None:
        if text != self.text():
            self.setText(text)
            self.adjustSize()
            self._place()
        self.setVisible(bool(text))

    def _place(self) -> None:
        parent = self.parentWidget()
        if parent is None:
            return
        width = min(self.sizeHint().width(), max(parent.width() - 20, 50))
        self.resize(width, self.sizeHint().height())
        self.move((parent.width() - width) // 2, parent.height() - self.height() - 16)


class _ResizeFollower(QObject):
    """Calls ``callback`` when ``watched`` is resized (keeps an overlay placed)."""

    def __init__(self, watched: QWidget, callback: Callable[[], None]) -> None:
        super().__init__(watched)
        self._callback = callback
        watched.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.Resize:
            self._callback()
        return False
