"""The Trainer tab driven through its widgets: a short real training run on AT&T (real MediaPipe
alignment through the cache, tiny backbone, CPU), paused and resumed from its checkpoint, live plots,
the exported model folder and card, then "Activate this model" re-embedding a real SQLite gallery."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from faceapp.core.errors import DatasetError
from faceapp.embedding import Embedder, read_card
from faceapp.gui.theme import LIGHT
from faceapp.gui.settings import read_setting
from faceapp.storage import Store
from tests.services.analyst_data import model_and_gallery


def _embedding_size(live) -> int | None:  # noqa: ANN001 - LivePage
    """Size of the embedding of the face in the live page's latest result."""
    result = live.result
    if result is None or not result.faces or result.faces[0].embedding is None:
        return None
    return int(result.faces[0].embedding.shape[0])


def _fill_form(page, att: Path, out: Path) -> None:  # noqa: ANN001
    """10 AT&T people (2 held out for validation), tiny network, 3 epochs of 20 steps."""
    page.loss_box.setCurrentText("arcface")
    page.loss_form.set_values({"s": 16.0, "m": 0.2})
    page.backbone_box.setCurrentText("tiny")
    page.embedding_dim.setValue(24)                # the start model has 32: tells the live pipeline's model
    page.input_size.setValue(64)
    page.augment_box.setChecked(False)
    page.epochs.setValue(3)
    page.batch_size.setValue(4)
    page.lr.setValue(0.05)
    page.schedule_box.setCurrentText("constant")
    page.warmup.setValue(0.0)
    page.device_box.setCurrentText("cpu")
    page.threads.setValue(1)                       # tests share two cores with other jobs
    page.log_every.setValue(1)
    page.validation_box.setCurrentIndex(0)         # hold-out identities
    page.holdout.setValue(0.2)
    page.name_edit.setText("gui-tiny")
    page.out_edit.setText(str(out))


def test_train_pause_resume_export_and_activate(open_window, qtbot, att: Path, mediapipe_models: Path,
                                                gui_videos: dict, tmp_path: Path) -> None:
    first, db, _ = model_and_gallery(tmp_path, att, range(11, 14), per_subject=2)
    window = open_window("--db", str(db), "--model", str(first), "--page", "trainer")
    page = window.page("trainer")
    old_id = window.ctx.embedder.model_id

    page.data_edit.setText(str(att))
    page.identities_edit.setText("s1-s10")
    page.refresh_summary()
    qtbot.waitUntil(lambda: page.summary is not None, timeout=20000)
    assert (page.summary.identities, page.summary.images) == (10, 100)
    assert "10 identities, 100 images" in page.summary_label.text()
    assert list(page.histogram_curve.getData()[1])[-1] == 10          # all ten have 10 images

    _fill_form(page, att, tmp_path / "trained")
    config = page.build_config()
    assert (config.loss, config.loss_params, config.backbone, config.validation.holdout) == \
        ("arcface", {"s": 16.0, "m": 0.2}, "tiny", 0.2)
    assert config.augment.flip == 0 and config.data[0].identities == "s1-s10"

    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    assert page.training and not page.start_button.isEnabled()

    def pause_on_first_step(event) -> None:  # noqa: ANN001 - Progress, delivered on the GUI thread
        if event.stage == "train" and page.pause_button.isEnabled():
            qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)

    page.job.worker.progress.connect(pause_on_first_step)
    qtbot.waitUntil(lambda: not page.training, timeout=60000)
    assert page.job.outcome == "cancelled" and page.paused_checkpoint is not None
    assert page.paused_checkpoint.name == "last.pt" and page.resume_button.isEnabled()
    paused_at = len(page.points["loss"][0])
    assert 1 <= paused_at < 60

    qtbot.mouseClick(page.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.result is not None, timeout=60000)
    steps, losses = page.points["loss"]
    assert steps == [float(s) for s in range(1, 61)]                           # 3 epochs x 20 steps, no gap
    assert len(page.points["lr"][0]) == 60 and page.points["lr"][1][0] == 0.05
    assert page.points["accuracy"][0] == [1.0, 2.0, 3.0] and len(page.points["EER"][0]) == 3
    assert page.loss_plot.series[0].getData()[1].size == 60                    # the plot shows them
    assert "images/s:" in page.rate_label.text() and "step 60/60" in page.rate_label.text()
    assert "Resuming from" in page.log_view.toPlainText()

    model_dir = page.result.model_dir
    assert (model_dir / "weights.pt").is_file() and read_card(model_dir)["loss"]["name"] == "arcface"
    assert "Best validation (hold-out (2 identities)" in page.card_view.toPlainText()
    assert page.activate_button.isEnabled()

    live = window.page("live")                   # a live view running with the old model...
    live.start_source(gui_videos["known"], loop=True)
    qtbot.waitUntil(lambda: _embedding_size(live) == 32, timeout=30000)
    qtbot.mouseClick(page.activate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.confirm_box is not None and page.confirm_box.isVisible(), timeout=30000)
    question = page.confirm_box.informativeText()                            # both models, asked first
    assert old_id in question and "validation (hold-out" in question
    qtbot.mouseClick(page.confirm_box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.ctx.embedder.model_id != old_id, timeout=30000)
    qtbot.waitUntil(lambda: _embedding_size(live) == 24, timeout=30000)      # ...switches to the new one
    live.stop()
    new_id = window.ctx.embedder.model_id
    assert new_id == Embedder.load(model_dir, device="cpu").model_id
    assert window.ctx.gallery.model.model_id == new_id
    with Store(db) as store:
        for name in ("s11", "s12", "s13"):
            assert len(store.templates.for_identity(name, new_id)) == 2
    qtbot.waitUntil(lambda: window.status_text("model").startswith(f"Model: {new_id}"), timeout=5000)
    assert "re-embedded" in page.log_view.toPlainText()
    assert read_setting("model/active", "", str) == str(Path(model_dir).resolve())      # the next start uses it

    window.set_theme("light")                   # existing legend labels are re-coloured, not only new ones
    label = page.loss_plot.legend.items[0][1]
    assert LIGHT.text.lower() in label.item.toHtml().lower()
    window.set_theme("dark")


def test_bad_settings_are_reported_not_raised(open_window, qtbot, tmp_path: Path) -> None:
    window = open_window("--db", str(tmp_path / "g.db"), "--page", "trainer", wait=False)
    page = window.page("trainer")
    page.data_edit.setText("")
    page.start()
    assert not page.training
    qtbot.waitUntil(lambda: any("choose a dataset folder" in m for m in window.banners.messages("error")), timeout=5000)
    page.data_edit.setText(str(tmp_path / "missing"))
    page.refresh_summary()
    qtbot.waitUntil(lambda: "does not exist" in page.summary_label.text(), timeout=10000)
    page.loss_box.setCurrentText("triplet")
    assert page.pk_k.isEnabled() and "miner" in page.loss_form.fields
    page.validation_box.setCurrentIndex(1)                                   # LFW pairs without a file
    page.data_edit.setText(str(tmp_path))
    page.start()
    qtbot.waitUntil(lambda: any("give the pairs file" in m for m in window.banners.messages("error")), timeout=5000)
    qtbot.waitUntil(lambda: not window.ctx.loading, timeout=60000)


def test_precision_and_time_budget_reach_the_config(open_window, qtbot, att: Path, tmp_path: Path) -> None:
    window = open_window("--db", str(tmp_path / "g.db"), "--page", "trainer", wait=False)
    page = window.page("trainer")
    page.data_edit.setText(str(att))
    assert (page.build_config().precision, page.build_config().time_budget_s) == ("auto", 0.0)
    assert page.time_budget.text() == "no budget"
    page.precision_box.setCurrentText("bf16")
    page.time_budget.setValue(300)
    config = page.build_config()
    assert (config.precision, config.time_budget_s) == ("bf16", 300.0)
    assert config.int8_calibration == 0                                     # no int8 network unless asked
    page.int8_calibration.setValue(256)
    assert page.build_config().int8_calibration == 256
    page.int8_calibration.setValue(8)
    with pytest.raises(DatasetError, match="int8_calibration must be 0"):
        page.build_config()
    qtbot.waitUntil(lambda: not window.ctx.loading, timeout=60000)
