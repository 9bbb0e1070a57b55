"""Liveness on the Live page with real widgets, the real MiniFASNet pair and MediaPipe, a real SQLite gallery:
the badge beside the verdict on NUAA print-attack photos, the challenge prompt over the video and a MATCH
withheld ("LIVENESS REQUIRED") when liveness is required and the face is not live."""

from __future__ import annotations

from pathlib import Path

from tests.gui.test_live_page import _ready


def test_printed_photos_show_attack_suspected_beside_the_verdict(open_window, db_copy, datasets, qtbot, tmp_path):  # noqa: ANN001
    window = open_window("--db", str(db_copy), "--page", "live")
    page = _ready(window, qtbot)
    assert not page.liveness_badge.isVisible() and not page.challenge_prompt.isVisible()     # off by default
    page.liveness_controls.mode_box.setCurrentIndex(page.liveness_controls.mode_box.findData("passive"))
    assert page.model.settings.liveness_mode == "passive"
    assert not page.liveness_controls.new_challenge.isEnabled()
    page.still_interval_s = 0.0
    photos = sorted((Path(datasets) / "nuaa_pad" / "print_still" / "0003").glob("*.jpg"))[:3]
    page.start_source([str(p) for p in photos])
    qtbot.waitUntil(lambda: page.liveness_badge.state == "attack suspected", timeout=60000)
    assert page.liveness_badge.text() == "▲ ATTACK SUSPECTED" and page.liveness_badge.property("role") == "status-bad"
    assert "passive score" in page.liveness_badge.toolTip() and "threshold" in page.liveness_badge.toolTip()
    page.grab().save(str(tmp_path / "live_liveness.png"))
    qtbot.waitUntil(lambda: not page.running, timeout=30000)
    records = page.model.session.store.audit.query(operation="liveness")
    assert records and records[-1].decision == "attack suspected" and records[-1].details["source"] == "live"


def test_required_liveness_withholds_the_match_and_the_challenge_prompts_on_the_video(
        open_window, db_copy, gui_videos, qtbot):  # noqa: ANN001
    window = open_window("--db", str(db_copy), "--page", "live")
    page = _ready(window, qtbot)
    s1 = next(i for i in range(page.claim_box.count()) if page.claim_box.itemText(i).startswith("s1"))
    page.set_mode("verify")
    page.set_claimed(page.claim_box.itemData(s1))
    controls = page.liveness_controls
    controls.mode_box.setCurrentIndex(controls.mode_box.findData("challenge"))
    controls.require_box.setChecked(True)
    assert page.model.settings.require_liveness and controls.new_challenge.isEnabled()
    page.start_source(gui_videos["known"])
    qtbot.waitUntil(lambda: page.result is not None and page.result.faces
                    and page.result.faces[0].verify is not None and page.result.faces[0].verify.match, timeout=30000)
    # the person in the 1.6 s video does not follow the prompts: the challenge is running, never "live"
    qtbot.waitUntil(lambda: page.challenge_prompt.isVisible(), timeout=10000)
    assert page.challenge_prompt.text()
    assert page.verdict_label.text() == "LIVENESS REQUIRED"
    assert page.verdict_label.property("role") == "verdict-nomatch" and "Not a match" in page.verdict_detail.text()
    assert page.liveness_badge.state == "not checked"
    page.stop()
    audited = page.model.session.store.audit.query(operation="verify")
    assert audited and all(r.decision != "match" for r in audited)
    assert audited[-1].decision == "liveness-required"
    controls.require_box.setChecked(False)                 # the same result, no longer withheld
    assert page.verdict_label.text() == "MATCH"
