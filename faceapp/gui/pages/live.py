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
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFont, QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup, QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QListWidget,
    QListWidgetItem, QPushButton, QRadioButton, QScrollArea, QSplitter, QStackedWidget, QVBoxLayout, QWidget,
)

from faceapp.app.live import LiveModel, describe_source, is_image, parse_source
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
from faceapp.services.live import FaceResult, LivePipeline, LiveResult

log = logging.getLogger(__name__)

CAMERAS = 4              # camera indices offered in the source picker
STAGES = ("capture", "detect", "embed", "match", "display")


__all__ = ["LivePage", "describe_source", "overlays_for", "parse_source"]


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
        self.model = LiveModel(ctx, ctx.run, mode=read_setting("live/mode", "identify", str),
                               startup_source=ctx.options.source)
        self.settings = self.model.settings
        self.thread: LiveThread | None = None
        self._thumbs: dict[int, Any] = {}      # identity id -> QPixmap of the model's crop
        self.still_interval_s = 1.5
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
        ctx.services_changed.connect(self._services_changed)
        ctx.gallery_changed.connect(self._gallery_changed)
        ctx.thresholds_changed.connect(model.load_thresholds)
        ctx.thresholds_changed.connect(model.check_readiness)
        themes.notifier().changed.connect(self._theme_changed)
        self._services_changed()

    # the model's state, as the tests, the bench and other pages read it
    gui_fps = property(lambda self: self.model.gui_fps)
    display_ms = property(lambda self: self.model.display_ms)
    source_spec = property(lambda self: self.model.source_spec)

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
        self.stage_label = QLabel(self.model.stage_text(None))
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
        """Store the slider values, exactly, as the active model's thresholds (on a worker, through the one
        route ``faceapp.services.thresholds.save_thresholds``)."""
        self.model.set_thresholds(self.identify_threshold.value(), self.verify_threshold.value())
        self.model.save_thresholds()

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
        self.answer_stack.setCurrentIndex(1 if self.settings.mode == "verify" else 0)
        if self.result is not None:
            self._show_answer(self.result)
        elif self.settings.mode == "verify":
            self._show_verdict(None)

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
            self.model.running = False
            self.start_button.setText("Start")

    # ================================================================ results
    def _take_result(self) -> None:
        thread = self.thread
        if thread is None:
            return
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
        overlays = overlays_for(result)
        image = self._delivery if new_frame else None
        if image is not None:
            self.view.set_frame(image.image, overlays)
        else:
            self.view.set_overlays(overlays)
        self._show_answer(result)
        if image is not None:
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
        text, role, detail = self.model.verdict(face)
        self.verdict_label.setText(text)
        self._set_role(self.verdict_label, role)
        self.verdict_detail.setText(detail)

    def _show_candidates(self, face: FaceResult | None) -> None:
        self.candidates.clear()
        text, role, lines = self.model.answer(face)
        self.identity_label.setText(text)
        self._set_role(self.identity_label, role)
        if face is None or face.identify is None:
            return
        probe = QListWidgetItem(QIcon(bgr_to_pixmap(face.crop, 48)), "this face")
        probe.setFlags(Qt.ItemFlag.NoItemFlags)
        self.candidates.addItem(probe)
        for line, identity_id in lines:
            item = QListWidgetItem(line)
            thumb = self._thumb(identity_id)
            if thumb is not None:
                item.setIcon(QIcon(thumb))
            self.candidates.addItem(item)

    def _thumb(self, identity_id: int) -> Any:
        if identity_id not in self._thumbs:
            crop = self.model.thumbs.get(identity_id)
            if crop is None:
                return None
            self._thumbs[identity_id] = bgr_to_pixmap(crop, 48)
        return self._thumbs[identity_id]

    def _thumbs_loaded(self, _crops: dict) -> None:
        if self.result is not None:
            self._show_answer(self.result)

    def _show_performance(self, result: LiveResult) -> None:
        self.fps_label.setText(self.model.fps_text(result))
        self.fps_label.setToolTip("frames painted per second / frames the pipeline finished per second")
        self.stage_label.setText(self.model.stage_text(result))
        latency = list(self.model.latency)
        self.latency_curve.setData(list(range(len(latency))), latency)
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
        return self.model.result

    def deactivated(self) -> None:
        """Leaving the page keeps the live view running (the operator may come back at once)."""

    def shutdown(self) -> None:
        self.stop()
        self.model.close()
