"""The Thresholds tab on real faces: its read-outs equal `faceapp eval --json` on the same pairs, and a
threshold set at a target FAR on the enrolled gallery is stored for the model and used by the Live tab."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from faceapp.cli.main import main as faceapp_main
from faceapp.evaluation import metrics
from faceapp.services.thresholds import operating_point
from faceapp.storage import Store
from tests.services.analyst_data import att_lfw_pairs, model_and_gallery, save_untrained_model


def _scored(page, qtbot, source: str) -> None:  # noqa: ANN001
    page.source_box.setCurrentIndex(page.source_box.findData(source))
    qtbot.mouseClick(page.compute_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.scores is not None and not page.job.busy, timeout=60000)


def test_readouts_match_faceapp_eval(open_window, qtbot, capsys, att: Path, mediapipe_models: Path,
                                     tmp_path: Path) -> None:
    model = save_untrained_model(tmp_path / "model")
    pairs, root = att_lfw_pairs(att, tmp_path)
    window = open_window("--db", str(tmp_path / "g.db"), "--model", str(model), "--page", "thresholds")
    page = window.page("thresholds")
    page.protocol.set_format("lfw")
    page.protocol.pairs.setText(str(pairs))
    page.protocol.root.setText(str(root))
    _scored(page, qtbot, "pairs")

    assert faceapp_main(["eval", "--model", str(model), "--pairs", str(pairs), "--root", str(root), "--device", "cpu",
                         "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    scores = page.scores
    assert (scores.n_genuine, scores.n_impostor, scores.model_id) == (report["n_genuine"], report["n_impostor"],
                                                                     report["extra"]["model"])
    assert page.curves.eer == report["eer"] and page.curves.auc == report["auc"]
    assert page.curves.eer_threshold == report["eer_threshold"]
    assert page.threshold.value() == report["eer_threshold"]                 # the slider starts at the EER
    assert page.readouts["eer"].text().startswith(f"{report['eer'] * 100:.3g}%")
    for far, tar in report["tar_at_far"].items():                            # "0.01", "0.001"
        page.target_box.setCurrentIndex(page.target_box.findData(float(far)))
        qtbot.mouseClick(page.set_far_button, Qt.MouseButton.LeftButton)
        assert page.point.tar == tar and page.point.far <= float(far)
        assert page.readouts["tar"].text() == (f"{tar * 100:.3g}%" if tar else "0")
    # at eval's best-accuracy threshold, FAR/FRR are the rates of the pairs eval scored
    page.set_threshold(report["threshold"])
    accepted = scores.scores >= report["threshold"]
    assert page.point.far == pytest.approx(accepted[~scores.same].mean())
    assert page.point.frr == pytest.approx((~accepted[scores.same]).mean())
    assert 1 - (page.point.far * scores.n_impostor + page.point.frr * scores.n_genuine) / scores.scores.size == \
        pytest.approx(metrics.accuracy_at_threshold(scores.scores, scores.same, report["threshold"]))
    assert page.readouts["fpir_emp"].text() == "n/a for pairs protocols"
    # the plots carry the curves
    assert page.roc_curve.getData()[0].size > 2 and page.det_curve.getData()[0].size >= 1
    assert np.isclose(page.hist_line.value(), report["threshold"])


def test_threshold_at_target_far_is_stored_and_used_by_live(open_window, qtbot, att: Path, mediapipe_models: Path,
                                                            tmp_path: Path) -> None:
    model, db, embedder = model_and_gallery(tmp_path, att, range(1, 7), per_subject=4)
    window = open_window("--db", str(db), "--model", str(model), "--page", "thresholds")
    page = window.page("thresholds")
    _scored(page, qtbot, "gallery")
    assert page.scores.kind == "gallery" and page.gallery_size.value() == 6
    assert page.scores.n_genuine == 36

    # 1e-3 on 240 impostor pairs: said plainly, and the markers stay on the log plots
    page.target_box.setCurrentIndex(page.target_box.findData(0.001))
    qtbot.mouseClick(page.set_far_button, Qt.MouseButton.LeftButton)
    assert page.far_note.isVisible() and "cannot be measured with 240 impostor pairs" in page.far_note.text()
    assert not page.readouts["far"].text().startswith("0 ")
    assert page.roc_marker.getData()[0].size == 1 and "edge" in page.roc_plot.note
    assert page.det_marker.getData()[0].size == 1 or page.det_plot.note.startswith("No DET curve")

    page.target_box.setCurrentIndex(page.target_box.findData(0.01))
    qtbot.mouseClick(page.set_far_button, Qt.MouseButton.LeftButton)
    assert not page.far_note.isVisible()
    qtbot.mouseClick(page.set_fpir_button, Qt.MouseButton.LeftButton)
    verify, identify = page.threshold.value(), page.identify_slider.value()
    impostors = np.sort(page.scores.scores[~page.scores.same])
    assert verify > impostors[-(int(0.01 * impostors.size) + 1)] and page.point.far <= 0.01
    assert page.point.far <= 0.01
    assert operating_point(page.scores, identify, 6).fpir_empirical <= 0.01   # measured: N - 1 = 5 searched

    qtbot.mouseClick(page.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.stored_label.text().startswith(f"stored: verify {verify:.4f}"), timeout=10000)
    with Store(db) as store:
        record = store.thresholds.get(embedder.model_id)
    assert (record.verify, record.identify, record.target_far) == (verify, identify, 0.01)
    assert record.source.startswith("thresholds tab: gallery leave-one-out (24 templates)")
    assert "verify at FAR 0.01" in record.source and "identify at FPIR 0.01" in record.source
    live = window.page("live")
    qtbot.waitUntil(lambda: live.threshold_source.text().startswith("source: store:thresholds tab"), timeout=10000)
    assert live.verify_threshold.value() == pytest.approx(min(1.0, verify), abs=5e-4)
    assert live.identify_threshold.value() == pytest.approx(min(1.0, identify), abs=5e-4)
    assert live.settings.verify_threshold == pytest.approx(live.verify_threshold.value())


def test_log_ticks_thin_out_with_the_range() -> None:
    import numpy as np

    from faceapp.gui.pages.thresholds import log_ticks

    labels = lambda values: [text for _pos, text in log_ticks(np.asarray(values))[0]]   # noqa: E731
    assert labels([0.1, 1.0]) == ["0.1", "0.2", "0.5", "1"]
    assert labels([0.01, 1.0]) == ["0.01", "0.03", "0.1", "0.3", "1"]
    assert labels([0.0014, 1.0]) == ["0.001", "0.01", "0.1", "1"]
    assert log_ticks(np.asarray([0.0, 0.0])) == [[], []]
    assert all(abs(pos - np.log10(float(text))) < 1e-9 for pos, text in log_ticks(np.asarray([1e-4, 0.5]))[0])
