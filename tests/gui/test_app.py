"""``python main.py`` / ``faceapp-gui``: the real entry point starts, shows the window and quits cleanly."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from faceapp.gui.app import build_parser, main
from faceapp.gui.main_window import MainWindow


def test_main_runs_the_event_loop_and_returns_when_the_window_closes(qapp, db_copy, mediapipe_models):
    seen: list[MainWindow] = []

    def close_when_loaded() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if windows and not windows[0].ctx.loading and windows[0].ctx.store is not None:
            seen.append(windows[0])
            windows[0].close()
        else:
            QTimer.singleShot(100, close_when_loaded)

    QTimer.singleShot(100, close_when_loaded)
    code = main(["--db", str(db_copy), "--mediapipe-dir", str(mediapipe_models), "--page", "identities"])
    assert code == 0 and seen and seen[0].current_page.key == "identities"


def test_options_are_documented_in_help():
    text = build_parser().format_help()
    for option in ("--db", "--model", "--mediapipe-dir", "--theme", "--source", "--page", "--db-timeout"):
        assert option in text
