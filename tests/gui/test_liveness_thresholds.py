"""The Thresholds tab's liveness section on a small real NUAA subset (two subjects, live and two print-attack
kinds), real MediaPipe and the real MiniFASNet pair: APCER/BPCER equal ``faceapp.liveness.evaluate`` on the
same scores, "Set at BPCER" keeps the live refusals under the target, the saved threshold is the one the
policy reads and is audited; a wrong folder says what is wrong; scoring can be cancelled."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from faceapp.liveness.evaluate import pad_metrics
from faceapp.liveness.policy import passive_threshold
from faceapp.storage import Store


def _subset(datasets: Path, root: Path, per: int = 4) -> Path:
    """live + print_still + print_bend of subjects 0002 and 0006, ``per`` images each, linked (not copied)."""
    for kind in ("live", "print_still", "print_bend"):
        for subject in ("0002", "0006"):
            files = sorted((datasets / "nuaa_pad" / kind / subject).glob("*.jpg"))
            target = root / kind / subject
            target.mkdir(parents=True)
            for f in files[:: max(1, len(files) // per)][:per]:
                (target / f.name).symlink_to(f)
    return root


@pytest.mark.slow
def test_score_set_at_bpcer_and_save_the_passive_threshold(open_window, qtbot, datasets: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEAPP_DATA_DIR", str(tmp_path / "data"))   # the saved threshold stays with this test
    db = tmp_path / "g.db"
    window = open_window("--db", str(db), "--page", "thresholds")
    section = window.page("thresholds").liveness
    assert not section.save_button.isEnabled()                    # nothing scored yet
    section.folder.setText(str(_subset(datasets, tmp_path / "pad")))
    qtbot.mouseClick(section.score_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: section.model.scores is not None and not section.job.busy, timeout=120000)
    scores = section.model.scores
    assert len(scores.live_scores) == 8 and scores.attack_kinds == ["print_bend", "print_still"]
    assert "8 live, 16 attack images (2 kind(s)), 2 subject(s)" in section.summary.text()

    section.target_box.setCurrentIndex(section.target_box.findData(0.05))
    qtbot.mouseClick(section.set_button, Qt.MouseButton.LeftButton)
    threshold = section.model.threshold
    expected = pad_metrics(scores.scored, threshold)
    assert section.model.metrics == expected and expected["bpcer"] <= 0.05
    assert threshold == pytest.approx(min(scores.live_scores))    # 8 live images: 5 % allows none refused
    assert section.slider.value() == pytest.approx(threshold, abs=1e-3)
    texts = [section.grid.itemAt(i).widget().text() for i in range(section.grid.count())]
    assert "APCER print_still" in texts and f"{100 * expected['apcer']['print_still']:.2f} %" in texts

    qtbot.mouseClick(section.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "(saved" in section.stored.text(), timeout=10000)
    stored = passive_threshold(scores.pad_id)
    assert (stored.value, stored.source, stored.target_bpcer) == (threshold, "saved", 0.05)
    assert f"{threshold:.4f} (saved, target BPCER 0.05)" in section.stored.text()
    qtbot.waitUntil(lambda: bool(_audited(db)), timeout=10000)
    assert _audited(db)[-1].threshold == pytest.approx(threshold)
    section.grab().save(str(tmp_path / "liveness_section.png"))


def _audited(db: Path) -> list:
    with Store(db) as store:
        return store.audit.query(operation="liveness-threshold")


def test_a_folder_without_live_images_says_what_is_wrong_and_scoring_can_be_cancelled(
        open_window, qtbot, datasets: Path, tmp_path: Path) -> None:
    window = open_window("--db", str(tmp_path / "g.db"), "--page", "thresholds")
    section = window.page("thresholds").liveness
    (tmp_path / "only_attacks" / "print_still").mkdir(parents=True)
    section.folder.setText(str(tmp_path / "only_attacks"))
    section.compute()
    qtbot.waitUntil(lambda: not section.job.busy, timeout=60000)
    assert section.model.scores is None
    assert any("needs a 'live' folder" in m for m in window.banners.messages("error"))

    section.folder.setText(str(_subset(datasets, tmp_path / "pad", per=8)))
    section.compute()
    qtbot.waitUntil(lambda: section.job.bar.maximum() > 0 and section.job.bar.value() >= 1, timeout=60000)
    section.job.cancel()
    qtbot.waitUntil(lambda: not section.job.busy, timeout=60000)
    assert section.model.scores is None and section.job.outcome == "cancelled"
