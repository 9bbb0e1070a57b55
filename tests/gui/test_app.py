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


def _tiny_model(folder):  # noqa: ANN001, ANN202
    import torch

    from faceapp.embedding.model_folder import ModelConfig, build_backbone, save_model

    torch.manual_seed(0)
    config = ModelConfig(name="remembered", backbone="tiny", embedding_dim=32, input_size=64)
    return save_model(folder, build_backbone(config), config, {"trained": True})


def test_the_model_activated_last_time_is_used_at_the_next_start(open_window, tmp_path, monkeypatch, qtbot) -> None:
    from faceapp.gui.settings import read_setting, remember_active_model

    monkeypatch.delenv("FACEAPP_EMBED_MODEL", raising=False)
    folder = _tiny_model(tmp_path / "remembered")
    db = str(tmp_path / "gallery.db")
    remember_active_model(folder)                                   # what activating it in the Trainer does
    window = open_window("--db", db)
    assert window.ctx.embedder.name == "remembered" and window.ctx.embedder.dim == 32
    assert any("activated last time" in m and str(folder.resolve()) in m for m in window.banners.messages("info"))
    live = window.page("live")                                      # its card has no thresholds: said, and kept
    qtbot.waitUntil(lambda: "no calibrated thresholds" in live.warning.text(), timeout=20000)
    assert not live.warning.isHidden() and window.ctx.embedder.model_id in live.warning.text()
    explicit = open_window("--db", db, "--model", str(folder.parent.parent / "nowhere"))
    assert explicit.ctx.embedder is None                            # --model wins (and is reported missing)
    assert not any("activated last time" in m for m in explicit.banners.messages())
    import shutil

    shutil.rmtree(folder)                                           # the remembered folder vanishes
    fallback = open_window("--db", db)
    assert fallback.ctx.embedder is not None and fallback.ctx.embedder.name != "remembered"
    messages = fallback.banners.messages("warning")
    assert any("no longer there" in m and str(folder.resolve()) in m for m in messages), messages
    assert read_setting("model/active", "", str) == ""              # and is forgotten


def test_the_theme_given_with_theme_is_remembered_for_the_next_start(open_window, db_copy, qapp) -> None:
    from faceapp.gui import theme as themes

    try:
        first = open_window("--db", str(db_copy), "--theme", "light")
        assert themes.current_theme().name == "light" and first.theme_actions["light"].isChecked()
        first.close()
        second = open_window("--db", str(db_copy))                     # no --theme: the last one used
        assert themes.current_theme().name == "light" and second.theme_actions["light"].isChecked()
        second.theme_actions["dark"].trigger()                         # the View menu's switch, remembered too
        second.close()
        third = open_window("--db", str(db_copy))
        assert themes.current_theme().name == "dark" and third.theme_actions["dark"].isChecked()
    finally:
        themes.apply_theme(qapp, "dark")


def test_startup_timing_reports_the_first_paint(db_copy, mediapipe_models, tmp_path) -> None:
    """FACEAPP_STARTUP_TIMING=exit (scripts/startup_time.py): ``python main.py`` paints, says when, names the
    heavy modules loaded by then, and quits. A separate process, as a user starts it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, FACEAPP_STARTUP_TIMING="exit", FACEAPP_STARTUP_MODULES="torch,mediapipe,sklearn",
               FACEAPP_DATA_DIR=str(tmp_path / "data"), QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(repo))
    done = subprocess.run([sys.executable, str(repo / "main.py"), "--db", str(db_copy), "--mediapipe-dir",
                           str(mediapipe_models)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "faceapp: first paint after " in done.stdout
    loaded = next(line for line in done.stdout.splitlines() if line.startswith("faceapp: loaded before first paint"))
    assert loaded.split(":", 2)[2].split() == [], "torch, MediaPipe and scikit-learn must load after the window paints"
