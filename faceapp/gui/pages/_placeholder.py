"""A page standing in for a tab that a later release fills (Trainer, Thresholds, Embeddings)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from faceapp.gui.pages import Page


class PlaceholderPage(Page):
    """Says what the tab will do and how to do it meanwhile."""

    def __init__(self, ctx, title: str, what: str, parent: QWidget | None = None) -> None:  # noqa: ANN001
        super().__init__(ctx, parent)
        layout = QVBoxLayout(self)
        heading = QLabel(title)
        heading.setProperty("role", "heading")
        heading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        body = QLabel(f"{what}.\nThis page is not part of this build yet; the `faceapp` command line offers the "
                      f"same work meanwhile (see `faceapp --help`).")
        body.setProperty("role", "muted")
        body.setWordWrap(True)
        body.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addStretch(1)
        layout.addWidget(heading)
        layout.addWidget(body)
        layout.addStretch(2)
