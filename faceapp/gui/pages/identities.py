"""Identities page: the gallery as a searchable list with thumbnails and template counts, and a detail
view of one identity with every enrolled sample (crop, quality, source, date, models).

Edit name / external id / notes, add more images (the Enroll wizard), delete one sample, delete the
identity (with confirmation), and export / import the whole gallery as one zip file
(format ``faceapp-gallery/1``, documented in docs/identity_store.md).

The view of ``faceapp.app.identities.IdentitiesModel``, which holds the list, the selection and every use
case; this class builds the widgets, binds them to the model's events and runs its work on workers
(``AppContext.run``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListWidget,
    QListWidgetItem, QPlainTextEdit, QPushButton, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout,
    QWidget,
)

from faceapp.app.identities import IdentitiesModel, IdentityDetail, Sample, when_text
from faceapp.gui import theme as themes
from faceapp.gui.pages import Page, register_page
from faceapp.gui.widgets.images import bgr_to_pixmap

log = logging.getLogger(__name__)

THUMB = 44
CROP = 72


def _when(value: Any) -> str:
    return when_text(value)


@register_page("identities", "Identities", order=30, tooltip="Browse, edit, delete, export and import identities")
class IdentitiesPage(Page):
    """Browse, edit, delete, export and import identities."""

    SHORTCUTS = (("Ctrl+F", "Identities: search"), ("F5", "Identities: refresh"),
                 ("Delete", "Identities: delete the selected sample"))

    def __init__(self, ctx, parent: QWidget | None = None) -> None:  # noqa: ANN001 - AppContext
        super().__init__(ctx, parent)
        self.model = IdentitiesModel(ctx, ctx.run)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(200)
        self._search_timer.timeout.connect(self.refresh)
        self._build()
        self.model.listed.connect(self._listed)
        self.model.detail_changed.connect(self._show_detail)
        self.model.message.connect(self.model_message)
        self.model.gallery_changed.connect(ctx.gallery_changed.emit)
        ctx.services_changed.connect(self.refresh)
        ctx.gallery_changed.connect(self.refresh)

    # the model's state, as the tests and other pages read it
    rows = property(lambda self: self.model.rows)
    detail = property(lambda self: self.model.detail)
    loads = property(lambda self: self.model.loads)

    @property
    def last_transfer(self) -> dict | None:
        return self.model.last_transfer

    @last_transfer.setter
    def last_transfer(self, value: dict | None) -> None:
        self.model.last_transfer = value

    # ================================================================ layout
    def _build(self) -> None:
        outer = QHBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(splitter)

        left = QWidget()
        l_layout = QVBoxLayout(left)
        l_layout.setContentsMargins(0, 0, 0, 0)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search name or external id (Ctrl+F)")
        self.search.setToolTip("Show only the identities whose name or external id contains this text (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._search_changed)
        l_layout.addWidget(self.search)
        self.list = QListWidget()
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.currentItemChanged.connect(self._current_changed)
        l_layout.addWidget(self.list, 1)
        self.count_label = QLabel("")
        self.count_label.setProperty("role", "muted")
        l_layout.addWidget(self.count_label)
        row = QHBoxLayout()
        self.new_button = QPushButton("New...")
        self.new_button.setToolTip("Enrol a new person (Enroll page)")
        self.new_button.clicked.connect(self._new_identity)
        self.export_button = QPushButton("Export...")
        self.export_button.setToolTip("Write the whole gallery to one zip file (to move it to another workstation)")
        self.export_button.clicked.connect(self._export_clicked)
        self.import_button = QPushButton("Import...")
        self.import_button.setToolTip("Add identities from a gallery zip file")
        self.import_button.clicked.connect(self._import_clicked)
        for button in (self.new_button, self.export_button, self.import_button):
            row.addWidget(button)
        l_layout.addLayout(row)
        conflict_row = QHBoxLayout()
        conflict_row.addWidget(QLabel("On import, existing names:"))
        self.conflict_box = QComboBox()
        self.conflict_box.addItem("stop the import", "fail")
        self.conflict_box.addItem("are skipped", "skip")
        self.conflict_box.addItem("are merged", "merge")
        self.conflict_box.setToolTip("When an imported identity's name exists already: stop the whole import, skip "
                                     "that identity, or merge its samples into the existing one")
        conflict_row.addWidget(self.conflict_box, 1)
        l_layout.addLayout(conflict_row)
        splitter.addWidget(left)

        right = QWidget()
        r_layout = QVBoxLayout(right)
        r_layout.setContentsMargins(6, 0, 0, 0)
        self.heading = QLabel("Select an identity")
        self.heading.setProperty("role", "heading")
        r_layout.addWidget(self.heading)
        form = QFormLayout()
        self.name_edit = QLineEdit()
        self.name_edit.setToolTip("The identity's name (unique); Save changes renames it everywhere")
        self.external_edit = QLineEdit()
        self.external_edit.setToolTip("An id from another system (employee number, badge); optional, unique")
        self.notes_edit = QPlainTextEdit()
        self.notes_edit.setMaximumHeight(70)
        self.meta_label = QLabel("")
        self.meta_label.setProperty("role", "muted")
        self.meta_label.setWordWrap(True)
        form.addRow("Name", self.name_edit)
        form.addRow("External id", self.external_edit)
        form.addRow("Notes", self.notes_edit)
        form.addRow("", self.meta_label)
        r_layout.addLayout(form)
        actions = QHBoxLayout()
        self.save_button = QPushButton("Save changes")
        self.save_button.setToolTip("Store the edited name, external id and notes")
        self.save_button.clicked.connect(self.save_changes)
        self.add_button = QPushButton("Add images...")
        self.add_button.setToolTip("Open the Enroll wizard for this identity")
        self.add_button.clicked.connect(self._add_images)
        self.delete_button = QPushButton("Delete identity...")
        self.delete_button.setToolTip("Delete this identity with all its templates and crops (asks first; audited)")
        self.delete_button.clicked.connect(self._delete_identity_clicked)
        actions.addWidget(self.save_button)
        actions.addWidget(self.add_button)
        actions.addStretch(1)
        actions.addWidget(self.delete_button)
        r_layout.addLayout(actions)
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["Crop", "Quality", "Source", "Enrolled", "Models", "Templates"])
        self.table.verticalHeader().setVisible(False)
        self.table.setIconSize(QSize(CROP, CROP))
        self.table.verticalHeader().setDefaultSectionSize(CROP + 8)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        r_layout.addWidget(self.table, 1)
        sample_row = QHBoxLayout()
        sample_row.addStretch(1)
        self.delete_sample_button = QPushButton("Delete selected sample...")
        self.delete_sample_button.setToolTip("Delete the selected sample's crop and templates (asks first)")
        self.delete_sample_button.clicked.connect(self._delete_sample_clicked)
        sample_row.addWidget(self.delete_sample_button)
        r_layout.addLayout(sample_row)
        splitter.addWidget(right)
        splitter.setSizes([330, 800])

        for keys, slot in (("Ctrl+F", self.search.setFocus), ("F5", self.refresh)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
        delete = QShortcut(QKeySequence.StandardKey.Delete, self.table)
        delete.activated.connect(self._delete_sample_clicked)
        self._show_detail(None)

    # ================================================================ list
    def _search_changed(self, _text: str) -> None:
        self._search_timer.start()

    def refresh(self) -> None:
        """Reload the list (worker), keeping the selection."""
        enabled = self.model.available
        for button in (self.new_button, self.export_button, self.import_button):
            button.setEnabled(enabled)
        if self.model.selected_id is None:
            self.model.selected_id = self.current_identity_id
        self.model.set_search(self.search.text())
        self.model.refresh()

    def _listed(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for info, crop in self.model.rows:
            item = QListWidgetItem(f"{info.name}\n{info.template_count} template(s)"
                                   + (f" · {info.external_id}" if info.external_id else ""))
            item.setData(Qt.ItemDataRole.UserRole, info.id)
            if crop is not None:
                item.setIcon(QIcon(bgr_to_pixmap(crop, THUMB)))
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.count_label.setText(self.model.count_text(loading=self.ctx.loading))
        if self.model.detail is None:
            self._show_empty_state()
        wanted = self.model.selected_id
        if wanted is not None:
            self.select_identity(wanted)

    def names(self) -> list[str]:
        """Names in the list, in order."""
        return self.model.names()

    @property
    def current_identity_id(self) -> int | None:
        item = self.list.currentItem()
        return int(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def select_identity(self, identity_id: int) -> bool:
        """Select an identity in the list (loads its detail); False when it is not listed."""
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) == identity_id:
                self.list.blockSignals(True)
                self.list.setCurrentRow(row)
                self.list.blockSignals(False)
                self.model.select(identity_id)
                return True
        self.model.selected_id = identity_id
        return False

    def _current_changed(self, current: QListWidgetItem | None, _previous: Any) -> None:
        self.model.select(None if current is None else int(current.data(Qt.ItemDataRole.UserRole)))

    # ================================================================ detail
    def _show_detail(self, detail: IdentityDetail | None) -> None:
        has = detail is not None
        for widget in (self.name_edit, self.external_edit, self.notes_edit, self.save_button, self.add_button,
                       self.delete_button, self.delete_sample_button):
            widget.setEnabled(has)
        self.table.setRowCount(0)
        if detail is None:
            if self.model.selected_id is None and self.list.currentItem() is not None:
                self.list.blockSignals(True)
                self.list.setCurrentItem(None)
                self.list.blockSignals(False)
            self._show_empty_state()
            for edit in (self.name_edit, self.external_edit):
                edit.clear()
            self.notes_edit.clear()
            self.meta_label.clear()
            return
        info = detail.info
        self.heading.setText(f"{info.name}  (#{info.id})")
        self.name_edit.setText(info.name)
        self.external_edit.setText(info.external_id or "")
        self.notes_edit.setPlainText(info.notes or "")
        self.meta_label.setText(self.model.meta_text(detail))
        self.table.setRowCount(len(detail.samples))
        for row, sample in enumerate(detail.samples):
            crop = QTableWidgetItem("" if sample.image is not None else "no crop")
            if sample.image is not None:
                crop.setIcon(QIcon(bgr_to_pixmap(sample.image, CROP)))
            crop.setData(Qt.ItemDataRole.UserRole, row)
            self.table.setItem(row, 0, crop)
            self.table.setItem(row, 1, QTableWidgetItem(f"{sample.quality:.2f}" if sample.quality is not None else "-"))
            source = QTableWidgetItem(Path(sample.source).name if sample.source else "-")
            source.setToolTip(sample.source)
            self.table.setItem(row, 2, source)
            self.table.setItem(row, 3, QTableWidgetItem(_when(sample.created)))
            text, tip = self.model.models_text(sample)
            item = QTableWidgetItem(text)
            item.setToolTip(tip)
            self.table.setItem(row, 4, item)
            self.table.setItem(row, 5, QTableWidgetItem(str(len(sample.template_ids))))

    def _show_empty_state(self) -> None:
        """The heading when nothing is selected: an error with its reason and what to do (damaged or missing
        database), the empty gallery, or "Select an identity"."""
        state = self.model.empty_state(loading=self.ctx.loading)
        role, text = state if state is not None else ("heading", "Select an identity" if self.list.count() else "")
        self.heading.setText(text)
        self.heading.setWordWrap(True)
        if self.heading.property("role") != role:
            self.heading.setProperty("role", role)
            themes.repolish(self.heading)

    # ================================================================ edits
    def save_changes(self) -> None:
        """Store the edited name, external id and notes (worker)."""
        self.model.save(self.name_edit.text(), self.external_edit.text().strip() or None,
                        self.notes_edit.toPlainText().strip() or None)

    def rename(self, identity_id: int, new_name: str) -> None:
        """Rename an identity (worker); the list and every page refresh when done."""
        self.model.rename(identity_id, new_name)

    def _new_identity(self) -> None:
        window = self.window()
        if hasattr(window, "show_page"):
            page = window.show_page("enroll")
            getattr(page, "reset", lambda: None)()

    def _add_images(self) -> None:
        if self.detail is None:
            return
        window = self.window()
        if hasattr(window, "show_page"):
            page = window.show_page("enroll")
            page.start_for_existing(self.detail.info.id, self.detail.info.name)

    # ================================================================ deletes
    def _delete_identity_clicked(self) -> None:
        if self.detail is None:
            return
        info = self.detail.info
        if self.confirm("Delete identity", f"Delete {info.name} with all {info.template_count} template(s) and "
                                            f"{info.crop_count} crop(s)? This cannot be undone."):
            self.delete_identity(info.id)

    def delete_identity(self, identity_id: int) -> None:
        """Delete an identity with its templates and crops (worker, no confirmation: the button asks)."""
        self.model.delete_identity(identity_id)

    def selected_sample(self) -> Sample | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if self.detail is None or not rows:
            return None
        return self.detail.samples[rows[0].row()]

    def _delete_sample_clicked(self) -> None:
        sample = self.selected_sample()
        problem = self.model.sample_problem(sample)
        if problem is not None:
            self.ctx.notify(problem[1], problem[0])
            return
        if self.confirm("Delete sample", f"Delete this sample of {self.detail.info.name} (its crop and "
                                          f"{len(sample.template_ids)} template(s))?"):
            self.delete_sample(sample.template_ids[0])

    def delete_sample(self, template_id: int) -> None:
        """Delete one sample: its crop and every template made from it (worker)."""
        self.model.delete_sample(template_id)

    # ================================================================ export / import
    def _export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the gallery", str(Path.home() / "faceapp-gallery.zip"),
                                              "FaceApp gallery (*.zip)")
        if path:
            if not path.lower().endswith(".zip"):
                path += ".zip"
            self.export_gallery(path, overwrite=Path(path).exists())

    def export_gallery(self, path: str | Path, *, overwrite: bool = False) -> None:
        """Write the gallery to a zip file (worker); a banner reports what was written."""
        self.model.export_gallery(path, overwrite=overwrite)

    def _import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a gallery", str(Path.home()), "FaceApp gallery (*.zip)")
        if path:
            self.import_gallery(path, on_conflict=str(self.conflict_box.currentData()))

    def import_gallery(self, path: str | Path, *, on_conflict: str = "fail") -> None:
        """Add a gallery zip in one transaction (worker); re-embedding may be needed for the active model."""
        self.model.import_gallery(path, on_conflict=on_conflict)

    def activated(self) -> None:
        if not self.rows:
            self.refresh()
