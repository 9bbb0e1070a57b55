"""The Live page driven with real widgets, a video file as the camera and a real SQLite gallery.

The known person ("s1") was enrolled from frames of the very video used as the camera, the stranger is
from another dataset, and the stored thresholds are 0.9: meaningful with the untrained default model
(known ~1.0, stranger ~0.6) and with a trained one (see docs/gui.md, "Tests").
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from PySide6.QtWidgets import QMessageBox

from faceapp.capture.sources import VideoFileSource
from faceapp.core.errors import CameraError

THRESHOLD = 0.9


def _ready(window, qtbot):  # noqa: ANN001, ANN202
    """The Live page once its thresholds and identity list arrived from the store (workers)."""
    page = window.page("live")
    qtbot.waitUntil(lambda: page.threshold_source.text().startswith("source: store") and page.claim_box.count() == 2,
                    timeout=20000)
    return page


def _label(page) -> str:  # noqa: ANN001
    result = page.result
    return result.faces[0].label if result is not None and result.faces else ""


def test_identify_names_the_enrolled_person_and_unknown_for_a_stranger(open_window, db_copy, gui_videos, qtbot):
    window = open_window("--db", str(db_copy), "--page", "live")
    page = _ready(window, qtbot)
    assert page.identify_threshold.value() == pytest.approx(THRESHOLD)
    assert page.threshold_source.text() == "source: store:test"
    page.set_mode("identify")
    page.start_source(gui_videos["known"])
    qtbot.waitUntil(lambda: _label(page) == "s1", timeout=30000)
    assert page.identity_label.text() == "s1"
    rows = [page.candidates.item(i).text() for i in range(page.candidates.count())]
    assert rows[0] == "this face" and rows[1].startswith("1. s1") and ">=" in rows[1]
    assert page.view.overlays[0].label == "s1" and page.view.overlays[0].color == "good"
    # the 1.6 s video ends by itself
    qtbot.waitUntil(lambda: window.status_text("camera") == "Camera: off", timeout=30000)
    assert not page.running and page.start_button.text() == "Start"

    page.start_source(gui_videos["stranger"])
    qtbot.waitUntil(lambda: _label(page) == "Unknown", timeout=30000)
    assert page.identity_label.text() == "Unknown"
    assert page.result.faces[0].score < THRESHOLD
    assert page.view.overlays[0].color == "unknown"
    assert page.gui_fps > 0 and "detect" in page.stage_label.text()
    assert window.status_text("fps").startswith("FPS: ")
    page.stop()


def test_verify_verdict_follows_the_threshold_slider(open_window, db_copy, gui_videos, qtbot):
    window = open_window("--db", str(db_copy), "--page", "live")
    page = _ready(window, qtbot)
    s2 = next(i for i in range(page.claim_box.count()) if page.claim_box.itemText(i).startswith("s2"))
    page.set_mode("verify")
    page.set_claimed(page.claim_box.itemData(s2))        # the s1 video claims to be s2
    page.start_source(gui_videos["known"])
    qtbot.waitUntil(lambda: page.result is not None and page.result.faces and page.result.faces[0].verify is not None,
                    timeout=30000)
    page.stop()
    score = page.result.faces[0].verify.score
    assert 0.005 < score < 0.995, f"the s1 video scored {score:.3f} against s2: the slider test needs a mid-range score"
    slider = page.verify_threshold.slider
    slider.setValue(round((score - 0.005) * 1000))       # acts at once: no new frame is processed
    assert page.verdict_label.text() == "MATCH" and page.verdict_label.property("role") == "verdict-match"
    assert page.result.faces[0].verify.threshold == pytest.approx(slider.value() / 1000)
    slider.setValue(round((score + 0.005) * 1000))
    assert page.verdict_label.text() == "NO MATCH" and page.verdict_label.property("role") == "verdict-nomatch"
    assert page.view.overlays[0].label == "NO MATCH s2" and page.view.overlays[0].color == "bad"
    assert page.verdict_name.text() == "s2" and page.verdict_numbers.text().startswith(f"score {score:.3f}")
    assert "margin -0.00" in page.verdict_numbers.text()


def test_saved_thresholds_are_stored_for_the_model(open_window, db_copy, qtbot):
    window = open_window("--db", str(db_copy), "--page", "live")
    page = _ready(window, qtbot)
    page.identify_threshold.setValue(0.42)
    page.verify_threshold.setValue(0.37)
    page.save_thresholds()                       # asks first, with the old and new values
    dialog = page.save_dialog
    assert dialog is not None and dialog.isVisible()
    assert "Identify: 0.9000" in dialog.informativeText() and "→  0.4200" in dialog.informativeText()
    assert "Verify: 0.9000" in dialog.informativeText() and "→  0.3700" in dialog.informativeText()
    dialog.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: page.save_dialog is None, timeout=5000)
    window.ctx.thresholds_changed.emit()         # nothing was stored: the store still says 0.9
    qtbot.waitUntil(lambda: page.identify_threshold.value() == pytest.approx(THRESHOLD), timeout=10000)
    page.identify_threshold.setValue(0.42)
    page.verify_threshold.setValue(0.37)
    page.save_thresholds()
    page.save_dialog.button(QMessageBox.StandardButton.Save).click()
    qtbot.waitUntil(lambda: page.threshold_source.text() == "source: store:manual", timeout=10000)
    stored = window.ctx.store.thresholds.get(window.ctx.embedder.model_id)
    assert (stored.identify, stored.verify) == (pytest.approx(0.42), pytest.approx(0.37))


def test_snapshot_writes_the_frame_with_its_overlays(open_window, db_copy, gui_videos, qtbot, tmp_path):
    window = open_window("--db", str(db_copy), "--page", "live")
    page = _ready(window, qtbot)
    page.start_source(gui_videos["known"])
    qtbot.waitUntil(lambda: _label(page) == "s1", timeout=30000)
    page.stop()
    path = page.save_snapshot(tmp_path / "snap.png")
    image = cv2.imread(str(path))
    assert image.shape == (480, 640, 3)
    with VideoFileSource(gui_videos["known"]) as source:
        plain = next(iter(source)).image
    assert (cv2.absdiff(image, plain).max(axis=2) > 60).sum() > 500, "the overlays must be drawn on the snapshot"


def test_still_images_and_dropped_non_images(open_window, db_copy, att, qtbot, tmp_path, drop_files):
    window = open_window("--db", str(db_copy), "--page", "live")
    page = _ready(window, qtbot)
    page.still_interval_s = 0.0
    page._files_dropped([str(tmp_path / "notes.txt")])
    assert any("not images" in m for m in window.banners.messages("error"))
    drop_files(page.view, [att / "s2" / "4.pgm", att / "s3" / "1.pgm"])     # a real drop event on the view
    qtbot.waitUntil(lambda: page.result is not None and page.result.frame.source.endswith("s3/1.pgm"), timeout=30000)
    assert len(page.result.faces) == 1 and page.result.faces[0].identify is not None
    qtbot.waitUntil(lambda: window.status_text("camera") == "Camera: off", timeout=10000)


class _UnpluggedCamera(VideoFileSource):
    """A real video that fails like a webcam pulled out after a few frames."""

    def __init__(self, path: Path, frames: int = 6) -> None:
        super().__init__(path, realtime=True)
        self.frames = frames
        self.description = "camera:0"

    def __iter__(self):  # noqa: ANN204
        for frame in super().__iter__():
            if frame.index >= self.frames:
                raise CameraError("camera 0 stopped delivering frames (unplugged?)")
            yield frame


def test_unplugged_or_missing_camera_shows_the_error_and_the_app_keeps_working(open_window, db_copy, gui_videos,
                                                                               qtbot, monkeypatch):
    window = open_window("--db", str(db_copy), "--page", "live")
    page = _ready(window, qtbot)
    monkeypatch.setattr(page, "open_source", lambda spec, **_: _UnpluggedCamera(gui_videos["known"]))
    page.start_source(0)
    qtbot.waitUntil(lambda: any("unplugged" in m for m in window.banners.messages("error")), timeout=30000)
    qtbot.waitUntil(lambda: window.status_text("camera") == "Camera: error", timeout=10000)
    qtbot.waitUntil(lambda: page.start_button.text() == "Start", timeout=10000)
    assert page.result is not None and page.result.frame.index < 6   # frames before the failure were shown
    monkeypatch.undo()
    page.start_source(9)                                            # no such camera here
    qtbot.waitUntil(lambda: any("camera 9" in m for m in window.banners.messages("error")), timeout=30000)
    qtbot.waitUntil(lambda: not page.running, timeout=10000)
    page.start_source(gui_videos["known"])                          # still working
    qtbot.waitUntil(lambda: _label(page) == "s1", timeout=30000)
    window.show_page("identities")                                  # and the rest of the window answers
    assert window.current_page.key == "identities"
    page.stop()


def test_source_option_starts_the_live_view_once_loaded(open_window, db_copy, gui_videos, qtbot):
    window = open_window("--db", str(db_copy), "--source", str(gui_videos["known"]), "--page", "live")
    page = window.page("live")
    qtbot.waitUntil(lambda: _label(page) != "", timeout=30000)
    assert page.source_box.currentText() == "known.avi"
    page.stop()


def test_space_starts_and_stops_the_chosen_source(open_window, db_copy, gui_videos, qtbot):
    from PySide6.QtCore import Qt

    window = open_window("--db", str(db_copy), "--page", "live")
    page = _ready(window, qtbot)
    page._remember_source(str(gui_videos["known"]))
    with qtbot.waitActive(window):
        window.activateWindow()
    page.view.setFocus()
    qtbot.keyClick(page.view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: page.running, timeout=10000)
    qtbot.keyClick(page.view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not page.running, timeout=10000)
    assert page.start_button.text() == "Start"
