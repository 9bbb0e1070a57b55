"""Live page: a camera, video or images through detect -> align -> embed -> match, drawn as it happens.

Identify mode shows the top-k candidates with thumbnails and "Unknown" under the threshold; Verify
mode a large MATCH / NO MATCH for the claimed identity. Threshold sliders act at once (the shown
result is re-decided by the matcher from its scores) and "Save" stores them for the active model; they
hold the stored value exactly (shown rounded), so a model card's 0.5016 is decided and saved as 0.5016.
A warning stays on the page while the active model has no calibrated thresholds or some enrolled
identities have no template of it. The live loop runs on its own thread (``LiveThread``); frames are
dropped, not queued, when the pipeline is behind.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFont, QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup, QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QListWidget,
    QListWidgetItem, QPushButton, QRadioButton, QScrollArea, QSplitter, QStackedWidget, QVBoxLayout, QWidget,
)

from faceapp.core.errors import InputFileError
from faceapp.core.paths import data_dir
from faceapp.gui import theme as themes
from faceapp.gui.live_thread import Delivery, LiveThread
from faceapp.gui.pages import Page, register_page
from faceapp.gui.plots import PlotPanel
from faceapp.gui.settings import read_setting, write_setting
from faceapp.gui.widgets.images import bgr_to_pixmap
from faceapp.gui.widgets.threshold_slider import ThresholdSlider
from faceapp.gui.widgets.video_view import Overlay, VideoView
from faceapp.services.live import (
    DecisionAuditor, FaceResult, GalleryMatcher, LivePipeline, LiveResult, LiveSettings, apply_thresholds,
)

log = logging.getLogger(__name__)

CAMERAS = 4              # camera indices offered in the source picker
STAGES = ("capture", "detect", "embed", "match", "display")


def parse_source(text: str) -> int | str:
    """A source typed or remembered as text: "camera:N" / "N" -> camera index, else a path."""
    value = text.strip()
    if value.lower().startswith("camera:") and value[7:].isdigit():
        return int(value[7:])
    if value.isdigit():
        return int(value)
    return value


def describe_source(spec: int | str | Sequence[str]) -> str:
    """Status-bar text for a source."""
    if isinstance(spec, int):
        return f"Camera: camera:{spec}"
    if isinstance(spec, (list, tuple)):
        return f"Images: {len(spec)} file(s)" if len(spec) != 1 else f"Image: {Path(spec[0]).name}"
    return f"Source: {Path(spec).name}"


def overlays_for(result: LiveResult, theme_fields: bool = True) -> list[Overlay]:
    """Boxes, points, names and scores to draw for a result."""
    overlays = []
    for index, fr in enumerate(result.faces):
        face = fr.face
        color, detail = "accent", ""
        if fr.verify is not None:
            color = "good" if fr.verify.match else "bad"
            detail = f"{fr.verify.score:.3f} {'>=' if fr.verify.match else '<'} {fr.verify.threshold:.3f}"
        elif fr.identify is not None:
            best = fr.identify.best
            color = "unknown" if fr.identify.is_unknown else "good"
            if best is not None:
                detail = (f"best {best.name} {best.score:.3f}" if fr.identify.is_unknown else f"{best.score:.3f}")
        elif fr.embedding is None and result.mode != "detect" and index > 0:
            detail = "not matched (max faces)"
        if face.is_fallback:
            color = "warn" if color == "accent" else color
            detail = (detail + " " if detail else "") + f"[{face.detector.value}]"
        overlays.append(Overlay(box=face.box, label=fr.label, detail=detail, color=color,
                                five_points=face.five_points, landmarks=face.landmarks))
    return overlays


@register_page("live", "Live", order=10, tooltip="Camera, video or images: detect, identify or verify live")
class LivePage(Page):
    """Camera, video or images: detect, identify or verify live."""

    SHORTCUTS = (("Space", "Live: start / stop"), ("Ctrl+S", "Live: snapshot"), ("L", "Live: landmarks on/off"),
                 ("I / V", "Live: identify / verify mode"))

    def __init__(self, ctx, parent: QWidget | None = None) -> None:  # noqa: ANN001 - AppContext
        super().__init__(ctx, parent)
        self.settings = LiveSettings(mode=read_setting("live/mode", "identify", str))
        self.thread: LiveThread | None = None
        self._pipeline: Any = None            # FacePipeline (video mode), created on the live thread, reused
        self._result: LiveResult | None = None
        self._shown: deque[float] = deque(maxlen=30)
        self._latency: deque[float] = deque(maxlen=120)
        self._thumbs: dict[int, Any] = {}
        self._thumbs_loading: set[int] = set()
        self.gui_fps = 0.0
        self.display_ms = 0.0
        self.source_spec: int | str | list[str] | None = None
        self._live_embedder: Any = None
        self._live_loop = False
        self.still_interval_s = 1.5
        self._autostarted = False
        self._problems: list[str] = []        # services missing (shown in the page's warning)
        self._readiness: list[str] = []       # the active model's thresholds / templates (readiness_warnings)
        self._build()
        remembered = read_setting("live/source", "", str)
        if remembered and not ctx.options.source:
            self._remember_source(parse_source(remembered))
        ctx.services_changed.connect(self._services_changed)
        ctx.gallery_changed.connect(self._gallery_changed)
        ctx.thresholds_changed.connect(self._load_thresholds)
        ctx.thresholds_changed.connect(self._check_readiness)
        themes.notifier().changed.connect(self._theme_changed)
        self._services_changed()

    # ================================================================ layout
    def _build(self) -> None:
        outer = QHBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(splitter)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self.warning = QLabel("")
        self.warning.setProperty("role", "status-warn")
        self.warning.setWordWrap(True)
        self.warning.hide()
        left_layout.addWidget(self.warning)
        self.view = VideoView()
        self.view.files_dropped.connect(self._files_dropped)
        left_layout.addWidget(self.view, 1)
        bar = QHBoxLayout()
        self.source_box = QComboBox()
        for index in range(CAMERAS):
            self.source_box.addItem(f"Camera {index}", index)
        self.source_box.addItem("Video file...", "video")
        self.source_box.addItem("Image files...", "images")
        self.source_box.setToolTip("Where frames come from; image files can also be dropped on the view")
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
        self.stage_label = QLabel(self._stage_text(None))
        self.stage_label.setProperty("role", "muted")
        self.stage_label.setWordWrap(True)
        perf_row = QHBoxLayout()
        perf_row.addWidget(self.fps_label)
        perf_row.addWidget(self.stage_label, 1)
        left_layout.addLayout(perf_row)
        splitter.addWidget(left)

        panel = QWidget()
        panel_layout = QVBoxLayout(panel)
        panel_layout.setContentsMargins(4, 0, 4, 0)

        mode_box = QGroupBox("Mode")
        mode_layout = QHBoxLayout(mode_box)
        self.identify_radio = QRadioButton("Identify (1:N)")
        self.verify_radio = QRadioButton("Verify (1:1)")
        self.mode_group = QButtonGroup(self)
        self.mode_group.addButton(self.identify_radio)
        self.mode_group.addButton(self.verify_radio)
        mode_layout.addWidget(self.identify_radio)
        mode_layout.addWidget(self.verify_radio)
        (self.verify_radio if self.settings.mode == "verify" else self.identify_radio).setChecked(True)
        self.mode_group.buttonToggled.connect(self._mode_toggled)
        panel_layout.addWidget(mode_box)

        self.answer_stack = QStackedWidget()
        identify_page = QWidget()
        identify_layout = QVBoxLayout(identify_page)
        identify_layout.setContentsMargins(0, 0, 0, 0)
        self.identity_label = QLabel("-")
        self.identity_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.identity_label.setProperty("role", "verdict-idle")
        self._big_font(self.identity_label, 22)
        identify_layout.addWidget(self.identity_label)
        self.candidates = QListWidget()
        self.candidates.setIconSize(QSize(48, 48))
        self.candidates.setMinimumHeight(110)
        identify_layout.addWidget(self.candidates, 1)
        self.answer_stack.addWidget(identify_page)

        verify_page = QWidget()
        verify_layout = QVBoxLayout(verify_page)
        verify_layout.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        self.claim_box = QComboBox()
        self.claim_box.setToolTip("The identity the person claims to be")
        self.claim_box.currentIndexChanged.connect(self._claim_changed)
        form.addRow("Claimed identity", self.claim_box)
        verify_layout.addLayout(form)
        self.verdict_label = QLabel("-")
        self.verdict_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.verdict_label.setProperty("role", "verdict-idle")
        self._big_font(self.verdict_label, 30)
        verify_layout.addWidget(self.verdict_label)
        self.verdict_detail = QLabel("")
        self.verdict_detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.verdict_detail.setProperty("role", "muted")
        verify_layout.addWidget(self.verdict_detail)
        verify_layout.addStretch(1)
        self.answer_stack.addWidget(verify_page)
        panel_layout.addWidget(self.answer_stack, 1)

        thresholds = QGroupBox("Thresholds (cosine)")
        t_layout = QFormLayout(thresholds)
        # exact values: the model's 0.5016 is shown rounded but decided and saved as 0.5016
        self.identify_threshold = ThresholdSlider(0.0, 1.0, steps=1000, decimals=4)
        self.verify_threshold = ThresholdSlider(0.0, 1.0, steps=1000, decimals=4)
        self.identify_threshold.setValue(self.settings.identify_threshold)
        self.verify_threshold.setValue(self.settings.verify_threshold)
        self.identify_threshold.value_changed.connect(self._thresholds_moved)
        self.verify_threshold.value_changed.connect(self._thresholds_moved)
        t_layout.addRow("Identify", self.identify_threshold)
        t_layout.addRow("Verify", self.verify_threshold)
        row = QHBoxLayout()
        self.threshold_source = QLabel("source: -")
        self.threshold_source.setProperty("role", "muted")
        self.save_thresholds_button = QPushButton("Save for model")
        self.save_thresholds_button.setToolTip("Store these thresholds for the active model")
        self.save_thresholds_button.clicked.connect(self.save_thresholds)
        row.addWidget(self.threshold_source, 1)
        row.addWidget(self.save_thresholds_button)
        t_layout.addRow(row)
        panel_layout.addWidget(thresholds)

        self.latency_plot = PlotPanel("Processing time per frame", y_label="ms", legend=False)
        self.latency_plot.setFixedHeight(125)
        self.latency_curve = self.latency_plot.line([], [], name="total")
        panel_layout.addWidget(self.latency_plot)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(panel)
        scroll.setMinimumWidth(330)
        splitter.addWidget(scroll)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([820, 360])
        self._update_mode_widgets()

        for keys, slot in (("Space", self.toggle), ("Ctrl+S", self._snapshot_clicked), ("L", self.landmarks_box.toggle),
                           ("I", self.identify_radio.click), ("V", self.verify_radio.click)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    @staticmethod
    def _big_font(label: QLabel, size: int) -> None:
        font = QFont(label.font())
        font.setPointSize(size)
        font.setBold(True)
        label.setFont(font)
        label.setMinimumHeight(int(size * 2.4))

    # ================================================================ services
    def _services_changed(self) -> None:
        ctx = self.ctx
        problems = []
        if ctx.embedder is not None and not getattr(ctx.embedder, "trained", True):
            problems.append("Untrained model: names and scores are NOT meaningful until a trained model is active.")
        if ctx.gallery is None and not ctx.loading:
            problems.append("No gallery (database or model unavailable): faces are detected but not recognised.")
        self._problems = problems
        self._readiness = []
        self._show_warnings()
        self.save_thresholds_button.setEnabled(ctx.gallery is not None)
        self._load_identities()
        self._load_thresholds()
        self._check_readiness()
        if self.running and self.source_spec is not None and self._live_embedder is not ctx.embedder:
            self.start_source(self.source_spec, loop=self._live_loop)   # another model was activated
        if ctx.options.source and not self._autostarted and not ctx.loading and (ctx.embedder or ctx.errors):
            self._autostarted = True            # --source: start once, when the services have loaded
            self.start_source(parse_source(ctx.options.source))

    def _gallery_changed(self) -> None:
        self._thumbs.clear()
        self._load_identities()
        self._check_readiness()

    def _show_warnings(self) -> None:
        """The page's persistent warning: what is wrong with the services, then with the active model."""
        lines = self._problems + self._readiness
        self.warning.setText("\n".join(lines))
        self.warning.setVisible(bool(lines))

    def _check_readiness(self) -> None:
        """Ask (on a worker) whether the active model has calibrated thresholds and templates for everyone."""
        if self.ctx.gallery is None:
            return
        self.ctx.run(_readiness, self.ctx.gallery, on_result=self._readiness_checked, context="Checking the model")

    def _readiness_checked(self, checked: tuple) -> None:
        gallery, warnings = checked
        if gallery is not self.ctx.gallery:
            return                                   # another model was activated meanwhile: its check follows
        self._readiness = list(warnings)
        self._show_warnings()

    def _load_identities(self) -> None:
        if self.ctx.store is None:
            return
        self.ctx.run(self.ctx.store.identities.list, on_result=self._identities_loaded, context="Listing identities")

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

    def _load_thresholds(self) -> None:
        if self.ctx.gallery is None:
            return
        self.ctx.run(self.ctx.gallery.thresholds, on_result=self._thresholds_loaded, context="Reading thresholds")

    def _thresholds_loaded(self, thresholds: Any) -> None:
        self.identify_threshold.setValue(thresholds.identify)      # exact (the sliders keep the stored float)
        self.verify_threshold.setValue(thresholds.verify)
        self.settings.thresholds_source = thresholds.source
        self.threshold_source.setText(f"source: {thresholds.source}")

    def save_thresholds(self) -> None:
        """Store the slider values, exactly, as the active model's thresholds (on a worker, through the one
        route ``faceapp.services.thresholds.save_thresholds``)."""
        from faceapp.services.thresholds import save_thresholds

        gallery = self.ctx.gallery
        if gallery is None:
            self.ctx.notify("No gallery is loaded: thresholds cannot be saved.", "warning")
            return
        self.ctx.run(save_thresholds, gallery.store, gallery.model, verify=self.verify_threshold.value(),
                     identify=self.identify_threshold.value(), source="manual", operator=gallery.operator,
                     on_result=self._thresholds_saved, context="Saving thresholds")

    def _thresholds_saved(self, record: Any) -> None:
        self.settings.thresholds_source = f"store:{record.source}"
        self.threshold_source.setText(f"source: store:{record.source}")
        self.ctx.notify(f"Thresholds saved for {record.model_id}: verify {record.verify:.4g}, "
                        f"identify {record.identify:.4g}.", "info")
        self.ctx.thresholds_changed.emit()

    # ================================================================ controls
    def _mode_toggled(self, button: Any, checked: bool) -> None:
        if checked:
            self.set_mode("verify" if button is self.verify_radio else "identify")

    def set_mode(self, mode: str) -> None:
        """Switch between "identify" and "verify" (applies from the next frame)."""
        if mode not in ("identify", "verify"):
            raise ValueError(f"mode must be identify or verify, not {mode!r}")
        self.settings.mode = mode
        radio = self.verify_radio if mode == "verify" else self.identify_radio
        if not radio.isChecked():
            radio.setChecked(True)
        write_setting("live/mode", mode)
        self._update_mode_widgets()

    def _update_mode_widgets(self) -> None:
        self.answer_stack.setCurrentIndex(1 if self.settings.mode == "verify" else 0)
        if self._result is not None:
            self._show_answer(self._result)
        elif self.settings.mode == "verify":
            self._show_verdict(None)

    def _claim_changed(self, *_: Any) -> None:
        identity_id = self.claim_box.currentData()
        self.settings.claimed_identity_id = int(identity_id) if identity_id is not None else None
        self.settings.claimed_name = self.claim_box.currentText()

    def set_claimed(self, identity_id: int) -> None:
        """Choose the claimed identity for verify mode by id (must be in the list)."""
        index = self.claim_box.findData(identity_id)
        if index < 0:
            raise KeyError(f"identity {identity_id} is not in the list")
        self.claim_box.setCurrentIndex(index)
        self._claim_changed()

    def _thresholds_moved(self, _value: float) -> None:
        self.settings.identify_threshold = self.identify_threshold.value()
        self.settings.verify_threshold = self.verify_threshold.value()
        self.settings.thresholds_source = "slider"     # until thresholds are (re)loaded or saved
        if self._result is not None:
            self._show_result(apply_thresholds(self._result, self.settings.identify_threshold,
                                               self.settings.verify_threshold), new_frame=False)

    def _landmarks_toggled(self, on: bool) -> None:
        self.view.show_landmarks = on
        self.view.update()

    def _theme_changed(self, _theme: Any) -> None:
        for label in (self.identity_label, self.verdict_label):
            themes.repolish(label)

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
            self.start_source(parts if len(parts) > 1 or _is_image(parts[0]) else parts[0])

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
        if isinstance(spec, Path):
            spec = str(spec)
        if isinstance(spec, (list, tuple)):
            spec = [str(p) for p in spec]
        self.source_spec = spec
        self._live_embedder, self._live_loop = self.ctx.embedder, loop   # restarted when the model changes
        self._remember_source(spec)
        self._result = None
        self._shown.clear()
        self._latency.clear()
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
        self.start_button.setText("Stop")
        ctx.status.emit("camera", f"{describe_source(spec)} (opening...)", "")
        if not isinstance(spec, list):
            write_setting("live/source", f"camera:{spec}" if isinstance(spec, int) else str(spec))
        thread.start()

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
        ctx = self.ctx
        with ctx.pipeline_lock:
            if self._pipeline is None:
                self._pipeline = ctx.create_pipeline("video")
        matcher = GalleryMatcher(ctx.gallery) if ctx.gallery is not None else None
        auditor = None
        if ctx.gallery is not None and ctx.store is not None:
            auditor = DecisionAuditor(ctx.store, ctx.gallery.model.model_id, ctx.gallery.operator)
        return LivePipeline(self._pipeline, ctx.embedder, matcher, self.settings, auditor=auditor)

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
        self.start_button.setText("Start")
        self.ctx.status.emit("fps", "FPS: -", "")

    def _opened(self, description: str) -> None:
        self.ctx.status.emit("camera", f"{describe_source(self.source_spec or description)}", "")

    def _failed(self, error: BaseException) -> None:
        self.ctx.report_error(error, "Live view")
        self.ctx.status.emit("camera", "Camera: error", "status-bad")

    def _ended(self, reason: str) -> None:
        self.ctx.status.emit("camera", "Camera: off", "")
        if reason != "stopped":
            self.ctx.notify(f"Live view: {reason} ({describe_source(self.source_spec or '')}).", "info")

    def _thread_finished(self) -> None:
        if self.thread is not None and not self.thread.isRunning():
            self._take_result()
            self.start_button.setText("Start")

    # ================================================================ results
    def _take_result(self) -> None:
        thread = self.thread
        if thread is None:
            return
        delivery = thread.take()
        if delivery is None:
            return
        result = apply_thresholds(delivery.result, self.settings.identify_threshold, self.settings.verify_threshold)
        self._show_result(result, image=delivery, new_frame=True)

    def _show_result(self, result: LiveResult, *, image: Delivery | None = None, new_frame: bool) -> None:
        self._result = result
        overlays = overlays_for(result)
        if image is not None:
            self.view.set_frame(image.image, overlays)
        else:
            self.view.set_overlays(overlays)
        self._show_answer(result)
        if new_frame and image is not None:
            now = time.perf_counter()
            self.display_ms = (now - image.ready_at) * 1000.0
            self._shown.append(now)
            if len(self._shown) >= 2 and self._shown[-1] > self._shown[0]:
                self.gui_fps = (len(self._shown) - 1) / (self._shown[-1] - self._shown[0])
            self._latency.append(result.times.total_ms)
            self._show_performance(result)

    def _show_answer(self, result: LiveResult) -> None:
        face = result.faces[0] if result.faces else None
        if self.settings.mode == "verify":
            self._show_verdict(face)
        else:
            self._show_candidates(face)

    def _set_role(self, label: QLabel, role: str) -> None:
        if label.property("role") != role:
            label.setProperty("role", role)
            themes.repolish(label)

    def _show_verdict(self, face: FaceResult | None) -> None:
        if face is None or face.verify is None:
            self.verdict_label.setText("NO FACE" if face is None else "-")
            self._set_role(self.verdict_label, "verdict-idle")
            if self.claim_box.count() == 0:
                self.verdict_detail.setText("No identity enrolled yet: enrol someone first")
            elif self.settings.claimed_identity_id is None:
                self.verdict_detail.setText("Choose the claimed identity")
            else:
                self.verdict_detail.setText("" if face is None else "Waiting for the next frame")
            return
        verdict = face.verify
        self.verdict_label.setText("MATCH" if verdict.match else "NO MATCH")
        self._set_role(self.verdict_label, "verdict-match" if verdict.match else "verdict-nomatch")
        self.verdict_detail.setText(f"{verdict.name}: score {verdict.score:.3f} "
                                    f"{'>=' if verdict.match else '<'} threshold {verdict.threshold:.3f}")

    def _show_candidates(self, face: FaceResult | None) -> None:
        self.candidates.clear()
        if face is None or face.identify is None:
            self.identity_label.setText("NO FACE" if face is None else "-")
            self._set_role(self.identity_label, "verdict-idle")
            return
        decision = face.identify
        if decision.is_unknown:
            self.identity_label.setText("Unknown")
            self._set_role(self.identity_label, "verdict-unknown")
        else:
            self.identity_label.setText(decision.best.name if decision.best else "?")
            self._set_role(self.identity_label, "verdict-match")
        probe = QListWidgetItem(QIcon(bgr_to_pixmap(face.crop, 48)), "this face")
        probe.setFlags(Qt.ItemFlag.NoItemFlags)
        self.candidates.addItem(probe)
        missing = []
        for rank, candidate in enumerate(decision.candidates, 1):
            above = candidate.score >= decision.threshold
            text = f"{rank}. {candidate.name}   {candidate.score:.3f} {'>=' if above else '<'} {decision.threshold:.3f}"
            item = QListWidgetItem(text)
            thumb = self._thumbs.get(candidate.identity_id)
            if thumb is not None:
                item.setIcon(QIcon(thumb))
            elif candidate.identity_id not in self._thumbs_loading:
                missing.append(candidate.identity_id)
            self.candidates.addItem(item)
        if missing and self.ctx.store is not None:
            self._thumbs_loading.update(missing)
            self.ctx.run(_first_crops, self.ctx.store, missing, on_result=self._thumbs_loaded,
                         context="Loading thumbnails")

    def _thumbs_loaded(self, crops: dict) -> None:
        for identity_id, crop in crops.items():
            self._thumbs_loading.discard(identity_id)
            if crop is not None:
                self._thumbs[identity_id] = bgr_to_pixmap(crop, 48)
        if self._result is not None:
            self._show_answer(self._result)

    def _stage_text(self, result: LiveResult | None) -> str:
        if result is None:
            return "ms per frame: capture - | detect - | embed - | match - | display -"
        t = result.times
        return (f"ms per frame: capture {t.capture_ms:.1f} | detect {t.detect_ms:.1f} | embed {t.embed_ms:.1f} | "
                f"match {t.match_ms:.1f} | display {self.display_ms:.1f} — processing {t.total_ms:.0f}, "
                f"latency {t.latency_ms:.0f}; {result.dropped} frame(s) dropped")

    def _show_performance(self, result: LiveResult) -> None:
        self.fps_label.setText(f"FPS {self.gui_fps:.1f} shown / {result.fps:.1f} processed")
        self.fps_label.setToolTip("frames painted per second / frames the pipeline finished per second")
        self.stage_label.setText(self._stage_text(result))
        self.latency_curve.setData(list(range(len(self._latency))), list(self._latency))
        self.ctx.status.emit("fps", f"FPS: {self.gui_fps:.1f}", "")

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
        return self._result

    def deactivated(self) -> None:
        """Leaving the page keeps the live view running (the operator may come back at once)."""

    def shutdown(self) -> None:
        self.stop()
        if self._pipeline is not None:
            self._pipeline.close()
            self._pipeline = None


def _is_image(path: str) -> bool:
    from faceapp.capture.images import is_image_path

    return bool(is_image_path(path))


def _readiness(gallery: Any) -> tuple[Any, list[str]]:
    """(gallery, warnings about its model) on a worker: see ``faceapp.services.activation.readiness_warnings``."""
    from faceapp.services.activation import readiness_warnings

    return gallery, readiness_warnings(gallery)


def _first_crops(store: Any, identity_ids: list[int]) -> dict[int, Any]:
    """identity id -> its first stored crop (BGR) or None (runs on a worker)."""
    crops = {}
    for identity_id in identity_ids:
        try:
            stored = store.templates.crops(identity_id)
        except Exception:  # noqa: BLE001 - a deleted identity: no thumbnail
            stored = []
        crops[identity_id] = stored[0].image() if stored else None
    return crops
