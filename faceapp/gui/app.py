"""Start the Qt workstation (``python main.py`` / ``faceapp-gui``)."""

from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Create the application and the main window; return Qt's exit code."""
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QTabWidget

    import qdarkstyle

    app = QApplication.instance() or QApplication(list(argv) if argv is not None else sys.argv)
    app.setApplicationName("FaceApp")
    app.setStyleSheet(qdarkstyle.load_stylesheet(qt_api="pyside6"))
    window = QMainWindow()
    window.setWindowTitle("FaceApp")
    tabs = QTabWidget()
    for name in ("Live", "Enroll", "Identities", "Trainer", "Thresholds", "Embeddings"):
        tabs.addTab(QLabel(f"{name}: coming soon"), name)
    window.setCentralWidget(tabs)
    window.resize(1200, 800)
    window.show()
    return int(app.exec())
