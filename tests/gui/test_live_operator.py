"""Issue 13 on the Live page, with real widgets, a video file as the camera and a real SQLite gallery: a
fixed-width verdict panel that elides long and right-to-left names at 1024 x 640, the operating point
beside the sliders, the recent-decisions strip with the full audit of a person, the source-health badge,
banners that stay compact and go away when the camera problem does, operator mode, and a tooltip on
every interactive widget."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QRegion
from PySide6.QtWidgets import (
    QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox, QLineEdit, QListWidget, QScrollBar, QTableWidget, QWidget,
)

from faceapp.core.types import Candidate
from faceapp.gui.errors import BannerArea
from faceapp.gui.pages.live import PANEL_WIDTH, overlays_for
from faceapp.matching.matcher import decide_identify
from faceapp.matching.thresholds import far_curve_from_card
from faceapp.services.live import FaceResult, LiveResult, StageTimes

LONG_NAME = "Priya Venkataraman-Subramanian (CelebA 07)"          # 42 characters
RTL_NAME = "عبد الرحمن بن محمد بن عبد العزيز الفيصل"               # 40 characters, Arabic


def _ready(window, qtbot):  # noqa: ANN001, ANN202
    page = window.page("live")
    qtbot.waitUntil(lambda: page.threshold_source.text().startswith("source: store") and page.claim_box.count() == 2,
                    timeout=20000)
    return page


def _inside_window(window, widget: QWidget) -> bool:  # noqa: ANN001
    """The widget is shown, not clipped by the window's right or bottom edge, and painted somewhere."""
    top_left = widget.mapTo(window, QPoint(0, 0))
    rect = QRect(top_left, widget.size())
    return widget.isVisible() and window.rect().contains(rect) and not widget.visibleRegion().isEmpty()


def _named(page, name: str) -> bool:  # noqa: ANN001
    return page.verdict_label.text() == name


@pytest.mark.slow
def test_long_and_right_to_left_names_never_widen_the_panel_at_1024(open_window, db_copy, gui_videos, qtbot):
    window = open_window("--db", str(db_copy), "--page", "live")
    window.resize(1024, 640)
    page = _ready(window, qtbot)
    page.set_mode("identify")
    store = window.ctx.store
    s1 = next(i for i in store.identities.list() if i.name == "s1")
    for name in (LONG_NAME, RTL_NAME):
        store.identities.rename(s1.id, name)
        window.ctx.gallery_changed.emit()
        page.start_source(gui_videos["known"])
        qtbot.waitUntil(lambda name=name: _named(page, name), timeout=30000)
        page.stop()
        qtbot.wait(50)
        label = page.verdict_label
        assert label.is_elided() or label.font().pointSizeF() < 24          # shrunk and/or elided, never wider
        assert label.toolTip() == name                                     # the full name on hover
        assert page.panel_scroll.width() == PANEL_WIDTH + 16
        assert not page.panel_scroll.horizontalScrollBar().isVisible()
        for widget in (page.save_thresholds_button, page.identify_threshold.spin, page.verify_threshold.spin,
                       page.latency_plot.export_button, page.margin_box, label):
            assert _inside_window(window, widget), f"{widget.objectName() or type(widget).__name__} is clipped"
        rows = [page.candidates.item(i).text() for i in range(page.candidates.count())]
        assert rows[1].startswith(f"1. {name}")
        assert page.candidates.horizontalScrollBar().maximum() == 0


def _fully_shown(widget: QWidget) -> bool:
    """Shown and painted whole: no part clipped by a scroll area, the window's edge or a neighbour."""
    return widget.isVisible() and (QRegion(widget.rect()) - widget.visibleRegion()).isEmpty()


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_save_the_spin_boxes_and_export_are_whole_at_1024x640_in_both_modes(qtbot, qapp, theme):
    """Issue 13 point 1: at 1024 x 640 "Save for model" was cut off at the bottom of the answer panel (two-line
    operating-point read-outs and the candidate list's size hint made the panel scroll vertically)."""
    import json
    from pathlib import Path

    from faceapp.app.live import Panel
    from faceapp.gui import theme as themes
    from faceapp.gui.app import build_parser, create_window
    from faceapp.services.operating_point import model_readouts

    card = json.loads((Path(__file__).parents[2] / "models" / "default" / "model_card.json").read_text())
    window = create_window(build_parser().parse_args(["--page", "live"]), load=False)
    qtbot.addWidget(window)
    themes.apply_theme(qapp, theme)
    try:
        window.resize(1024, 640)
        window.show()
        page = window.page("live")
        # what the model emits with the default model's calibration, N = 5 (the longest read-outs: FPIR at N)
        page._operating_points_changed(model_readouts(card, verify=0.3517, identify=0.4261, gallery_size=5))
        for mode in ("identify", "verify"):
            page.set_mode(mode)
            hint = f"{LONG_NAME} 0.612 and Celeb 07488 0.596 are within 0.030: check the person."
            page._show_panel(Panel("Ambiguous", "verdict-ambiguous", name=LONG_NAME, score=0.612, threshold=0.4261,
                                   ambiguous=True, runner_up="Celeb 07488", hint=hint) if mode == "identify"
                             else Panel("NO MATCH", "verdict-nomatch", name=LONG_NAME, score=0.2, threshold=0.3517))
            qtbot.wait(20)
            for slider in (page.identify_threshold, page.verify_threshold):
                readout = slider.operating_point
                assert readout.text().startswith(("FAR ", "FPIR "))
                assert readout.height() < 2 * readout.fontMetrics().height()         # one line
            assert page.panel_scroll.verticalScrollBar().maximum() == 0, f"{mode}: the answer panel scrolls"
            for widget in (page.save_thresholds_button, page.identify_threshold.spin, page.verify_threshold.spin,
                           page.margin_box, page.latency_plot.export_button, page.verdict_label):
                assert _fully_shown(widget), f"{theme} {mode}: {widget.objectName() or type(widget).__name__} is cut"
    finally:
        themes.apply_theme(qapp, "dark")
        window.close()


def test_unknown_overlays_carry_no_name_and_close_calls_read_ambiguous():
    aligned = SimpleNamespace(image=np.zeros((112, 112, 3), np.uint8), face=SimpleNamespace(
        box=(10, 10, 50, 50), is_fallback=False, five_points=None, landmarks=None))

    def result(first: float, second: float) -> LiveResult:
        ranked = (Candidate(1, "Celeb 07488", first), Candidate(2, "Priya", second))
        face = FaceResult(aligned, candidates=ranked, identify=decide_identify(ranked, 0.5, 0.03))
        return LiveResult(frame=SimpleNamespace(image=None), faces=[face], times=StageTimes())

    unknown = overlays_for(result(0.315, 0.2))[0]
    assert unknown.label == "Unknown" and "Celeb" not in unknown.detail and unknown.detail == "0.315 < 0.500"
    close = overlays_for(result(0.612, 0.596))[0]
    assert close.label == "Ambiguous: Celeb 07488 / Priya" and close.color == "warn"
    assert overlays_for(result(0.7, 0.5))[0].label == "Celeb 07488"



def test_a_match_withheld_for_liveness_is_not_drawn_as_a_named_match_on_the_video():
    """The panel says LIVENESS REQUIRED: the box over the face must not say the name in the match colour."""
    from faceapp.services.live import LiveSettings

    aligned = SimpleNamespace(image=np.zeros((112, 112, 3), np.uint8), face=SimpleNamespace(
        box=(10, 10, 50, 50), is_fallback=False, five_points=None, landmarks=None))
    ranked = (Candidate(1, "Priya", 0.8), Candidate(2, "Celeb 07488", 0.3))
    result = LiveResult(frame=SimpleNamespace(image=None), times=StageTimes(),
                        faces=[FaceResult(aligned, candidates=ranked, identify=decide_identify(ranked, 0.5, 0.03))])
    settings = LiveSettings(liveness_mode="passive", require_liveness=True)
    withheld = overlays_for(result, settings)[0]
    assert withheld.color != "good" and "LIVENESS REQUIRED" in withheld.label and "Priya" in withheld.label
    settings.require_liveness = False
    shown = overlays_for(result, settings)[0]
    assert shown.color == "good" and shown.label == "Priya"


def test_operating_point_beside_the_sliders_and_uncalibrated_in_warning_colour(open_window, db_copy, qtbot):
    window = open_window("--db", str(db_copy), "--page", "live")
    page = _ready(window, qtbot)
    gallery = window.ctx.gallery
    calibrated = far_curve_from_card(gallery.card) is not None
    readout = page.verify_threshold.operating_point
    qtbot.waitUntil(lambda: readout.isVisible(), timeout=5000)
    if calibrated:
        assert readout.text().startswith("FAR ") and readout.property("role") == "muted"
        assert page.identify_threshold.operating_point.text().startswith("FPIR ")
        assert "at N=2" in page.identify_threshold.operating_point.text()
    gallery.card = {k: v for k, v in gallery.card.items() if k != "thresholds"}
    page.verify_threshold.setValue(0.61)                                  # moving it re-reads the calibration
    assert readout.text() == "uncalibrated" and readout.property("role") == "status-warn"
    assert "Lower it" in page.verify_threshold.slider.toolTip()
    curve = {"threshold": [0.0, 0.5, 1.0], "far": [0.2, 0.002, 0.0], "frr": [0.0, 0.01, 1.0],
             "impostor_pairs": 1000, "genuine_pairs": 100}
    gallery.card = {**gallery.card, "thresholds": {"far_curve": curve}}
    page.verify_threshold.setValue(0.5)
    assert readout.text() == "FAR 0.2 % · FRR 1.0 %" and readout.property("role") == "muted"


def test_the_thresholds_tab_sliders_show_the_operating_point_too(open_window, db_copy, qtbot):
    """Issue 13 point 2 ("beside every threshold control"): the Thresholds tab's sliders showed a bare cosine."""
    window = open_window("--db", str(db_copy), "--page", "thresholds")
    page = window.page("thresholds")
    gallery = window.ctx.gallery
    verify, identify = page.threshold.operating_point, page.identify_slider.operating_point
    qtbot.waitUntil(lambda: identify.isVisible() and verify.isVisible(), timeout=10000)
    calibrated = far_curve_from_card(gallery.card) is not None
    assert identify.text().startswith("FPIR " if calibrated else "uncalibrated")
    curve = {"threshold": [0.0, 0.5, 1.0], "far": [0.2, 0.002, 0.0], "frr": [0.0, 0.01, 1.0],
             "impostor_pairs": 1000, "genuine_pairs": 100}
    gallery.card = {**gallery.card, "thresholds": {"far_curve": curve}}
    page.threshold.setValue(0.5)
    assert verify.text() == "FAR 0.2 % · FRR 1.0 %" and verify.property("role") == "muted"
    page.gallery_size.setValue(10)
    page.identify_slider.setValue(0.5)
    assert identify.text().startswith("FPIR 2.0 % at N=10")            # 1 - (1 - 0.002)^10
    assert "strangers named" in page.identify_slider.slider.toolTip()      # what moving it trades
    gallery.card = {k: v for k, v in gallery.card.items() if k != "thresholds"}
    page.identify_slider.setValue(0.6)
    assert identify.text() == "uncalibrated" and identify.property("role") == "status-warn"


@pytest.mark.slow
def test_recent_strip_health_badge_and_the_full_audit_of_a_person(open_window, db_copy, gui_videos, qtbot):
    window = open_window("--db", str(db_copy), "--page", "live")
    page = _ready(window, qtbot)
    assert page.view.health_text == "■ STOPPED"
    page.set_mode("identify")
    page.start_source(gui_videos["known"])
    qtbot.waitUntil(lambda: page.verdict_label.text() == "s1", timeout=30000)
    qtbot.waitUntil(lambda: page.view.health_text.startswith("● LIVE 640×480"), timeout=10000)
    assert "dropped" in page.view.health_text
    image = page.view._image                                              # handed over already scaled to the view
    assert image.width() <= page.view.width() and image.height() <= page.view.height()
    qtbot.waitUntil(lambda: page.recent_list.count() >= 1, timeout=10000)
    page.stop()
    assert page.view.health_text == "■ STOPPED"
    first = page.recent_list.item(0)
    assert "s1" in first.text() and not first.icon().isNull() and page.model.recent[0].operator in first.text()
    page.recent_filter.setText("nobody-like-this")
    assert page.recent_list.count() == 0
    page.recent_filter.setText("S1")
    assert page.recent_list.count() >= 1
    page._recent_double_clicked(page.recent_list.item(0))
    qtbot.waitUntil(lambda: page.audit_dialog is not None, timeout=10000)
    table = page.audit_dialog.findChild(QTableWidget)
    operations = {table.item(r, 1).text() for r in range(table.rowCount())}
    assert "identify" in operations and "enroll" in operations            # the person's whole history
    page.audit_dialog.close()


def test_a_camera_banner_goes_away_when_a_video_starts_and_banners_stay_compact(open_window, db_copy, gui_videos,
                                                                               qtbot):
    window = open_window("--db", str(db_copy), "--page", "live")
    page = _ready(window, qtbot)
    page.open_source = lambda spec, **_: (_ for _ in ()).throw(__import__("faceapp.core.errors", fromlist=["x"])
                                                                .CameraError("camera 0 not found"))
    page.start_source(0)
    qtbot.waitUntil(lambda: any("camera 0 not found" in m for m in window.banners.messages("error")), timeout=10000)
    assert page.verdict_label.text() == "SOURCE FAILED" and page.view.health_text == "✕ SOURCE FAILED"
    from faceapp.capture.sources import VideoFileSource

    page.open_source = lambda spec, **_: VideoFileSource(spec)
    page.start_source(str(gui_videos["known"]))
    qtbot.waitUntil(lambda: not any("camera 0" in m for m in window.banners.messages()), timeout=10000)
    page.stop()


def test_stacked_banners_take_the_room_of_one(qtbot):
    area = BannerArea()
    qtbot.addWidget(area)
    area.resize(1000, 300)
    area.show()
    area.show_message("one", "info")
    single = area.sizeHint().height()
    for text in ("camera 0 not found", "model untrained", "no landmarker"):
        area.show_message(text, "warning")
    assert area.sizeHint().height() < single + 40                          # was 4 banners stacked (~150 px)
    assert area.more_button.isVisible() and area.more_button.text() == "3 more messages ▾"
    area.toggle_expanded()
    assert area.sizeHint().height() > single * 3
    area.dismiss_text("camera 0 not found")
    assert "camera 0 not found" not in area.messages()


def test_operator_mode_hides_the_analyst_pages_and_is_remembered(qtbot):
    from faceapp.gui.app import build_parser, create_window
    from faceapp.gui.settings import settings_path

    settings_path().unlink(missing_ok=True)
    window = create_window(build_parser().parse_args([]), load=False)
    qtbot.addWidget(window)
    window.show_page("thresholds")
    window.operator_action.trigger()
    assert window.operator_mode and window.current_page.key == "live"
    assert not {"trainer", "embeddings", "thresholds"} & set(window.visible_page_keys())
    assert {"live", "enroll", "identities"} <= set(window.visible_page_keys())
    window.close()
    again = create_window(build_parser().parse_args([]), load=False)
    qtbot.addWidget(again)
    assert again.operator_mode and again.operator_action.isChecked()
    again.set_operator_mode(False)
    assert "trainer" in again.visible_page_keys()
    again.close()


INTERACTIVE = (QAbstractButton, QComboBox, QAbstractSpinBox, QAbstractSlider, QLineEdit, QListWidget)


def test_every_interactive_widget_of_the_live_page_and_the_window_has_a_tooltip(qtbot):
    from faceapp.gui.app import build_parser, create_window

    window = create_window(build_parser().parse_args([]), load=False)
    qtbot.addWidget(window)
    window.show_message("warning", "a banner with its buttons")
    page = window.page("live")
    others = [window.page(k) for k in window.page_keys() if k != "live"]
    missing = []
    for widget in window.findChildren(QWidget):
        if (not isinstance(widget, INTERACTIVE) or isinstance(widget, QScrollBar)
                or widget.objectName().startswith("qt_")):
            continue                                                      # Qt's own (menu-bar overflow...)
        if any(other.isAncestorOf(widget) for other in others):
            continue                                                      # other pages: not this issue part
        if widget.parent() is not None and type(widget.parent()).__name__ in ("QAbstractSpinBox", "QComboBox"):
            continue
        if not widget.toolTip() and not (widget.parent() and widget.parent().toolTip()):
            missing.append(f"{type(widget).__name__} {widget.objectName()!r} "
                           f"{getattr(widget, 'text', lambda: '')()!r} in {'Live' if page.isAncestorOf(widget) else 'window'}")
    assert not missing, "no tooltip: " + "; ".join(missing)
    window.close()
