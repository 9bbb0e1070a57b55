"""Start the Qt workstation (``python main.py`` / ``faceapp-gui``).

    python main.py [--db URL|FILE] [--model FOLDER] [--mediapipe-dir DIR] [--theme dark|light]
                   [--source 0|VIDEO|IMAGE] [--device cpu|cuda|auto] [--page live]

The window opens at once; the database, the embedding model and the MediaPipe assets load on a worker
thread and whatever is missing or broken is reported in the window while the rest keeps working.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from faceapp import __version__


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of the GUI."""
    parser = argparse.ArgumentParser(prog="faceapp-gui", description="FaceApp workstation (Qt GUI).")
    parser.add_argument("--version", action="version", version=f"faceapp {__version__}")
    parser.add_argument("--db", help="database: SQLAlchemy URL or SQLite file (default $FACEAPP_DB or the user data dir)")
    parser.add_argument("--model", type=Path, help="embedding model folder (default $FACEAPP_EMBED_MODEL, else the "
                        "model activated last time, else models/default)")
    parser.add_argument("--mediapipe-dir", type=Path, help="folder with face_landmarker.task (default $FACEAPP_MODEL_DIR)")
    parser.add_argument("--theme", choices=("dark", "light"), help="colour theme (default: the last one used, dark)")
    parser.add_argument("--source", help="live source to open at start: camera index, video file or image file")
    parser.add_argument("--device", default="auto", help="torch device for the embedder: auto, cpu, cuda")
    parser.add_argument("--db-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long to wait for a database locked by another program (default 10)")
    parser.add_argument("--page", help="page to show first (live, enroll, identities, ...)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details on stderr")
    return parser


def create_window(args: argparse.Namespace, *, load: bool | str = True):  # noqa: ANN201 - MainWindow (Qt import lazy)
    """Build the QApplication (if needed), theme, context and main window from parsed options. ``load``:
    start loading the services now (True), not at all (False), or once the window has first painted
    ("after-paint", what ``main`` does: the loader's imports (torch) then do not compete with building and
    painting the window for the interpreter)."""
    from PySide6.QtWidgets import QApplication

    from faceapp.gui import theme as themes
    from faceapp.gui.context import AppContext, AppOptions
    from faceapp.gui.main_window import MainWindow
    from faceapp.gui.settings import read_setting, write_setting

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from faceapp.gui.gc_thread import collect_on_gui_thread

    collect_on_gui_thread(app)          # cycles holding Qt objects must not be freed on a worker thread
    app.setApplicationName("FaceApp")
    app.setOrganizationName("FaceApp")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("faceapp")   # matches resources/faceapp.desktop (Wayland finds the icon through it)
    from faceapp.gui.resources import app_icon

    app.setWindowIcon(app_icon())
    theme = args.theme or read_setting("theme", "dark", str)
    if theme not in themes.THEMES:
        theme = "dark"
    if args.theme:
        write_setting("theme", theme)   # --theme is remembered for the next start, as the View menu's choice is
    themes.apply_theme(app, theme)
    from faceapp.gui.settings import remembered_model

    model, forgotten = remembered_model(args.model)
    options = AppOptions(db=args.db, model=model, mediapipe_dir=args.mediapipe_dir, source=args.source,
                         theme=theme, device=args.device, db_timeout=args.db_timeout)
    ctx = AppContext(options)
    window = MainWindow(ctx)
    if args.page:
        try:
            window.show_page(args.page)
        except KeyError as error:
            window.show_message("warning", str(error).strip("'\""))
    def start() -> None:
        if load:
            ctx.load()                  # (starting a load clears the banners: report after it)
        if forgotten:
            window.show_message("warning", f"The model activated last time ({forgotten}) is no longer there; "
                                           "the default model is used.")
        elif model is not None and args.model is None:      # remembered, not chosen on the command line
            window.show_message("info", f"Using the model activated last time: {model} (--model chooses another; "
                                        "the Live tab warns when its thresholds or templates are missing).",
                                persistent=True)

    if load == "after-paint":
        on_first_paint(window, start)
    else:
        start()
    return window


def on_first_paint(window: Any, callback: Any) -> None:
    """Call ``callback()`` once, right after ``window`` first paints (then the next event-loop turn)."""
    from PySide6.QtCore import QEvent, QObject, QTimer

    class FirstPaint(QObject):
        def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802 - Qt API
            if event.type() == QEvent.Type.Paint:
                watched.removeEventFilter(self)
                QTimer.singleShot(0, callback)
            return False

    watcher = FirstPaint(window)            # parented: lives as long as the window
    window.installEventFilter(watcher)


ENV_STARTUP_TIMING = "FACEAPP_STARTUP_TIMING"   # "1": print the time to first paint; "exit": and quit then
IMPORTED_AT = time.perf_counter()


def report_first_paint(window: Any, quit_after: bool = False) -> None:
    """Print "faceapp: first paint after X s" (since this module was imported) when ``window`` first paints;
    ``scripts/startup_time.py`` runs ``python main.py`` with it to measure the time to first paint."""
    from PySide6.QtWidgets import QApplication

    def report() -> None:
        print(f"faceapp: first paint after {time.perf_counter() - IMPORTED_AT:.3f} s", flush=True)
        watch = [m for m in os.environ.get("FACEAPP_STARTUP_MODULES", "").split(",") if m]
        if watch:
            print("faceapp: loaded before first paint: " + " ".join(m for m in watch if m in sys.modules), flush=True)
        if quit_after:
            QApplication.instance().quit()

    on_first_paint(window, report)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, show the main window and run Qt's event loop; returns its exit code."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from PySide6.QtWidgets import QApplication

    timing = os.environ.get(ENV_STARTUP_TIMING, "").strip().lower()
    # "exit" only measures the paint: no load is started that the quit right after would have to wait for
    window = create_window(args, load=False if timing == "exit" else "after-paint")
    if timing:
        report_first_paint(window, quit_after=timing == "exit")
    window.show()
    app = QApplication.instance()
    assert app is not None
    code = int(app.exec())
    window.shutdown()
    window.hide()           # quit() without closing (FACEAPP_STARTUP_TIMING=exit) leaves it shown otherwise
    return code
