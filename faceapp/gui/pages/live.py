"""Live page: a camera, video or images through detect -> align -> embed -> match, drawn as it happens.

Identify mode shows the top-k candidates with thumbnails and "Unknown" under the threshold; Verify
mode a large MATCH / NO MATCH for the claimed identity. Threshold sliders act at once (the shown
result is re-decided by the matcher from its scores) and "Save" stores them for the active model; they
hold the stored value exactly (shown rounded), so a model card's 0.5016 is decided and saved as 0.5016.
A warning stays on the page while the active model has no calibrated thresholds or some enrolled
identities have no template of it. The live loop runs on its own thread (``LiveThread``); frames are
dropped, not queued, when the pipeline is behind.

The view of ``faceapp.app.live.LiveModel``, which holds the session's settings, the result on screen, the
warnings and the use cases; this class owns the widgets and the capture thread and binds them to the model.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView, QButtonGroup, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
    QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QListView, QListWidget, QListWidgetItem, QMessageBox,
    QPushButton, QRadioButton, QScrollArea, QSizePolicy, QStackedWidget, QTableWidget, QTableWidgetItem,
    QVBoxLayout, QWidget,
)

from faceapp.app.live import (
    AUDIT_COLUMNS, RECENT_KINDS, LiveModel, Panel, RecentDecision, describe_source, is_image, parse_source,
)
from faceapp.core.errors import InputFileError
from faceapp.core.paths import data_dir
from faceapp.gui import theme as themes
from faceapp.gui.live_thread import Delivery, LiveThread
from faceapp.gui.pages import Page, register_page
from faceapp.gui.plots import PlotPanel
from faceapp.gui.settings import read_setting, write_setting
from faceapp.gui.widgets.elided_label import ElidedLabel
from faceapp.gui.widgets.images import bgr_to_pixmap
from faceapp.gui.widgets.liveness_badge import ChallengePrompt, LivenessBadge, LivenessControls
from faceapp.gui.widgets.threshold_slider import ThresholdSlider
from faceapp.gui.widgets.video_view import Overlay, VideoView
from faceapp.services.live import FaceResult, LivePipeline, LiveResult

log = logging.getLogger(__name__)

CAMERAS = 4              # camera indices offered in the source picker
STAGES = ("capture", "detect", "embed", "match", "display")
PANEL_WIDTH = 330        # the answer panel's fixed width: long names are shrunk and elided, never widen it
SLOW_REFRESH_S = 0.25    # candidates, timings, plot and status bar refresh at most 4 times a second


__all__ = ["LivePage", "describe_source", "overlays_for", "parse_source"]


def overlays_for(result: LiveResult, settings: Any = None) -> list[Overlay]:
    """Boxes, points, names and scores to draw for a result. An unknown face carries no name (only its
    best score under the threshold); an ambiguous one (the matcher's decision: top two within the margin)
    reads "Ambiguous" with both names; an accepting answer that ``settings`` (LiveSettings) withhold until
    liveness passes reads "LIVENESS REQUIRED" in the no-match colour, as the answer panel does."""
    from faceapp.services.live_liveness import withheld_by_liveness

    overlays = []
    for index, fr in enumerate(result.faces):
        face = fr.face
        color, detail, label = "accent", "", fr.label
        if fr.verify is not None:
            color = "good" if fr.verify.match else "bad"
            detail = f"{fr.verify.score:.3f} {'>=' if fr.verify.match else '<'} {fr.verify.threshold:.3f}"
        elif fr.identify is not None:
            decision = fr.identify
            best = decision.best
            color = "unknown" if decision.is_unknown else "good"
            if best is not None:
                above = not decision.is_unknown
                detail = f"{best.score:.3f} {'>=' if above else '<'} {decision.threshold:.3f}"
            if decision.ambiguous:
                color, label = "warn", f"Ambiguous: {best.name} / {decision.runner_up.name}"
        elif fr.embedding is None and result.mode != "detect" and index > 0:
            detail = "not matched (max faces)"
        if settings is not None and withheld_by_liveness(fr, settings) is not None:
            color, label = "bad", f"LIVENESS REQUIRED: {label}"
        if face.is_fallback:
            color = "warn" if color == "accent" else color
            detail = (detail + " " if detail else "") + f"[{face.detector.value}]"
        overlays.append(Overlay(box=face.box, label=label, detail=detail, color=color,
                                five_points=face.five_points, landmarks=face.landmarks))
    return overlays


@register_page("live", "Live", order=10, tooltip="Camera, video or images: detect, identify or verify live")
class LivePage(Page):
    """Camera, video or images: detect, identify or verify live."""

    SHORTCUTS = (("Space", "Live: start / stop"), ("Ctrl+S", "Live: snapshot"), ("L", "Live: landmarks on/off"),
                 ("I / V", "Live: identify / verify mode"))

    def __init__(self, ctx, parent: QWidget | None = None) -> None:  # noqa: ANN001 - AppContext
        super().__init__(ctx, parent)
        self.model = LiveModel(ctx, ctx.run, mode=read_setting("live/mode", "identify", str),
                               startup_source=ctx.options.source)
        self.settings = self.model.settings
        self.thread: LiveThread | None = None
        self._thumbs: dict[int, Any] = {}      # identity id -> QPixmap of the model's crop
        self.still_interval_s = 1.5
        self.save_dialog: QMessageBox | None = None    # the open "save thresholds?" confirmation
        self.audit_dialog: QDialog | None = None       # the open full audit of a person
        self._source_error_text = ""                   # the banner of the last source failure (retracted on success)
        self._slow_refresh_at = 0.0                    # when candidates, timings and plot were last refreshed
        self._build()
        remembered = read_setting("live/source", "", str)
        if remembered and not ctx.options.source:
            self._remember_source(parse_source(remembered))
        model = self.model
        model.warnings_changed.connect(self._show_warnings)
        model.identities_loaded.connect(self._identities_loaded)
        model.thresholds_loaded.connect(self._thresholds_loaded)
        model.threshold_source_changed.connect(self.threshold_source.setText)
        model.thresholds_saved.connect(self._thresholds_saved)
        model.mode_changed.connect(self._mode_changed)
        model.result_changed.connect(self._result_changed)
        model.thumbs_loaded.connect(self._thumbs_loaded)
        model.start_requested.connect(self._start_requested)
        model.message.connect(self.model_message)
        model.operating_points_changed.connect(self._operating_points_changed)
        model.recent_changed.connect(self._recent_changed)
        model.audit_loaded.connect(self._show_audit)
        ctx.services_changed.connect(self._services_changed)
        ctx.gallery_changed.connect(self._gallery_changed)
        ctx.thresholds_changed.connect(model.load_thresholds)
        ctx.thresholds_changed.connect(model.check_readiness)
        themes.notifier().changed.connect(self._theme_changed)
        self._services_changed()
        self._show_health()

    # the model's state, as the tests, the bench and other pages read it
    gui_fps = property(lambda self: self.model.gui_fps)
    display_ms = property(lambda self: self.model.display_ms)
    source_spec = property(lambda self: self.model.source_spec)

    # ================================================================ layout
    def _build(self) -> None:
        outer = QHBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.addWidget(self._build_video_column(), 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)    # fixed width: never scrolls sideways
        scroll.setWidget(self._build_panel())
        scroll.setFixedWidth(PANEL_WIDTH + 16)
        self.panel_scroll = scroll
        outer.addWidget(scroll)
        self._update_mode_widgets()

        for keys, slot in (("Space", self.toggle), ("Ctrl+S", self._snapshot_clicked), ("L", self.landmarks_box.toggle),
                           ("I", self.identify_radio.click), ("V", self.verify_radio.click)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    def _build_video_column(self) -> QWidget:
        """The video with its source bar, the timings and the strip of recent decisions."""
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.setSpacing(4)
        self.warning = QLabel("")
        self.warning.setProperty("role", "status-warn")
        self.warning.setWordWrap(True)
        self.warning.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.warning.hide()
        left_layout.addWidget(self.warning)
        self.view = VideoView()
        self.view.setToolTip("The live view: drop image files here to identify or verify them")
        self.view.files_dropped.connect(self._files_dropped)
        self.challenge_prompt = ChallengePrompt(self.view)     # "Blink", "Turn your head left" over the video
        left_layout.addWidget(self.view, 1)
        bar = QHBoxLayout()
        self.source_box = QComboBox()
        for index in range(CAMERAS):
            self.source_box.addItem(f"Camera {index}", index)
        self.source_box.addItem("Video file...", "video")
        self.source_box.addItem("Image files...", "images")
        self.source_box.setToolTip("Where frames come from; image files can also be dropped on the view")
        self.source_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.source_box.setMinimumContentsLength(12)
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start or stop the live view (Space)")
        self.start_button.clicked.connect(self.toggle)
        self.landmarks_box = QCheckBox("Landmarks")
        self.landmarks_box.setToolTip("Draw the face landmarks (L)")
        self.landmarks_box.toggled.connect(self._landmarks_toggled)
        self.snapshot_button = QPushButton("Snapshot")
        self.snapshot_button.setToolTip("Save the current frame with its overlays (Ctrl+S)")
        self.snapshot_button.clicked.connect(self._snapshot_clicked)
        bar.addWidget(QLabel("Source"))
        bar.addWidget(self.source_box, 1)
        bar.addWidget(self.start_button)
        bar.addWidget(self.landmarks_box)
        bar.addWidget(self.snapshot_button)
        left_layout.addLayout(bar)
        self.fps_label = QLabel("FPS -")
        self.fps_label.setProperty("role", "heading")
        self.fps_label.setToolTip("frames painted per second / frames the pipeline finished per second")
        self.stage_label = ElidedLabel(self.model.stage_text(None), elide=Qt.TextElideMode.ElideRight)
        self.stage_label.setProperty("role", "muted")
        perf_row = QHBoxLayout()
        perf_row.addWidget(self.fps_label)
        perf_row.addWidget(self.stage_label, 1)
        left_layout.addLayout(perf_row)
        bottom = QHBoxLayout()
        bottom.addWidget(self._build_recent(), 3)
        self.latency_plot = PlotPanel("Processing time per frame", y_label="ms", legend=False)
        self.latency_plot.setFixedHeight(118)
        self.latency_plot.setMinimumWidth(200)
        self.latency_plot.widget.setToolTip("Detect + embed + match time of the recent frames (ms)")
        self.latency_curve = self.latency_plot.line([], [], name="total")
        bottom.addWidget(self.latency_plot, 2)
        left_layout.addLayout(bottom)
        return left

    def _build_recent(self) -> QWidget:
        """The strip of recent decisions (from the audit log), with a filter and the full audit of a person."""
        box = QGroupBox("Recent decisions")
        layout = QVBoxLayout(box)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(3)
        row = QHBoxLayout()
        self.recent_filter = QLineEdit()
        self.recent_filter.setPlaceholderText("Filter by name")
        self.recent_filter.setClearButtonEnabled(True)
        self.recent_filter.setToolTip("Show only the decisions whose name contains this text")
        self.recent_kind = QComboBox()
        for kind in RECENT_KINDS:
            label = {"all": "All decisions", "liveness-required": "Withheld"}.get(kind, kind.replace("-", " ").title())
            self.recent_kind.addItem(label, kind)
        self.recent_kind.setToolTip("Show only one kind of decision (named, ambiguous, unknown, match, no match, "
                                    "withheld: a MATCH held back until liveness passes)")
        self.recent_filter.textChanged.connect(self._recent_filter_changed)
        self.recent_kind.currentIndexChanged.connect(self._recent_filter_changed)
        self.audit_button = QPushButton("Full audit…")
        self.audit_button.setToolTip("The audit behind the selected decision: every event of its person, or the "
                                     "Unknown decision's own row (double-click a decision)")
        self.audit_button.clicked.connect(self._open_selected_audit)
        row.addWidget(self.recent_filter, 1)
        row.addWidget(self.recent_kind)
        row.addWidget(self.audit_button)
        layout.addLayout(row)
        self.recent_list = QListWidget()
        self.recent_list.setToolTip("Decisions of this workstation, newest first (from the audit log); "
                                    "double-click one for the person's full audit")
        self.recent_list.setFlow(QListView.Flow.LeftToRight)
        self.recent_list.setWrapping(False)
        self.recent_list.setViewMode(QListView.ViewMode.ListMode)
        self.recent_list.setIconSize(QSize(40, 40))
        self.recent_list.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.recent_list.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.recent_list.setFixedHeight(64)
        self.recent_list.setSpacing(2)
        self.recent_list.itemDoubleClicked.connect(self._recent_double_clicked)
        layout.addWidget(self.recent_list)
        return box

    def _build_panel(self) -> QWidget:
        """The fixed-width answer panel: mode, verdict, candidates, thresholds with their operating point, timings."""
        panel = QWidget()
        panel.setFixedWidth(PANEL_WIDTH)
        panel_layout = QVBoxLayout(panel)
        panel_layout.setContentsMargins(4, 0, 4, 0)

        mode_box = QGroupBox("Mode")
        mode_layout = QHBoxLayout(mode_box)
        self.identify_radio = QRadioButton("Identify (1:N)")
        self.identify_radio.setToolTip("Who is this? The best enrolled identity, or Unknown (I)")
        self.verify_radio = QRadioButton("Verify (1:1)")
        self.verify_radio.setToolTip("Is this the claimed identity? MATCH or NO MATCH (V)")
        self.mode_group = QButtonGroup(self)
        self.mode_group.addButton(self.identify_radio)
        self.mode_group.addButton(self.verify_radio)
        mode_layout.addWidget(self.identify_radio)
        mode_layout.addWidget(self.verify_radio)
        (self.verify_radio if self.settings.mode == "verify" else self.identify_radio).setChecked(True)
        self.mode_group.buttonToggled.connect(self._mode_toggled)
        panel_layout.addWidget(mode_box)

        claim_row = QWidget()
        form = QFormLayout(claim_row)
        form.setContentsMargins(0, 0, 0, 0)
        self.claim_box = QComboBox()
        self.claim_box.setToolTip("The identity the person claims to be")
        self.claim_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.claim_box.setMinimumContentsLength(10)
        self.claim_box.currentIndexChanged.connect(self._claim_changed)
        form.addRow("Claimed identity", self.claim_box)
        self.claim_row = claim_row
        panel_layout.addWidget(claim_row)

        # the verdict: one headline for both modes (identify and verify share it), then the name and numbers
        self.verdict_label = ElidedLabel("-", point_size=24, min_point_size=11, bold=True)
        self.verdict_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.verdict_label.setProperty("role", "verdict-idle")
        self.verdict_label.setMinimumHeight(56)
        self.identity_label = self.verdict_label               # identify's answer (the same label)
        panel_layout.addWidget(self.verdict_label)
        self.liveness_badge = LivenessBadge()                  # live / attack suspected / not checked (tooltip: why)
        panel_layout.addWidget(self.liveness_badge)
        self.verdict_name = ElidedLabel("", point_size=12, bold=True)
        self.verdict_name.setAlignment(Qt.AlignmentFlag.AlignCenter)
        panel_layout.addWidget(self.verdict_name)
        self.verdict_numbers = QLabel("")
        self.verdict_numbers.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.verdict_numbers.setProperty("role", "muted")
        self.verdict_numbers.setToolTip("score of the face · the threshold in use · how far above (+) or below (-)")
        panel_layout.addWidget(self.verdict_numbers)
        self.verdict_detail = QLabel("")
        self.verdict_detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.verdict_detail.setWordWrap(True)
        self.verdict_detail.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Maximum)
        self.verdict_detail.setProperty("role", "status-warn")
        panel_layout.addWidget(self.verdict_detail)

        self.answer_stack = QStackedWidget()
        self.candidates = QListWidget()
        self.candidates.setIconSize(QSize(40, 40))
        self.candidates.setMinimumHeight(70)
        # the list takes the room left, never more: its default size hint (~190 px) made the panel scroll at 640 px
        self.candidates.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.candidates.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.candidates.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.candidates.setToolTip("The best enrolled identities for this face, best first, with their scores")
        self.answer_stack.addWidget(self.candidates)
        self.answer_stack.addWidget(QWidget())                 # verify: nothing under the verdict
        panel_layout.addWidget(self.answer_stack, 1)
        self._verify_room = QWidget()            # verify has no candidates: the free room goes here
        self._verify_room.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        panel_layout.addWidget(self._verify_room, 1)

        thresholds = QGroupBox("Thresholds (cosine)")
        t_layout = QFormLayout(thresholds)
        t_layout.setContentsMargins(6, 4, 6, 4)
        # exact values: the model's 0.5016 is shown rounded but decided and saved as 0.5016
        self.identify_threshold = ThresholdSlider(0.0, 1.0, steps=1000, decimals=4)
        self.verify_threshold = ThresholdSlider(0.0, 1.0, steps=1000, decimals=4)
        self.identify_threshold.setValue(self.settings.identify_threshold)
        self.verify_threshold.setValue(self.settings.verify_threshold)
        self.identify_threshold.value_changed.connect(self._thresholds_moved)
        self.verify_threshold.value_changed.connect(self._thresholds_moved)
        t_layout.addRow("Identify", self.identify_threshold)
        t_layout.addRow("Verify", self.verify_threshold)
        self.margin_box = QDoubleSpinBox()
        self.margin_box.setRange(0.0, 0.5)
        self.margin_box.setDecimals(3)
        self.margin_box.setSingleStep(0.005)
        self.margin_box.setValue(self.model.ambiguity_margin)
        self.margin_box.setToolTip("Ambiguity margin: an identify answer whose top two identities score closer "
                                   "than this names nobody and reads \"Ambiguous\" (audited so; 0 turns it off)")
        self.margin_box.valueChanged.connect(self.model.set_ambiguity_margin)
        t_layout.addRow("Ambiguity", self.margin_box)
        row = QHBoxLayout()
        self.threshold_source = ElidedLabel("source: -")
        self.threshold_source.setProperty("role", "muted")
        self.save_thresholds_button = QPushButton("Save for model")
        self.save_thresholds_button.setToolTip("Store these thresholds for the active model (asks first, "
                                               "showing the old and new values)")
        self.save_thresholds_button.clicked.connect(self.save_thresholds)
        row.addWidget(self.threshold_source, 1)
        row.addWidget(self.save_thresholds_button)
        t_layout.addRow(row)
        panel_layout.addWidget(thresholds)
        self.liveness_controls = LivenessControls(self.settings.liveness_mode, self.settings.require_liveness)
        self.liveness_controls.changed.connect(lambda mode, require: self.model.set_liveness(mode, require=require))
        self.liveness_controls.restart.connect(self.model.restart_challenge)
        panel_layout.addWidget(self.liveness_controls)
        return panel

    # ================================================================ services
    def _services_changed(self) -> None:
        self.save_thresholds_button.setEnabled(self.ctx.gallery is not None)
        self.model.services_changed()

    def _gallery_changed(self) -> None:
        self._thumbs.clear()
        self.model.gallery_changed()

    def _show_warnings(self, lines: list[str]) -> None:
        """The page's persistent warning: what is wrong with the services, then with the active model."""
        self.warning.setText("\n".join(lines))
        self.warning.setVisible(bool(lines))

    def _identities_loaded(self, identities: list) -> None:
        current = self.claim_box.currentData()
        self.claim_box.blockSignals(True)
        self.claim_box.clear()
        for info in identities:
            self.claim_box.addItem(f"{info.name}  ({info.template_count})", info.id)
        index = self.claim_box.findData(current) if current is not None else -1
        self.claim_box.setCurrentIndex(index if index >= 0 else (0 if identities else -1))
        self.claim_box.blockSignals(False)
        self._claim_changed()

    def _thresholds_loaded(self, thresholds: Any) -> None:
        self.identify_threshold.setValue(thresholds.identify)      # exact (the sliders keep the stored float)
        self.verify_threshold.setValue(thresholds.verify)

    def save_thresholds(self) -> None:
        """Ask (old and new values with their operating points), then store the slider values, exactly, as
        the active model's thresholds (on a worker, through the one route
        ``faceapp.services.thresholds.save_thresholds``)."""
        self.model.set_thresholds(self.identify_threshold.value(), self.verify_threshold.value())
        box = QMessageBox(QMessageBox.Icon.Question, "Save thresholds for the model",
                          "Store these thresholds for the active model? Every desk using this database decides "
                          "with them from now on.", QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Cancel,
                          self)
        box.setInformativeText(self.model.save_summary())
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(self._save_answered)
        self.save_dialog = box
        box.open()

    def _save_answered(self, answer: int) -> None:
        self.save_dialog = None
        if answer == QMessageBox.StandardButton.Save:
            self.model.save_thresholds()

    def _operating_points_changed(self, readouts: dict) -> None:
        for kind, slider in (("identify", self.identify_threshold), ("verify", self.verify_threshold)):
            point = readouts[kind]
            slider.set_operating_point(point.text, calibrated=point.calibrated, tooltip=point.tooltip)

    def _thresholds_saved(self, _record: Any) -> None:
        self.ctx.thresholds_changed.emit()

    # ================================================================ controls
    def _mode_toggled(self, button: Any, checked: bool) -> None:
        if checked:
            self.set_mode("verify" if button is self.verify_radio else "identify")

    def set_mode(self, mode: str) -> None:
        """Switch between "identify" and "verify" (applies from the next frame)."""
        self.model.set_mode(mode)

    def _mode_changed(self, mode: str) -> None:
        radio = self.verify_radio if mode == "verify" else self.identify_radio
        if not radio.isChecked():
            radio.setChecked(True)
        write_setting("live/mode", mode)
        self._update_mode_widgets()

    def _update_mode_widgets(self) -> None:
        verify = self.settings.mode == "verify"
        self.answer_stack.setCurrentIndex(1 if verify else 0)
        self.answer_stack.setVisible(not verify)
        self._verify_room.setVisible(verify)
        self.claim_row.setVisible(verify)
        self._show_answer(self.result)

    def _claim_changed(self, *_: Any) -> None:
        self.model.set_claimed(self.claim_box.currentData(), self.claim_box.currentText())

    def set_claimed(self, identity_id: int) -> None:
        """Choose the claimed identity for verify mode by id (must be in the list)."""
        index = self.claim_box.findData(identity_id)
        if index < 0:
            raise KeyError(f"identity {identity_id} is not in the list")
        self.claim_box.setCurrentIndex(index)
        self._claim_changed()

    def _thresholds_moved(self, _value: float) -> None:
        self.model.set_thresholds(self.identify_threshold.value(), self.verify_threshold.value())

    def _landmarks_toggled(self, on: bool) -> None:
        self.view.show_landmarks = on
        self.view.update()

    def _theme_changed(self, _theme: Any) -> None:
        themes.repolish(self.verdict_label)

    # ================================================================ sources
    def toggle(self) -> None:
        """Start the chosen source, or stop the running one."""
        if self.running:
            self.stop()
            return
        choice = self.source_box.currentData()
        if choice == "video":
            path, _ = QFileDialog.getOpenFileName(self, "Open a video", str(Path.home()),
                                                  "Videos (*.avi *.mp4 *.mkv *.mov *.m4v *.webm *.mpg *.wmv);;All files (*)")
            if path:
                self.start_source(path)
        elif choice == "images":
            paths, _ = QFileDialog.getOpenFileNames(self, "Open images", str(Path.home()),
                                                    "Images (*.jpg *.jpeg *.png *.pgm *.ppm *.bmp *.webp *.tif *.tiff)")
            if paths:
                self.start_source(paths)
        elif isinstance(choice, int):
            self.start_source(choice)
        else:
            parts = str(choice).split("\n")
            self.start_source(parts if len(parts) > 1 or is_image(parts[0]) else parts[0])

    def _files_dropped(self, paths: list) -> None:
        from faceapp.capture.images import is_image_path

        images = [p for p in paths if is_image_path(p)]
        if not images:
            self.ctx.report_error(InputFileError("dropped files are not images (" +
                                                 ", ".join(Path(p).name for p in paths[:3]) + ")"), "Live")
            return
        self.start_source(images)

    @staticmethod
    def open_source(spec: Any, *, loop: bool = False, realtime: bool = True) -> Any:
        """Open a frame source (runs on the live thread); replaceable, e.g. by a simulated camera in tests."""
        from faceapp.capture.sources import open_source

        return open_source(spec, loop=loop, realtime=realtime)

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def start_source(self, spec: int | str | Path | Sequence[str | Path], *, loop: bool = False) -> None:
        """Open ``spec`` (camera index, video, image file or list of images) and start the live loop."""
        self.stop()
        spec = self.model.begin(spec, loop=loop)
        self._remember_source(spec)
        ctx = self.ctx

        def open_it() -> Any:
            return self.open_source(spec, loop=loop, realtime=True)

        thread = LiveThread(open_it, self._make_live, still_interval_s=self.still_interval_s)
        thread.opened.connect(self._opened)
        thread.result_ready.connect(self._take_result)
        thread.failed.connect(self._failed)
        thread.ended.connect(self._ended)
        thread.finished.connect(self._thread_finished)
        self.thread = thread
        self.model.running = True
        self.start_button.setText("Stop")
        ctx.status.emit("camera", f"{describe_source(spec)} (opening...)", "")
        if not isinstance(spec, list):
            write_setting("live/source", f"camera:{spec}" if isinstance(spec, int) else str(spec))
        thread.start()

    def _start_requested(self, spec: Any, loop: bool) -> None:
        self.start_source(spec, loop=loop)

    def _remember_source(self, spec: int | str | list[str]) -> None:
        """Show a file source in the picker (so Start replays it)."""
        if isinstance(spec, int):
            index = self.source_box.findData(spec)
        else:
            key = spec if isinstance(spec, str) else "\n".join(spec)
            index = self.source_box.findData(key)
            if index < 0:
                label = Path(spec).name if isinstance(spec, str) else f"{len(spec)} image(s)"
                self.source_box.insertItem(CAMERAS, label, key)
                self.source_box.setItemData(CAMERAS, key if isinstance(spec, str) else "\n".join(spec),
                                            Qt.ItemDataRole.ToolTipRole)
                index = CAMERAS
        if index >= 0:
            self.source_box.setCurrentIndex(index)

    def _make_live(self) -> LivePipeline:
        """Build the LivePipeline (runs on the live thread: loads MediaPipe on first use)."""
        return self.model.make_live()

    def stop(self) -> None:
        """Stop the live loop and wait for its thread (the last frame stays on screen)."""
        thread = self.thread
        if thread is None:
            return
        thread.stop()
        if not thread.wait(10000):
            log.warning("the live thread did not stop within 10 s")
        self._take_result()
        self.thread = None
        self.model.running = False
        self.start_button.setText("Start")
        self.ctx.status.emit("fps", "FPS: -", "")
        self._show_answer(self.result)
        self._show_health()

    def _opened(self, description: str) -> None:
        self.ctx.status.emit("camera", f"{describe_source(self.source_spec or description)}", "")
        if self._source_error_text:              # "camera 0 not found" no longer holds: this source runs
            self.ctx.retract(self._source_error_text)
            self._source_error_text = ""
        self._show_health()

    def _failed(self, error: BaseException) -> None:
        from faceapp.gui.errors import describe_error

        self.ctx.report_error(error, "Live view")
        self._source_error_text = describe_error(error, "Live view")[1]
        self.model.source_failed(self._source_error_text)
        self.ctx.status.emit("camera", "Camera: error", "status-bad")
        self._show_answer(self.result if self.view.has_frame else None)
        self._show_health()

    def _ended(self, reason: str) -> None:
        self.ctx.status.emit("camera", "Camera: off", "")
        if reason != "stopped":
            self.ctx.notify(f"Live view: {reason} ({describe_source(self.source_spec or '')}).", "info")

    def _thread_finished(self) -> None:
        if self.thread is not None and not self.thread.isRunning():
            self._take_result()
            self.model.running = False
            self.start_button.setText("Start")
            self._show_answer(self.result)
            self._show_health()

    # ================================================================ results
    def _take_result(self) -> None:
        thread = self.thread
        if thread is None:
            return
        thread.display_size = (self.view.width(), self.view.height())    # the next frames come scaled to it
        delivery = thread.take()
        if delivery is None:
            return
        self._delivery = delivery
        try:
            self.model.take(delivery.result, delivery.ready_at)
        finally:
            self._delivery = None

    _delivery: Delivery | None = None

    def _result_changed(self, result: LiveResult, new_frame: bool) -> None:
        overlays = overlays_for(result, self.model.settings)
        delivery = self._delivery if new_frame else None
        if delivery is not None:
            self.view.set_frame(delivery.image, overlays, frame_size=delivery.frame_size,
                                native=result.frame.image)
        else:
            self.view.set_overlays(overlays)
        now = time.perf_counter()
        slow = not new_frame or now - self._slow_refresh_at >= SLOW_REFRESH_S
        self._show_answer(result, candidates=slow)
        if delivery is not None and slow:
            self._slow_refresh_at = now
            self._show_performance(result)

    def _show_answer(self, result: LiveResult | None, *, candidates: bool = True) -> None:
        """The verdict panel (every frame: only the texts that changed are set) and, when ``candidates``,
        the candidate list (throttled: rebuilding it with thumbnails on every frame costs the GUI thread)."""
        face = result.faces[0] if result is not None and result.faces else None
        self._show_panel(self.model.panel(face))
        self.liveness_badge.show_state(*self.model.liveness_of(face))
        self.challenge_prompt.show_prompt(result.liveness_prompt if result is not None else "")
        if self.settings.mode != "verify" and candidates:
            self._show_candidates(face)

    def _set_role(self, label: QLabel, role: str) -> None:
        if label.property("role") != role:
            label.setProperty("role", role)
            themes.repolish(label)

    def _show_panel(self, panel: Panel) -> None:
        self.verdict_label.setText(panel.headline)
        self._set_role(self.verdict_label, panel.role)
        name = panel.name if panel.headline != panel.name else ""
        if panel.ambiguous:
            name = f"{panel.name}  or  {panel.runner_up}?"
        self.verdict_name.setText(name)
        self.verdict_numbers.setText(panel.numbers)
        self.verdict_detail.setText(panel.hint)
        self.verdict_detail.setVisible(bool(panel.hint))

    def _show_candidates(self, face: FaceResult | None) -> None:
        lines = self.model.candidate_lines(face)
        if face is None or face.identify is None:
            self.candidates.clear()
            return
        wanted = [("this face", "", None)] + lines
        while self.candidates.count() > len(wanted):
            self.candidates.takeItem(self.candidates.count() - 1)
        for row, (name, score, identity_id) in enumerate(wanted):
            item = self.candidates.item(row)
            if item is None:
                item = QListWidgetItem()
                self.candidates.addItem(item)
            text = f"{name}\n{score}" if score else name
            if item.text() != text:
                item.setText(text)
                item.setToolTip(text)
            if identity_id is None:
                item.setFlags(Qt.ItemFlag.NoItemFlags)
                item.setIcon(QIcon(bgr_to_pixmap(face.crop, 40)))
            elif item.data(Qt.ItemDataRole.UserRole) != identity_id or item.icon().isNull():
                item.setData(Qt.ItemDataRole.UserRole, identity_id)
                thumb = self._thumb(identity_id)
                item.setIcon(QIcon(thumb) if thumb is not None else QIcon())

    def _thumb(self, identity_id: int) -> Any:
        if identity_id not in self._thumbs:
            crop = self.model.thumbs.get(identity_id)
            if crop is None:
                return None
            self._thumbs[identity_id] = bgr_to_pixmap(crop, 40)
        return self._thumbs[identity_id]

    def _thumbs_loaded(self, _crops: dict) -> None:
        self._show_answer(self.result)
        self._recent_changed(self.model.filtered_recent())

    def _show_performance(self, result: LiveResult) -> None:
        self.fps_label.setText(self.model.fps_text(result))
        self.stage_label.setText(self.model.stage_text(result))
        latency = list(self.model.latency)
        self.latency_curve.setData(list(range(len(latency))), latency)
        self.ctx.status.emit("fps", f"FPS: {self.gui_fps:.1f}", "")
        self._show_health()

    def _show_health(self) -> None:
        text, color = self.model.health()
        self.view.set_health(text, color)

    # ================================================================ recent decisions
    def _recent_filter_changed(self, *_: Any) -> None:
        self.model.set_recent_filter(self.recent_filter.text(), self.recent_kind.currentData() or "all")

    def _recent_changed(self, decisions: list) -> None:
        self.recent_list.clear()
        for decision in decisions:
            item = QListWidgetItem(decision.line().replace("  ", "\n", 1))
            item.setData(Qt.ItemDataRole.UserRole, decision.audit_id)
            item.setToolTip(f"{decision.operation}: {decision.line()}  (audit #{decision.audit_id})")
            crop = decision.crop
            if crop is None and decision.identity_id is not None:
                crop = self.model.thumbs.get(decision.identity_id)
            if crop is not None:
                item.setIcon(QIcon(bgr_to_pixmap(crop, 40)))
            self.recent_list.addItem(item)
        known = [d.identity_id for d in decisions if d.identity_id is not None and d.crop is None]
        if known:
            self.model.request_thumbs(sorted(set(known)))

    def _decision_of(self, item: QListWidgetItem | None) -> RecentDecision | None:
        if item is None:
            return None
        audit_id = item.data(Qt.ItemDataRole.UserRole)
        return next((d for d in self.model.recent if d.audit_id == audit_id), None)

    def _recent_double_clicked(self, item: QListWidgetItem) -> None:
        self._open_audit_of(self._decision_of(item))

    def _open_selected_audit(self) -> None:
        decision = self._decision_of(self.recent_list.currentItem())
        if decision is None:
            self.ctx.notify("Choose a decision in the strip first (its person's audit opens).", "info")
            return
        self._open_audit_of(decision)

    def _open_audit_of(self, decision: RecentDecision | None) -> None:
        if decision is not None:
            self.model.open_audit(decision)

    def _show_audit(self, title: str, rows: list) -> None:
        """A dialog with the audit rows behind a decision (``AUDIT_COLUMNS``: time, operation, decision,
        name, best candidate, score, threshold, operator, model)."""
        dialog = QDialog(self)
        dialog.setWindowTitle(title)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        layout = QVBoxLayout(dialog)
        heading = ElidedLabel(f"{title} · {len(rows)} event(s)")
        layout.addWidget(heading)
        table = QTableWidget(len(rows), len(AUDIT_COLUMNS))
        table.setHorizontalHeaderLabels(list(AUDIT_COLUMNS))
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setToolTip("The audit events behind this decision; an Unknown decision names nobody, its best "
                         "candidate is listed apart")
        for row, audit_row in enumerate(rows):
            for column, value in enumerate(audit_row.values):
                table.setItem(row, column, QTableWidgetItem(value))
        table.resizeColumnsToContents()
        layout.addWidget(table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        buttons.button(QDialogButtonBox.StandardButton.Close).setToolTip("Close the audit")
        layout.addWidget(buttons)
        dialog.resize(900, 420)
        dialog.finished.connect(self._audit_closed)
        self.audit_dialog = dialog
        dialog.open()

    def _audit_closed(self, _result: int) -> None:
        self.audit_dialog = None

    # ================================================================ snapshot
    def _snapshot_clicked(self) -> None:
        try:
            path = self.save_snapshot()
        except OSError as error:
            self.ctx.report_error(error, "Snapshot")
            return
        self.ctx.notify(f"Snapshot saved: {path}", "info")

    def save_snapshot(self, path: str | Path | None = None) -> Path:
        """Save the frame on screen with its overlays (default: <data>/snapshots/live-<time>.png)."""
        if path is None:
            folder = data_dir() / "snapshots"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"live-{datetime.now():%Y%m%d-%H%M%S-%f}.png"
        return self.view.save_snapshot(path)

    # ================================================================ page API
    @property
    def result(self) -> LiveResult | None:
        """The result on screen (thresholds applied)."""
        return self.model.result

    def deactivated(self) -> None:
        """Leaving the page keeps the live view running (the operator may come back at once)."""

    def shutdown(self) -> None:
        self.stop()
        self.model.close()
