"""The enrolment wizard's liveness requirement: "Require a passed liveness challenge before saving" and the
challenge's prompt / outcome. A thin view of ``EnrollModel.set_require_challenge`` / ``liveness_changed``."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QCheckBox, QLabel, QVBoxLayout, QWidget

from faceapp.gui import theme as themes


class ChallengeRequirement(QWidget):
    """The checkbox and one status line under the camera hint."""

    def __init__(self, model: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.checkbox = QCheckBox("Require a passed liveness challenge before saving")
        self.checkbox.setToolTip("The camera also asks the person to blink, smile and turn the head (random order, "
                                 "time limit); the identity is saved only after they passed. Applies from the "
                                 "next camera start; image files alone cannot pass it.")
        self.checkbox.setChecked(model.require_challenge)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setVisible(False)
        layout.addWidget(self.checkbox)
        layout.addWidget(self.status)
        self.checkbox.toggled.connect(model.set_require_challenge)
        model.liveness_changed.connect(self._changed)

    def _changed(self, text: str, passed: bool) -> None:
        self.status.setText(text)
        role = "status-good" if passed else "status-warn"
        if self.status.property("role") != role:
            self.status.setProperty("role", role)
            themes.repolish(self.status)
        self.status.setVisible(bool(text))
