"""Answers to the GUI's confirmation dialogs, for tests that go through them."""

from __future__ import annotations


def save_live_thresholds(page) -> None:  # noqa: ANN001 - the Live page
    """Press the Live page's Save and confirm it in the dialog that shows old and new values."""
    from PySide6.QtWidgets import QMessageBox

    page.save_thresholds()
    page.save_dialog.button(QMessageBox.StandardButton.Save).click()
