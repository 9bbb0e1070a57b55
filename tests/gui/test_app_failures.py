"""The workstation starts and keeps working when the MediaPipe models, the database or the embedding
model are missing or broken, and says clearly what is wrong."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests.gui.dialogs import save_live_thresholds


def test_missing_mediapipe_models_fall_back_and_say_so(open_window, db_copy, gui_videos, qtbot, tmp_path, monkeypatch):
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setenv("FACEAPP_MODEL_DIR", str(empty))
    window = open_window("--db", str(db_copy), "--mediapipe-dir", str(empty), "--page", "live")
    warnings = window.banners.messages("warning")
    assert any("face_landmarker.task" in m and "falls back" in m for m in warnings)
    landmarker = next(m for m in warnings if "face_landmarker.task" in m)
    assert "--model-dir" not in landmarker, "the GUI rejects --model-dir: the warning must not send users there"
    assert "FACEAPP_MODEL_DIR" in landmarker and "--mediapipe-dir" in landmarker
    from faceapp.gui.app import build_parser

    assert build_parser().parse_args(["--mediapipe-dir", str(empty)]).mediapipe_dir == empty   # what it says works
    page = window.page("live")
    page.start_source(gui_videos["known"])
    qtbot.waitUntil(lambda: page.result is not None and len(page.result.faces) >= 1, timeout=30000)
    assert page.result.fallback and page.result.faces[0].face.is_fallback
    assert page.view.overlays[0].detail.endswith("]")          # the fallback detector is named on screen
    page.stop()


def test_a_damaged_database_is_reported_and_the_rest_works(open_window, gui_videos, qtbot, tmp_path):
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a SQLite database at all" * 100)
    window = open_window("--db", str(broken), "--page", "live")
    errors = window.banners.messages("error")
    assert any("Opening the database" in m and "broken.db" in m for m in errors), errors
    assert window.ctx.store is None and window.status_text("database") == "DB: none"
    page = window.page("live")
    assert "No gallery" in page.warning.text()
    page.start_source(gui_videos["known"])                     # detection still works, without names
    qtbot.waitUntil(lambda: page.result is not None and len(page.result.faces) == 1, timeout=30000)
    assert page.result.faces[0].identify is None and page.result.faces[0].label == ""
    page.stop()
    identities = window.show_page("identities")
    assert identities.count_label.text() == "No database" and not identities.export_button.isEnabled()
    heading = identities.heading.text()                          # an error state with the reason and what to do
    assert identities.heading.property("role") == "status-bad" and "broken.db" in heading
    assert "No identities yet" not in heading and "Reload" in heading
    enroll = window.show_page("enroll")
    assert not enroll.details_next.isEnabled() and "database" in enroll.person_error.text()


def test_a_missing_embedding_model_is_reported(open_window, db_copy, qtbot, tmp_path):
    window = open_window("--db", str(db_copy), "--model", str(tmp_path / "no-such-model"))
    errors = window.banners.messages("error")
    assert any("Loading the embedding model" in m and "no-such-model" in m for m in errors), errors
    assert window.status_text("model") == "Model: none"
    assert window.ctx.gallery is None and window.ctx.store is not None
    page = window.show_page("identities")                       # the gallery can still be browsed
    qtbot.waitUntil(lambda: page.names() == ["s1", "s2"], timeout=20000)


def test_a_locked_database_gives_a_clear_message_and_recovers(open_window, db_copy, qtbot):
    window = open_window("--db", str(db_copy), "--db-timeout", "0.3", "--page", "live")
    page = window.page("live")
    qtbot.waitUntil(lambda: page.threshold_source.text().startswith("source: store"), timeout=20000)
    locker = sqlite3.connect(db_copy, timeout=0.1)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        save_live_thresholds(page)
        qtbot.waitUntil(lambda: any("locked" in m for m in window.banners.messages("error")), timeout=20000)
    finally:
        locker.rollback()
        locker.close()
    save_live_thresholds(page)                                 # once released, saving works
    qtbot.waitUntil(lambda: page.threshold_source.text() == "source: store:manual", timeout=20000)


def test_reload_clears_old_problems(open_window, db_copy, qtbot):
    window = open_window("--db", str(db_copy))
    window.ctx.report_error(OSError("something old"), "Earlier")
    assert any("something old" in m for m in window.banners.messages())
    window.reload_services()
    qtbot.waitUntil(lambda: not window.ctx.loading, timeout=60000)
    assert not any("something old" in m for m in window.banners.messages())
    assert window.status_text("database") == f"DB: {Path(db_copy).name} · search exact"


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_window_starts_in_each_theme(open_window, db_copy, theme):
    window = open_window("--db", str(db_copy), "--theme", theme)
    assert window.theme_actions[theme].isChecked()


def test_a_missing_gallery_key_file_is_reported_and_the_window_keeps_working(open_window, db_copy, qtbot, tmp_path,
                                                                              monkeypatch):
    """The gallery is sealed with a key file this user no longer has (another machine, FACEAPP_KEY_DIR changed):
    the window opens, says which gallery and key file and what to do, and what needs no face still works."""
    monkeypatch.setenv("FACEAPP_KEY_DIR", str(tmp_path / "empty-keys"))
    window = open_window("--db", str(db_copy), "--page", "live")
    errors = window.banners.messages("error")
    assert any("Loading the gallery" in m and str(db_copy) in m and "key file" in m and "is missing" in m
               and "copy the key file back" in m for m in errors), errors
    assert window.ctx.store is not None and window.ctx.gallery is None
    assert "No gallery" in window.page("live").warning.text()
    page = window.show_page("identities")                       # names and counts need no key
    qtbot.waitUntil(lambda: page.names() == ["s1", "s2"], timeout=20000)
    assert page.select_identity(page.model.rows[0][0].id)       # opening a person's faces: the same clear message
    qtbot.waitUntil(lambda: any(m.startswith("Loading the identity") and "key file" in m
                                for m in window.banners.messages("error")), timeout=20000)
    window.grab().save(str(tmp_path / "missing-key.png"))
    from faceapp.app.errors import describe_error
    from faceapp.core.errors import GalleryKeyError

    assert describe_error(GalleryKeyError("x"))[0] == "Gallery key missing or wrong"


def test_a_passphrase_gallery_asks_for_its_passphrase(open_window, db_copy, qtbot, monkeypatch):
    """A gallery protected by a passphrase (none in the environment): the banner offers to enter it; a wrong one
    is refused with the same offer, the right one opens the gallery."""
    from PySide6.QtWidgets import QInputDialog, QPushButton

    from faceapp.storage import Store
    from faceapp.storage.crypto import rotate_key
    from faceapp.storage.keys import KeyOptions

    with Store(db_copy) as store:            # re-wrapped under a passphrase; the shared key file is left alone
        store.uow.write(lambda session: rotate_key(session.connection(), store.keys, store.where, full=False,
                                                   new_options=KeyOptions(prefer="passphrase", passphrase="right one",
                                                                          use_keyring=False)))
    window = open_window("--db", str(db_copy), "--page", "live")
    assert window.ctx.gallery is None and window.ctx.store is not None

    def offer():  # noqa: ANN202 - the banner with the "Enter passphrase..." button
        found = [b for b in window.banners._banners if not b.dismissed and b.findChild(QPushButton) is not None
                 and b.findChild(QPushButton).text() == "Enter passphrase..."]
        return found[-1] if found else None

    assert offer() is not None and "protected by a passphrase" in offer().text
    answers = iter([("wrong", True), ("right one", True)])
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *args, **kwargs: next(answers)))
    offer().findChild(QPushButton).click()
    qtbot.waitUntil(lambda: not window.ctx.loading and offer() is not None and "passphrase is wrong" in offer().text,
                    timeout=60000)
    offer().findChild(QPushButton).click()
    qtbot.waitUntil(lambda: not window.ctx.loading and window.ctx.gallery is not None, timeout=60000)
    assert window.ctx.gallery.index.identity_count == 2 and offer() is None
