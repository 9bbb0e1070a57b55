"""The Trainer tab's distillation fields: a teacher (listed or typed) and the distillers' weights and
hyper-parameters as form fields, turned into the run's TrainConfig; a bad teacher is reported, not raised."""

from __future__ import annotations

from pathlib import Path


def test_teacher_and_weights_fill_the_config(open_window, qtbot, att: Path, tmp_path: Path) -> None:
    window = open_window("--db", str(tmp_path / "g.db"), "--page", "trainer")
    page = window.page("trainer")
    qtbot.waitUntil(lambda: page.ready, timeout=60000)
    page.data_edit.setText(str(att))
    listed = [page.teacher_box.itemText(i) for i in range(page.teacher_box.count())]
    assert {"mobilefacenet_ms1m", "dlib"} <= set(listed)
    assert set(page.distill_form.fields) == {"embed.weight", "relational.weight", "relational.criterion",
                                             "relational.beta", "relational.center"}
    assert not page.distill_form.isEnabled()                          # no teacher yet
    config = page.build_config()
    assert config.teacher == "" and config.distill_weights() == {}

    page.teacher_box.setCurrentText("mobilefacenet_ms1m")
    assert page.distill_form.isEnabled()
    page.distill_form.set_values({"embed.weight": 0.5, "relational.weight": 4.0, "relational.criterion": "smooth_l1"})
    config = page.build_config()
    assert config.teacher == "mobilefacenet_ms1m"
    assert config.distill_weights() == {"embed": 0.5, "relational": 4.0}
    assert config.distill_params == {"relational.criterion": "smooth_l1"}
    page.distill_form.set_values({"relational.weight": 0.0})          # parameters of an unused term are dropped
    assert page.build_config().distill_params == {}

    page.teacher_box.setEditText(f"onnx:{tmp_path / 'absent.onnx'}")   # typed: any spec the trainer accepts
    page.epochs.setValue(1)
    page.device_box.setCurrentText("cpu")
    page.out_edit.setText(str(tmp_path / "never"))
    page.start()
    qtbot.waitUntil(lambda: any("absent.onnx" in m and "file not found" in m
                                for m in window.banners.messages("error")), timeout=30000)
    qtbot.waitUntil(lambda: not page.training, timeout=30000)
    assert not (tmp_path / "never").exists()
