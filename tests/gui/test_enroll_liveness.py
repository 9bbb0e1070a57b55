"""The enrolment wizard's liveness requirement with real widgets: a video camera whose person does not follow
the prompts shows them under the hint, and the identity is not saved without a passed challenge."""

from __future__ import annotations

from tests.gui.test_enroll_page import _enroll_page


def test_required_challenge_prompts_and_blocks_the_save(open_window, db_copy, gui_videos, qtbot):  # noqa: ANN001
    window = open_window("--db", str(db_copy))
    page = _enroll_page(window, qtbot)
    requirement = page.challenge_requirement
    requirement.checkbox.setChecked(True)
    assert page.model.require_challenge and not requirement.status.isHidden()
    assert requirement.status.text().startswith("A passed liveness challenge is required")
    page.set_details("Unchecked", consent=True)
    page.go_capture()
    page.start_camera(gui_videos["s5"])
    qtbot.waitUntil(lambda: requirement.status.text() and not requirement.status.text().startswith("A passed"),
                    timeout=60000)                                 # the challenge's first prompt
    qtbot.waitUntil(lambda: len(page.samples) >= 2 and not page.camera_running, timeout=60000)
    assert not page.model.challenge_passed
    page.prepare()
    qtbot.waitUntil(lambda: page.step == 2 and not page.busy, timeout=30000)
    page.save()
    assert page.step == 2                                          # still on the review step: nothing saved
    assert not any(i.name == "Unchecked" for i in window.ctx.store.identities.list())
    assert any("liveness challenge is required" in m for m in window.banners.messages("warning"))
