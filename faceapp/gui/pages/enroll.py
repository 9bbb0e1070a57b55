"""Enroll page: a four-step wizard that adds a person (or more images of one) to the gallery.

1. Person: name (required), optional external id and notes, consent checkbox (required for new people).
2. Capture: from a camera (or a video used as one) keeping only frames that pass the quality gate,
   with live hints ("move closer", "turn slightly left", "too dark", "hold still") and several poses
   (``services.enroll_capture.PoseCollector``); or from image files (buttons or drag and drop), each
   checked with its reasons shown.
3. Review: the accepted crops, rejected images with reasons, and a warning when the face already
   matches another identity (``EnrollmentService.prepare``).
4. Save: one transaction (``EnrollmentService.commit``); the identity appears everywhere at once.

The view of ``faceapp.app.enroll.EnrollModel``, which holds who is enrolled, the accepted faces, the plan
and the use cases; this class owns the wizard's widgets, its steps and the camera thread.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget,
    QListWidgetItem, QPlainTextEdit, QProgressBar, QPushButton, QSplitter, QStackedWidget, QTabWidget, QVBoxLayout,
    QWidget,
)

from faceapp.app.enroll import EnrollModel
from faceapp.core.types import AlignedFace
from faceapp.gui import theme as themes
from faceapp.gui.live_thread import LiveThread
from faceapp.gui.pages import Page, register_page
from faceapp.gui.widgets.enroll_liveness import ChallengeRequirement
from faceapp.gui.widgets.images import bgr_to_pixmap
from faceapp.gui.widgets.video_view import Overlay, VideoView
from faceapp.services.live import LivePipeline, LiveResult

log = logging.getLogger(__name__)

STEPS = ("Person", "Capture", "Review", "Done")
THUMB = 72


def flag_item(item: QListWidgetItem, warnings: Sequence[str]) -> None:
    """Mark a face's list item visibly when it deserves a second look (low quality)."""
    if not warnings:
        return
    item.setText(f"\u26a0 {item.text()}\nlow quality")
    item.setForeground(QColor(themes.current_theme().warn))
    item.setToolTip(f"{item.toolTip()}\n" + "\n".join(warnings))
    item.setData(Qt.ItemDataRole.UserRole + 1, "low-quality")


class DropList(QListWidget):
    """An icon list that also accepts image files dropped on it."""

    def __init__(self, on_files: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._on_files = on_files
        self.setAcceptDrops(True)
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setMovement(QListWidget.Movement.Static)
        self.setSpacing(6)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)

    def dragEnterEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self._on_files(paths)


@register_page("enroll", "Enroll", order=20, tooltip="Add a person to the gallery from a camera or image files")
class EnrollPage(Page):
    """Add a person to the gallery from a camera or image files."""

    SHORTCUTS = (("Ctrl+Return", "Enroll: next step / save"), ("Delete", "Enroll: remove the selected crops"))

    def __init__(self, ctx, parent: QWidget | None = None) -> None:  # noqa: ANN001 - AppContext
        super().__init__(ctx, parent)
        self.model = EnrollModel(ctx, ctx.run)
        self.thread: LiveThread | None = None
        self._build()
        model = self.model
        model.ready_changed.connect(self._ready_changed)
        model.sample_added.connect(self._sample_added)
        model.samples_removed.connect(self._samples_removed)
        model.samples_cleared.connect(self._samples_cleared)
        model.rejected_added.connect(self._rejected_added)
        model.counts_changed.connect(self._update_counts)
        model.hint_changed.connect(self._set_hint)
        model.busy_changed.connect(self._set_busy)
        model.progress.connect(self._on_progress)
        model.plan_ready.connect(self._prepared)
        model.saved.connect(self._saved)
        model.message.connect(self.model_message)
        model.error.connect(self.ctx.report_error)
        model.gallery_changed.connect(ctx.gallery_changed.emit)
        ctx.services_changed.connect(model.services_changed)
        model.services_changed()

    # the model's state, as the tests and other pages read it
    service = property(lambda self: self.model.service)
    collector = property(lambda self: self.model.collector)
    samples = property(lambda self: self.model.samples)
    rejected = property(lambda self: self.model.rejected)
    plan = property(lambda self: self.model.plan)
    last_result = property(lambda self: self.model.last_result)
    target_identity = property(lambda self: self.model.target_identity)
    target_name = property(lambda self: self.model.target_name)
    hint_history = property(lambda self: self.model.hint_history)
    busy = property(lambda self: self.model.busy)

    # ================================================================ layout
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 8, 10, 8)
        steps = QHBoxLayout()
        self.step_labels = []
        for number, name in enumerate(STEPS, 1):
            label = QLabel(f"{number}. {name}")
            self.step_labels.append(label)
            steps.addWidget(label)
            if number < len(STEPS):
                arrow = QLabel("›")
                arrow.setProperty("role", "muted")
                steps.addWidget(arrow)
        steps.addStretch(1)
        outer.addLayout(steps)
        self.stack = QStackedWidget()
        outer.addWidget(self.stack, 1)
        self.stack.addWidget(self._build_person())
        self.stack.addWidget(self._build_capture())
        self.stack.addWidget(self._build_review())
        self.stack.addWidget(self._build_done())
        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        progress_row.addWidget(self.progress, 1)
        self.cancel_check_button = QPushButton("Cancel")
        self.cancel_check_button.setToolTip("Stop checking the image files; the faces accepted so far stay")
        self.cancel_check_button.clicked.connect(self.cancel_check)
        self.cancel_check_button.hide()
        progress_row.addWidget(self.cancel_check_button)
        outer.addLayout(progress_row)
        shortcut = QShortcut(QKeySequence("Ctrl+Return"), self)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(self._primary_action)
        self._show_step(0)

    def _build_person(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.person_heading = QLabel("Who is being enrolled?")
        self.person_heading.setProperty("role", "heading")
        layout.addWidget(self.person_heading)
        form = QFormLayout()
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Display name (required)")
        self.name_edit.setToolTip("The name shown on Live and in Identities (required, unique)")
        self.external_edit = QLineEdit()
        self.external_edit.setPlaceholderText("Employee number, badge... (optional, unique)")
        self.external_edit.setToolTip("An id from another system (employee number, badge); optional, unique")
        self.notes_edit = QPlainTextEdit()
        self.notes_edit.setPlaceholderText("Notes (optional)")
        self.notes_edit.setMaximumHeight(90)
        self.consent_box = QCheckBox("The person has agreed that their face is stored for identification")
        self.consent_box.setToolTip("Required for a new person: tick only once they agreed (the date is stored)")
        self.different_box = QCheckBox("Enrol even if the photos do not look like one person")
        self.different_box.setToolTip("By default photos that score under the verify threshold with each other "
                                      "are refused as different people")
        form.addRow("Name", self.name_edit)
        form.addRow("External id", self.external_edit)
        form.addRow("Notes", self.notes_edit)
        form.addRow("", self.consent_box)
        form.addRow("", self.different_box)
        layout.addLayout(form)
        self.person_error = QLabel("")
        self.person_error.setProperty("role", "status-bad")
        self.person_error.setWordWrap(True)
        layout.addWidget(self.person_error)
        layout.addStretch(1)
        row = QHBoxLayout()
        self.cancel_add_button = QPushButton("Enrol a new person instead")
        self.cancel_add_button.setToolTip("Forget the identity chosen on the Identities page and enrol someone new")
        self.cancel_add_button.clicked.connect(self.reset)
        self.cancel_add_button.hide()
        row.addWidget(self.cancel_add_button)
        row.addStretch(1)
        self.details_next = QPushButton("Next: capture faces")
        self.details_next.setDefault(True)
        self.details_next.setToolTip("Check the name and consent, then capture faces (Ctrl+Return)")
        self.details_next.clicked.connect(self.go_capture)
        row.addWidget(self.details_next)
        layout.addLayout(row)
        self.name_edit.returnPressed.connect(self.go_capture)
        return page

    def _build_capture(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.capture_tabs = QTabWidget()

        camera = QWidget()
        c_layout = QVBoxLayout(camera)
        bar = QHBoxLayout()
        self.camera_box = QComboBox()
        for index in range(4):
            self.camera_box.addItem(f"Camera {index}", index)
        self.camera_box.addItem("Video file as camera...", "video")
        self.camera_box.setToolTip("Which camera to capture from, or a video file played as a camera")
        self.camera_button = QPushButton("Start camera")
        self.camera_button.setToolTip("Start or stop capturing; frames that pass the quality checks are kept")
        self.camera_button.clicked.connect(self._camera_clicked)
        bar.addWidget(self.camera_box, 1)
        bar.addWidget(self.camera_button)
        c_layout.addLayout(bar)
        self.view = VideoView(placeholder="Start the camera: frames that pass the quality checks are kept.")
        c_layout.addWidget(self.view, 1)
        self.hint_label = QLabel("Start the camera")
        self.hint_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint_label.setProperty("role", "verdict-idle")
        font = QFont(self.hint_label.font())
        font.setPointSize(18)
        font.setBold(True)
        self.hint_label.setFont(font)
        c_layout.addWidget(self.hint_label)
        self.challenge_requirement = ChallengeRequirement(self.model)     # liveness before saving (optional)
        c_layout.addWidget(self.challenge_requirement)
        self.capture_tabs.addTab(camera, "Camera")

        files = QWidget()
        f_layout = QVBoxLayout(files)
        add = QPushButton("Add image files...")
        add.setToolTip("Choose photos of the person; each must show exactly one face that passes the quality checks")
        add.clicked.connect(self._add_files_clicked)
        f_layout.addWidget(add)
        hint = QLabel("Or drop image files on the list below. Each must show exactly one face that passes the "
                      "quality checks.")
        hint.setWordWrap(True)
        hint.setProperty("role", "muted")
        f_layout.addWidget(hint)
        self.rejected_list = QListWidget()
        self.rejected_list.setWordWrap(True)
        f_layout.addWidget(QLabel("Refused images"))
        f_layout.addWidget(self.rejected_list, 1)
        self.capture_tabs.addTab(files, "Image files")
        splitter.addWidget(self.capture_tabs)

        side = QWidget()
        s_layout = QVBoxLayout(side)
        self.count_label = QLabel("")
        self.count_label.setProperty("role", "heading")
        s_layout.addWidget(self.count_label)
        self.sample_list = DropList(self.add_files)
        self.sample_list.setToolTip("Accepted faces; drop image files here; Delete removes the selection")
        s_layout.addWidget(self.sample_list, 1)
        remove = QPushButton("Remove selected")
        remove.setToolTip("Remove the selected accepted faces (Delete)")
        remove.clicked.connect(self.remove_selected)
        s_layout.addWidget(remove)
        delete = QShortcut(QKeySequence.StandardKey.Delete, self.sample_list)
        delete.activated.connect(self.remove_selected)
        splitter.addWidget(side)
        splitter.setSizes([700, 360])
        layout.addWidget(splitter, 1)

        row = QHBoxLayout()
        back = QPushButton("Back")
        back.setToolTip("Back to the person's details (the accepted faces stay)")
        back.clicked.connect(self.go_person)
        row.addWidget(back)
        row.addStretch(1)
        self.capture_next = QPushButton("Next: review")
        self.capture_next.setToolTip("Embed the accepted faces and check them against the gallery for duplicates "
                                     "(Ctrl+Return)")
        self.capture_next.clicked.connect(self.prepare)
        row.addWidget(self.capture_next)
        layout.addLayout(row)
        return page

    def _build_review(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.review_heading = QLabel("")
        self.review_heading.setProperty("role", "heading")
        layout.addWidget(self.review_heading)
        self.duplicate_label = QLabel("")
        self.duplicate_label.setObjectName("duplicate_warning")
        self.duplicate_label.setWordWrap(True)
        self.duplicate_label.setProperty("role", "alert-warning")
        self.duplicate_label.hide()
        layout.addWidget(self.duplicate_label)
        self.quality_label = QLabel("")
        self.quality_label.setObjectName("quality_warning")
        self.quality_label.setWordWrap(True)
        self.quality_label.setProperty("role", "status-warn")
        self.quality_label.hide()
        layout.addWidget(self.quality_label)
        self.review_list = QListWidget()
        self.review_list.setToolTip("The faces that will be saved; select some and press Remove (or Delete) to "
                                    "leave them out")
        self.review_list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.review_list.setViewMode(QListWidget.ViewMode.IconMode)
        self.review_list.setIconSize(QSize(96, 96))
        self.review_list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.review_list.setMovement(QListWidget.Movement.Static)
        self.review_list.setSpacing(8)
        layout.addWidget(self.review_list, 2)
        self.review_rejected = QListWidget()
        self.review_rejected.setWordWrap(True)
        self.review_rejected_label = QLabel("Refused")
        layout.addWidget(self.review_rejected_label)
        layout.addWidget(self.review_rejected, 1)
        row = QHBoxLayout()
        back = QPushButton("Back")
        back.setToolTip("Back to the capture step (the accepted faces stay)")
        back.clicked.connect(self.go_capture_back)
        row.addWidget(back)
        self.review_remove_button = QPushButton("Remove selected")
        self.review_remove_button.setToolTip("Leave the selected faces out of this enrolment (the duplicate check "
                                             "is redone without them)")
        self.review_remove_button.clicked.connect(self.remove_reviewed)
        row.addWidget(self.review_remove_button)
        review_delete = QShortcut(QKeySequence.StandardKey.Delete, self.review_list)
        review_delete.activated.connect(self.remove_reviewed)
        row.addStretch(1)
        self.save_button = QPushButton("Save")
        self.save_button.setToolTip("Write the identity and these faces in one transaction")
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self.save)
        row.addWidget(self.save_button)
        layout.addLayout(row)
        return page

    def _build_done(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        self.done_label = QLabel("")
        self.done_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.done_label.setWordWrap(True)
        font = QFont(self.done_label.font())
        font.setPointSize(16)
        self.done_label.setFont(font)
        layout.addWidget(self.done_label)
        row = QHBoxLayout()
        row.addStretch(1)
        again = QPushButton("Enrol another person")
        again.setToolTip("Start the wizard again for a new person")
        again.clicked.connect(self.reset)
        row.addWidget(again)
        show = QPushButton("Show in Identities")
        show.setToolTip("Open the identity just saved on the Identities page")
        show.clicked.connect(self._show_identities)
        row.addWidget(show)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(2)
        return page

    # ================================================================ steps
    @property
    def step(self) -> int:
        return self.stack.currentIndex()

    def _show_step(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        for number, label in enumerate(self.step_labels):
            label.setProperty("role", "heading" if number == index else "muted")
            themes.repolish(label)
        if index != 1:
            self.stop_camera()

    def _primary_action(self) -> None:
        {0: self.go_capture, 1: self.prepare, 2: self.save, 3: self.reset}[self.step]()

    def reset(self) -> None:
        """Start over for a new person (forgets everything not saved)."""
        self.stop_camera()
        self.model.reset()
        for edit in (self.name_edit, self.external_edit):
            edit.clear()
            edit.setEnabled(True)
        self.notes_edit.clear()
        self.notes_edit.setEnabled(True)
        self.consent_box.setChecked(False)
        self.consent_box.setEnabled(True)
        self.person_heading.setText("Who is being enrolled?")
        self.cancel_add_button.hide()
        self.person_error.clear()
        self._show_step(0)

    def start_for_existing(self, identity_id: int, name: str) -> None:
        """Open the wizard to add images to an existing identity (from the Identities page)."""
        self.reset()
        self.model.start_for_existing(identity_id, name)
        self.person_heading.setText(f"Adding images to {name}")
        self.name_edit.setText(name)
        for widget in (self.name_edit, self.external_edit, self.notes_edit, self.consent_box):
            widget.setEnabled(False)
        self.cancel_add_button.show()
        self._show_step(1)
        self._update_counts()

    def set_details(self, name: str, *, external_id: str = "", notes: str = "", consent: bool = True) -> None:
        """Fill step 1 (tests and scripted use)."""
        self.name_edit.setText(name)
        self.external_edit.setText(external_id)
        self.notes_edit.setPlainText(notes)
        self.consent_box.setChecked(consent)

    def go_person(self) -> None:
        self._show_step(0)

    def go_capture(self) -> None:
        """Validate step 1 and move to capture."""
        problem = self.model.person_problem(self.name_edit.text(), self.consent_box.isChecked())
        if problem is not None:
            self.person_error.setText(problem)
            if not self.name_edit.text().strip():
                self.name_edit.setFocus()
            return
        self.person_error.clear()
        self._show_step(1)
        self._update_counts()

    def go_capture_back(self) -> None:
        self.model.plan = None
        self._show_step(1)

    def _show_identities(self) -> None:
        window = self.window()
        if hasattr(window, "show_page") and self.last_result is not None:
            page = window.show_page("identities")
            select = getattr(page, "select_identity", None)
            if select is not None:
                select(self.last_result.record.identity.id)

    # ================================================================ services
    def _ready_changed(self, ready: bool) -> None:
        for button in (self.details_next, self.capture_next, self.save_button):
            button.setEnabled(ready)
        text = self.model.availability_text()
        if text is not None:
            self.person_error.setText(text)

    # ================================================================ samples
    def _samples_cleared(self) -> None:
        self.sample_list.clear()
        self.rejected_list.clear()

    def _sample_added(self, aligned: AlignedFace, label: str) -> None:
        item = QListWidgetItem(QIcon(bgr_to_pixmap(aligned.image, THUMB)), label)
        item.setToolTip(aligned.source or label)
        flag_item(item, self.model.sample_warnings(aligned))
        self.sample_list.addItem(item)
        self.sample_list.scrollToBottom()

    def _samples_removed(self, rows: list) -> None:
        for row in rows:                                   # highest first
            self.sample_list.takeItem(row)

    def _rejected_added(self, source: str, reasons: str) -> None:
        item = QListWidgetItem(f"{Path(source).name}: {reasons}")
        item.setToolTip(source)
        self.rejected_list.addItem(item)

    def remove_selected(self) -> None:
        """Remove the selected accepted faces."""
        self.model.remove_samples([self.sample_list.row(i) for i in self.sample_list.selectedItems()])

    def _update_counts(self) -> None:
        self.count_label.setText(self.model.count_text())
        self.capture_next.setEnabled(self.model.can_prepare and not self.busy)

    # ================================================================ files
    def _add_files_clicked(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Images of the person", str(Path.home()),
                                                "Images (*.jpg *.jpeg *.png *.pgm *.ppm *.bmp *.webp *.tif *.tiff)")
        if paths:
            self.add_files(paths)

    def add_files(self, paths: Sequence[str | Path]) -> None:
        """Check image files on a worker; accepted faces join the list, refused ones show their reasons."""
        if self.model.service is not None:
            self.capture_tabs.setCurrentIndex(1)
        self.model.add_files(paths)

    # ================================================================ camera
    def _camera_clicked(self) -> None:
        if self.camera_running:
            self.stop_camera()
            return
        choice = self.camera_box.currentData()
        if choice == "video":
            path, _ = QFileDialog.getOpenFileName(self, "Video to use as a camera", str(Path.home()),
                                                  "Videos (*.avi *.mp4 *.mkv *.mov *.m4v *.webm);;All files (*)")
            if path:
                self.start_camera(path)
        else:
            self.start_camera(choice)

    @property
    def camera_running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def start_camera(self, spec: int | str | Path) -> None:
        """Capture from a camera index or a video file used as a camera, keeping good frames."""
        if self.model.service is None:
            self.ctx.notify("Enrolment is not available: the database or the model did not load.", "warning")
            return
        self.stop_camera()
        spec = str(spec) if isinstance(spec, Path) else spec
        index = self.camera_box.findData(spec)
        if index < 0 and isinstance(spec, str):
            self.camera_box.insertItem(4, f"{Path(spec).name} (video as camera)", spec)
            index = 4
        if index >= 0:
            self.camera_box.setCurrentIndex(index)

        def open_it() -> Any:
            from faceapp.capture.sources import open_source

            return open_source(spec, realtime=True)

        thread = LiveThread(open_it, self._make_live)
        thread.result_ready.connect(self._take_result)
        thread.failed.connect(self._camera_failed)
        thread.ended.connect(self.model.camera_ended)
        thread.finished.connect(self._camera_finished)
        self.thread = thread
        self.camera_button.setText("Stop camera")
        self.ctx.status.emit("camera", f"Camera: enrolment ({self.camera_box.currentText()})", "")
        self.model.set_hint("Starting the camera...", "verdict-idle")
        self.capture_tabs.setCurrentIndex(0)
        thread.start()

    def _make_live(self) -> LivePipeline:
        return self.model.make_live()

    def stop_camera(self) -> None:
        """Stop capturing (kept faces stay)."""
        thread = self.thread
        if thread is None:
            return
        thread.stop()
        if not thread.wait(10000):
            log.warning("the enrolment camera thread did not stop within 10 s")
        self._take_result()
        self.thread = None
        self.camera_button.setText("Start camera")
        self.ctx.status.emit("camera", "Camera: off", "")

    def _take_result(self) -> None:
        if self.thread is None:
            return
        delivery = self.thread.take()
        if delivery is None:
            return
        result: LiveResult = delivery.result
        overlays = []
        for fr in result.faces:
            ok = not fr.reasons and len(result.faces) == 1
            overlays.append(Overlay(box=fr.face.box, label="OK" if ok else (fr.hints[0] if fr.hints else ""),
                                    color="good" if ok else "warn", five_points=fr.face.five_points))
        self.view.set_frame(delivery.image, overlays)
        self.model.offer(result)

    def _set_hint(self, text: str, role: str) -> None:
        self.hint_label.setText(text)
        if self.hint_label.property("role") != role:
            self.hint_label.setProperty("role", role)
            themes.repolish(self.hint_label)

    @property
    def hint(self) -> str:
        return self.hint_label.text()

    def _camera_failed(self, error: BaseException) -> None:
        self.ctx.report_error(error, "Enrolment camera")
        self.model.camera_failed()

    def _camera_finished(self) -> None:
        if self.thread is not None and not self.thread.isRunning():
            self._take_result()
            self.camera_button.setText("Start camera")
            self.ctx.status.emit("camera", "Camera: off", "")

    # ================================================================ prepare and save
    def prepare(self) -> None:
        """Embed the accepted faces and check for duplicates (worker), then show the review step."""
        if self.busy or self.model.service is None:
            return
        if self.samples:
            self.stop_camera()
        self.model.allow_different = self.different_box.isChecked()
        self.model.prepare(self.model.identity(self.name_edit.text(), self.external_edit.text(),
                                               self.notes_edit.toPlainText(), self.consent_box.isChecked()))

    def _prepared(self, plan: Any) -> None:
        self.review_heading.setText(self.model.review_heading(plan, self.name_edit.text()))
        duplicate = self.model.duplicate_text(plan)
        self.duplicate_label.setText(duplicate)
        self.duplicate_label.setVisible(bool(duplicate))
        self.save_button.setDefault(not duplicate)           # Enter must not save a likely duplicate
        self.save_button.setAutoDefault(not duplicate)
        self.save_button.setText("Save anyway..." if duplicate else "Save")
        quality = self.model.low_quality_text(plan)
        self.quality_label.setText(quality)
        self.quality_label.setVisible(bool(quality))
        self.review_list.clear()
        for check in plan.accepted:
            label = Path(check.source).name if check.source else "face"
            score = f" q={check.quality:.2f}" if check.quality is not None else ""
            item = QListWidgetItem(QIcon(bgr_to_pixmap(check.aligned.image, 96)), label + score)
            item.setToolTip(check.source or label)
            flag_item(item, check.warnings)
            self.review_list.addItem(item)
        self.review_remove_button.setEnabled(bool(plan.accepted))
        self.review_rejected.clear()
        refused = self.model.refused(plan)
        for source, reasons in refused:
            self.review_rejected.addItem(f"{Path(source).name}: {reasons}")
        self.review_rejected_label.setText(f"Refused ({len(refused)})")
        self.review_rejected_label.setVisible(bool(refused))
        self.review_rejected.setVisible(bool(refused))
        self._show_step(2)

    def save(self) -> None:
        """Write the reviewed plan in one transaction (worker); a likely duplicate is confirmed first."""
        question = self.model.save_confirmation(self.plan)
        if question is not None and not self.confirm("Save a possible duplicate?", question, "Save"):
            return
        self.model.save()

    def remove_reviewed(self) -> None:
        """Leave the selected faces of the review step out (the duplicate check is redone)."""
        rows = sorted(self.review_list.row(i) for i in self.review_list.selectedItems())
        self.model.remove_planned(rows)

    def cancel_check(self) -> None:
        """Stop checking image files (the faces accepted so far stay)."""
        self.model.cancel_check()
        self.cancel_check_button.setEnabled(False)

    def _saved(self, result: Any) -> None:
        self.done_label.setText(self.model.done_text(result))
        self._show_step(3)

    # ================================================================ progress
    def _set_busy(self, busy: bool, text: str = "", total: int = 0) -> None:
        self.progress.setVisible(busy)
        self.progress.setRange(0, max(0, total))
        self.progress.setValue(0)
        self.progress.setFormat(text + (" %v/%m" if total else ""))
        self.cancel_check_button.setVisible(busy and self.model.checking)
        self.cancel_check_button.setEnabled(True)
        for button in (self.capture_next, self.save_button, self.details_next):
            button.setEnabled(not busy and self.model.service is not None)
        if not busy:
            self._update_counts()

    def _on_progress(self, event: Any) -> None:
        if event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)

    # ================================================================ page API
    def deactivated(self) -> None:
        """The camera stops when the operator leaves the page."""
        self.stop_camera()

    def shutdown(self) -> None:
        self.stop_camera()
        self.model.close()
