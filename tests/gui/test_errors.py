"""Error descriptions, the banner area and non-blocking error dialogs."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from faceapp.core.errors import CameraError, DatabaseError, InputFileError, NoFaceError
from faceapp.gui.errors import BannerArea, MessageBanner, describe_error, error_dialog, is_user_error


def test_describe_error_names_the_kind_and_keeps_the_message():
    assert describe_error(CameraError("camera 0 stopped delivering frames")) == (
        "Camera problem", "camera 0 stopped delivering frames")
    title, text = describe_error(DatabaseError("database /x.db is locked"), "Saving the identity")
    assert title == "Database problem" and text == "Saving the identity: database /x.db is locked"
    assert describe_error(NoFaceError("a.jpg: no face"))[0] == "No face found"
    title, text = describe_error(ZeroDivisionError("division by zero"))
    assert title == "Unexpected error" and "ZeroDivisionError" in text and "bug" in text
    assert is_user_error(InputFileError("x")) and is_user_error(FileNotFoundError("x"))
    assert not is_user_error(KeyError("x"))


def test_banner_area_shows_dedupes_limits_and_dismisses(qtbot):
    area = BannerArea()
    qtbot.addWidget(area)
    area.show_message("camera unplugged", "error")
    area.show_message("camera unplugged", "error")          # identical: replaced, not stacked
    area.show_message("model untrained", "warning")
    assert area.messages() == ["camera unplugged", "model untrained"]
    assert area.messages("warning") == ["model untrained"]
    for i in range(6):
        area.show_message(f"note {i}", "info")
    assert len(area.messages()) == BannerArea.MAX and area.messages()[-1] == "note 5"
    area.clear()
    assert area.messages() == []


def test_banner_timeout_and_level_validation(qtbot):
    area = BannerArea()
    qtbot.addWidget(area)
    banner = area.show_message("saved", "info", timeout_ms=50)
    assert isinstance(banner, MessageBanner)
    qtbot.waitUntil(lambda: area.messages() == [], timeout=3000)
    try:
        MessageBanner("x", "fatal")
    except ValueError as error:
        assert "fatal" in str(error)
    else:
        raise AssertionError("an unknown level must be rejected")


def test_error_dialog_is_non_blocking_and_shows_details_for_bugs(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    box = error_dialog(parent, InputFileError("scan.png: truncated file"), "Adding images")
    assert isinstance(box, QMessageBox) and box.isVisible()       # open(), not exec(): we got here
    assert box.windowTitle() == "Cannot read the file"
    assert box.text() == "Adding images: scan.png: truncated file"
    box.close()
    bug = RuntimeError("boom")
    bug.__traceback_text__ = "Traceback: boom"  # type: ignore[attr-defined]
    box = error_dialog(parent, bug)
    assert box.detailedText() == "Traceback: boom" and box.icon() == QMessageBox.Icon.Critical
    box.close()
