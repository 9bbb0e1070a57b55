"""The enrolment wizard with real widgets: a video file as the camera, image files, the real quality gate,
embedder and SQLite store."""

from __future__ import annotations

import cv2
from PySide6.QtCore import Qt

from faceapp.capture.sources import VideoFileSource


def _enroll_page(window, qtbot):  # noqa: ANN001, ANN202
    page = window.show_page("enroll")
    qtbot.waitUntil(lambda: page.service is not None, timeout=20000)
    return page


def test_person_step_needs_a_name_and_consent(open_window, db_copy, qtbot):
    page = _enroll_page(open_window("--db", str(db_copy)), qtbot)
    page.go_capture()
    assert page.step == 0 and "name" in page.person_error.text()
    page.set_details("Nobody", consent=False)
    page.go_capture()
    assert page.step == 0 and "consent" in page.person_error.text()
    page.set_details("Nobody", consent=True)
    page.go_capture()
    assert page.step == 1 and page.person_error.text() == ""


def test_wizard_captures_from_a_video_camera_with_hints_and_saves_one_identity(open_window, db_copy, gui_videos, qtbot):
    window = open_window("--db", str(db_copy))
    page = _enroll_page(window, qtbot)
    page.set_details("Newcomer", external_id="N-5", notes="enrolled by the GUI test", consent=True)
    page.go_capture()
    page.start_camera(gui_videos["s5"])
    qtbot.waitUntil(lambda: page.collector.done or (len(page.samples) >= 2 and not page.camera_running), timeout=60000)
    page.stop_camera()
    kept = len(page.samples)
    assert kept >= 2 and page.collector.frames_seen > kept
    hints = set(page.hint_history) - {"Starting the camera..."}
    assert hints, "the person must be guided while capturing"
    assert page.sample_list.count() == kept
    page.prepare()
    qtbot.waitUntil(lambda: page.step == 2 and not page.busy, timeout=30000)
    assert page.review_list.count() == kept and page.duplicate_label.text() == ""
    page.save()
    qtbot.waitUntil(lambda: page.step == 3 and not page.busy, timeout=30000)
    info = window.ctx.store.identities.get("Newcomer")
    model = window.ctx.embedder.model_id
    assert info.template_counts == {model: kept} and info.crop_count == kept
    assert info.external_id == "N-5" and info.notes == "enrolled by the GUI test" and info.consent_at is not None
    templates = window.ctx.store.templates.for_identity("Newcomer")
    assert all(t.source.startswith(str(gui_videos["s5"])) for t in templates)
    assert "Newcomer" in page.done_label.text()
    live = window.page("live")                          # every page hears about the new identity
    qtbot.waitUntil(lambda: any(live.claim_box.itemText(i).startswith("Newcomer") for i in range(live.claim_box.count())),
                    timeout=10000)


def test_files_are_checked_with_reasons_and_a_duplicate_is_flagged(open_window, db_copy, gui_videos, att, qtbot,
                                                                   tmp_path, drop_files, monkeypatch):
    window = open_window("--db", str(db_copy))
    page = _enroll_page(window, qtbot)
    with VideoFileSource(gui_videos["known"]) as source:            # s1 again, under another name
        frames = [f.image for f in source][1:40:13]
    files = []
    for i, frame in enumerate(frames):
        files.append(tmp_path / f"again_{i}.png")
        cv2.imwrite(str(files[-1]), frame)
    (tmp_path / "notes.jpg").write_text("not a picture")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), frames[0] * 0 + 90)
    page.set_details("Sam Again", consent=True)
    page.go_capture()
    drop_files(page.sample_list, [*files, tmp_path / "notes.jpg", blank])   # dropped on the accepted list
    qtbot.waitUntil(lambda: not page.busy and page.sample_list.count() + page.rejected_list.count() == 5, timeout=30000)
    assert len(page.samples) == 3
    reasons = {page.rejected_list.item(i).text() for i in range(page.rejected_list.count())}
    assert any(r.startswith("notes.jpg:") for r in reasons) and any(r.startswith("blank.png: no face") for r in reasons)
    page.prepare()
    qtbot.waitUntil(lambda: page.step == 2 and not page.busy, timeout=30000)
    assert "s1" in page.duplicate_label.text(), "enrolling s1 again under another name must warn"
    assert page.duplicate_label.isVisible() and page.duplicate_label.property("role") == "alert-warning"
    assert not page.save_button.isDefault(), "Enter must not save a likely duplicate"
    assert page.review_rejected.count() == 2
    page.review_list.item(0).setSelected(True)                          # remove two faces on the review step
    page.review_list.item(1).setSelected(True)
    qtbot.mouseClick(page.review_remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.busy and page.review_list.count() == 1, timeout=30000)
    assert len(page.samples) == 1 and page.sample_list.count() == 1 and len(page.plan.accepted) == 1
    asked = []
    monkeypatch.setattr(page, "confirm", lambda _title, text, _accept: asked.append(text) or False)
    page.save()                                                         # still s1: asked, and declined
    assert page.step == 2 and asked and "s1" in asked[0]
    monkeypatch.setattr(page, "confirm", lambda _title, _text, _accept: True)
    page.save()
    qtbot.waitUntil(lambda: page.step == 3 and not page.busy, timeout=30000)
    assert window.ctx.store.identities.get("Sam Again").template_count == 1


def test_adding_images_to_an_existing_identity(open_window, db_copy, att, qtbot):
    window = open_window("--db", str(db_copy))
    page = _enroll_page(window, qtbot)
    s2 = window.ctx.store.identities.get("s2")
    page.start_for_existing(s2.id, "s2")
    assert page.step == 1 and not page.name_edit.isEnabled()
    page.add_files([str(att / "s2" / "5.pgm"), str(att / "s2" / "6.pgm")])
    qtbot.waitUntil(lambda: not page.busy and len(page.samples) == 2, timeout=30000)
    page.prepare()
    qtbot.waitUntil(lambda: page.step == 2 and not page.busy, timeout=30000)
    page.save()
    qtbot.waitUntil(lambda: page.step == 3 and not page.busy, timeout=30000)
    assert window.ctx.store.identities.get("s2").template_count == s2.template_count + 2
    assert "Added to s2" in page.done_label.text()


def test_checking_image_files_can_be_cancelled(open_window, db_copy, att, qtbot):
    window = open_window("--db", str(db_copy))
    page = _enroll_page(window, qtbot)
    page.set_details("Many Photos", consent=True)
    page.go_capture()
    photos = [att / f"s{s}" / f"{i}.pgm" for s in (8, 9) for i in range(1, 11)]
    page.add_files(photos)
    assert page.cancel_check_button.isVisible() and page.cancel_check_button.isEnabled()
    qtbot.waitUntil(lambda: page.progress.value() >= 1, timeout=30000)     # one file checked
    qtbot.mouseClick(page.cancel_check_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.busy, timeout=30000)
    checked = page.sample_list.count() + page.rejected_list.count()
    assert 0 < checked < len(photos), "Cancel must stop the check and keep what was checked"
    assert not page.cancel_check_button.isVisible()


def test_the_status_bar_shows_the_enrolment_camera(open_window, db_copy, gui_videos, qtbot):
    window = open_window("--db", str(db_copy))
    page = _enroll_page(window, qtbot)
    page.set_details("Cam Person", consent=True)
    page.go_capture()
    page.start_camera(gui_videos["s5"])
    qtbot.waitUntil(lambda: page.camera_running, timeout=10000)
    assert window.status_text("camera") != "Camera: off" and "enrolment" in window.status_text("camera")
    page.stop_camera()
    assert window.status_text("camera") == "Camera: off"
