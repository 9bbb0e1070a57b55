"""The active model's thresholds and templates through the real window: the Live page keeps a model card's
calibrated thresholds exactly (shown rounded, decided and saved as stored), the Trainer's "Activate" asks
first with both models' numbers, and the Live page warns while the active model has no calibrated
thresholds or enrolled identities have no template of it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from faceapp.embedding.model_folder import ModelConfig, build_backbone, read_card, save_model
from faceapp.gui.workers import active_workers
from faceapp.services.gallery import model_spec
from faceapp.storage import NewIdentity, NewSample, Store
from tests.gui.dialogs import save_live_thresholds


def test_the_model_cards_exact_thresholds_are_decided_and_saved_unrounded(open_window, qtbot, tmp_path: Path):
    card = read_card(Path(__file__).resolve().parents[2] / "models" / "default")["thresholds"]
    verify, identify = card["verify"], card["identify"]
    assert round(verify, 3) != verify and round(identify, 3) != identify    # finer than the slider's 0.001 steps
    db = tmp_path / "fresh.db"                                           # nothing saved: the card answers
    window = open_window("--db", str(db), "--page", "live")
    page = window.page("live")
    qtbot.waitUntil(lambda: page.threshold_source.text() == "source: model-card", timeout=20000)
    assert page.verify_threshold.value() == verify and page.identify_threshold.value() == identify
    assert page.settings.verify_threshold == verify and page.settings.identify_threshold == identify   # decided at
    qtbot.waitUntil(lambda: not active_workers(), timeout=20000)         # the readiness check has answered
    assert page.warning.isHidden()                          # calibrated in its card, nobody enrolled

    save_live_thresholds(page)
    qtbot.waitUntil(lambda: page.threshold_source.text() == "source: store:manual", timeout=20000)
    stored = window.ctx.store.thresholds.get(window.ctx.embedder.model_id)
    assert (stored.verify, stored.identify) == (verify, identify)         # not rounded to the slider's steps
    assert stored.calibrated_at is not None and stored.source == "manual"

    page.verify_threshold.slider.setValue(600)                           # the operator moves it: then it is 0.6
    assert page.verify_threshold.value() == 0.6 and page.settings.verify_threshold == 0.6
    assert page.settings.thresholds_source == "slider"


def _trained_tiny_model(folder: Path) -> Path:
    """A small model folder whose card has validation numbers but no thresholds (a fresh training run)."""
    torch.manual_seed(0)
    config = ModelConfig(name="fresh-run", backbone="tiny", embedding_dim=24, input_size=64)
    card = {"trained": True, "metrics": {"validation": {"protocol": "hold-out (2 identities)", "epoch": 1,
                                                        "accuracy": 0.8125, "accuracy_std": 0.01, "eer": 0.1875,
                                                        "auc": 0.9}}}
    return save_model(folder, build_backbone(config).eval(), config, card)


def _box(page, qtbot) -> QMessageBox:  # noqa: ANN001
    qtbot.waitUntil(lambda: page.confirm_box is not None and page.confirm_box.isVisible(), timeout=30000)
    return page.confirm_box


def test_activation_asks_with_both_models_numbers_and_the_live_page_warns_after_it(open_window, db_copy, qtbot,
                                                                                   tmp_path: Path):
    new_folder = _trained_tiny_model(tmp_path / "fresh-run")
    window = open_window("--db", str(db_copy), "--page", "trainer")
    ctx = window.ctx
    old_id = ctx.embedder.model_id
    with Store(db_copy) as store:                 # someone enrolled without keeping crops: cannot be re-embedded
        vector = np.random.default_rng(0).standard_normal(ctx.embedder.dim).astype(np.float32)
        store.templates.enroll(NewIdentity("Dora"), [NewSample(embedding=vector / np.linalg.norm(vector))],
                               model_spec(ctx.embedder))
    live = window.page("live")
    page = window.page("trainer")
    qtbot.waitUntil(lambda: page.ready, timeout=60000)
    page.result = SimpleNamespace(model_dir=new_folder)        # as when a run has just finished
    page._update_buttons()

    qtbot.mouseClick(page.activate_button, Qt.MouseButton.LeftButton)
    box = _box(page, qtbot)
    text = box.informativeText()
    new_id = page.confirm_preview.new.model_id
    assert new_id.startswith("fresh-run@") and new_id in box.text()
    new_part, current_part = text.split("Current model:")
    assert new_id in new_part
    assert "validation (hold-out (2 identities), epoch 1): accuracy 81.25%, EER 18.75%" in new_part
    assert "NOT calibrated" in new_part
    shipped = read_card(Path(__file__).resolve().parents[2] / "models" / "default")["metrics"]["test"]["CFP-FF"]
    assert old_id in current_part
    assert (f"CFP-FF folds 9,10: accuracy {shipped['accuracy'] * 100:.2f}%, EER {shipped['eer'] * 100:.2f}%"
            in current_part)                                               # the shipped card's test numbers
    assert "verify 0.9000, identify 0.9000 (store:test)" in current_part   # the thresholds saved for it
    assert "Dora" in text and "will NOT be found" in text and "re-embeds" in text

    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.confirm_box is None, timeout=5000)
    assert ctx.embedder.model_id == old_id and not page.activation.busy    # nothing happened
    assert "cancelled" in page.log_view.toPlainText()

    qtbot.mouseClick(page.activate_button, Qt.MouseButton.LeftButton)
    box = _box(page, qtbot)
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ctx.embedder.model_id == new_id, timeout=60000)
    assert any("Dora" in m for m in window.banners.messages("warning"))     # named when it happens...
    qtbot.waitUntil(lambda: "Dora" in live.warning.text() and "no calibrated thresholds" in live.warning.text(),
                    timeout=20000)                                          # ...and kept on the Live page
    assert not live.warning.isHidden() and "s1" not in live.warning.text()   # s1, s2 were re-embedded

    live.verify_threshold.setValue(0.61)                                   # calibrating it clears that part
    live.identify_threshold.setValue(0.67)
    save_live_thresholds(live)
    qtbot.waitUntil(lambda: "no calibrated thresholds" not in live.warning.text(), timeout=20000)
    assert "Dora" in live.warning.text() and not live.warning.isHidden()
