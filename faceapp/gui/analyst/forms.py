"""Form fields built from typed descriptions: a loss's hyper-parameters (``describe_losses()``) become
spin boxes, check boxes and combo boxes with their ranges and help as tooltips."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QLineEdit, QSpinBox, QWidget

BIG = 1e9


def float_box(value: float, low: float | None = None, high: float | None = None, *, decimals: int = 4,
              step: float | None = None, tooltip: str = "") -> QDoubleSpinBox:
    """A QDoubleSpinBox with a range (None = unbounded), a sensible step and a tooltip."""
    box = QDoubleSpinBox()
    box.setDecimals(decimals)
    box.setRange(-BIG if low is None else float(low), BIG if high is None else float(high))
    box.setSingleStep(step if step is not None else (0.1 if abs(value) >= 1 else 0.01))
    box.setValue(float(value))
    box.setToolTip(tooltip)
    return box


def int_box(value: int, low: int | None = None, high: int | None = None, *, tooltip: str = "") -> QSpinBox:
    """A QSpinBox with a range (None = large) and a tooltip."""
    box = QSpinBox()
    box.setRange(-10**9 if low is None else int(low), 10**9 if high is None else int(high))
    box.setValue(int(value))
    box.setToolTip(tooltip)
    return box


class HyperParameterForm(QWidget):
    """Editable values of a list of hyper-parameter descriptions (``HyperParameter.to_dict()``)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_ = QFormLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.fields: dict[str, QWidget] = {}
        self.specs: dict[str, dict[str, Any]] = {}

    def set_parameters(self, params: list[dict[str, Any]]) -> None:
        """Replace the fields with one per description (default value, range, help, choices)."""
        while self.layout_.rowCount():
            self.layout_.removeRow(0)
        self.fields.clear()
        self.specs = {p["name"]: p for p in params}
        if not params:
            none = QLabel("no hyper-parameters")
            none.setProperty("role", "muted")
            self.layout_.addRow(none)
            return
        for spec in params:
            widget = self._field(spec)
            widget.setObjectName(f"hp_{spec['name']}")
            self.fields[spec["name"]] = widget
            label = QLabel(spec["name"])
            label.setToolTip(spec.get("help", ""))
            self.layout_.addRow(label, widget)

    def _field(self, spec: dict[str, Any]) -> QWidget:
        kind, default, tip = spec["type"], spec["default"], spec.get("help", "")
        rng = f" (range {spec['min']}..{spec['max']})" if spec.get("min") is not None or spec.get("max") is not None else ""
        tip = f"{tip}{rng}; default {default}"
        if kind == "bool":
            widget: QWidget = QCheckBox()
            widget.setChecked(bool(default))
            widget.toggled.connect(self.changed)
        elif kind == "int":
            widget = int_box(int(default), spec.get("min"), spec.get("max"))
            widget.valueChanged.connect(self.changed)
        elif kind == "float":
            widget = float_box(float(default), spec.get("min"), spec.get("max"))
            widget.valueChanged.connect(self.changed)
        elif spec.get("choices"):
            widget = QComboBox()
            widget.addItems([str(c) for c in spec["choices"]])
            widget.setCurrentText(str(default))
            widget.currentTextChanged.connect(self.changed)
        else:
            widget = QLineEdit(str(default))
            widget.textChanged.connect(self.changed)
        widget.setToolTip(tip)
        return widget

    def values(self) -> dict[str, Any]:
        """The current value of every field, typed like its default."""
        out: dict[str, Any] = {}
        for name, widget in self.fields.items():
            if isinstance(widget, QCheckBox):
                out[name] = widget.isChecked()
            elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
                out[name] = widget.value()
            elif isinstance(widget, QComboBox):
                out[name] = widget.currentText()
            elif isinstance(widget, QLineEdit):
                out[name] = widget.text()
        return out

    def changed_values(self) -> dict[str, Any]:
        """Only the values that differ from their defaults (what a config needs to record)."""
        return {k: v for k, v in self.values().items() if v != self.specs[k]["default"]}

    def set_values(self, values: dict[str, Any]) -> None:
        """Set fields by name (unknown names are ignored)."""
        for name, value in values.items():
            widget = self.fields.get(name)
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            elif isinstance(widget, QSpinBox):
                widget.setValue(int(value))
            elif isinstance(widget, QDoubleSpinBox):
                widget.setValue(float(value))
            elif isinstance(widget, QComboBox):
                widget.setCurrentText(str(value))
            elif isinstance(widget, QLineEdit):
                widget.setText(str(value))


def parse_folds(text: str) -> list[int]:
    """"9,10" -> [9, 10]; "" -> [] (all folds); DatasetError naming the text otherwise."""
    from faceapp.core.errors import DatasetError

    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise DatasetError(f"folds {text!r}: expected numbers separated by commas, e.g. 9,10") from None


class PathEdit(QWidget):
    """A path field with a "..." button opening a folder (``directory``) or file dialog."""

    chosen = Signal(str)

    def __init__(self, placeholder: str = "", *, directory: bool = True, caption: str = "Choose",
                 file_filter: str = "All (*)", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from PySide6.QtWidgets import QHBoxLayout, QToolButton

        self.directory, self.caption, self.file_filter = directory, caption, file_filter
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.setToolTip(f"{caption}: {placeholder}" if placeholder else caption)
        self.button = QToolButton()
        self.button.setText("...")
        self.button.setToolTip(caption)
        self.button.clicked.connect(self.browse)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.button)
        self.editingFinished = self.edit.editingFinished

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt naming
        self.edit.setText(text)

    def browse(self) -> None:
        """Ask for the path; sets the field and emits ``chosen`` when one was picked."""
        from PySide6.QtWidgets import QFileDialog

        if self.directory:
            path = QFileDialog.getExistingDirectory(self, self.caption, self.text())
        else:
            path, _ = QFileDialog.getOpenFileName(self, self.caption, self.text(), self.file_filter)
        if path:
            self.edit.setText(path)
            self.chosen.emit(path)


class ProtocolFields(QWidget):
    """Where a verification protocol is: an LFW ``pairs.txt`` (and its image root) or the CFP folder (and
    FF/FP), with optional folds. ``with_format`` adds a format combo box; otherwise ``set_format`` decides."""

    def __init__(self, *, with_format: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.format_box = QComboBox()
        self.format_box.addItem("LFW pairs.txt", "lfw")
        self.format_box.addItem("CFP protocol folder", "cfp")
        self.format_box.setToolTip("The protocol's format: an LFW-style pairs.txt, or the CFP dataset folder")
        self.format_box.currentIndexChanged.connect(self._format_changed)
        if with_format:
            layout.addRow("Format", self.format_box)
        self.pairs = PathEdit("pairs.txt, or the cfp folder", directory=False, caption="Pairs file",
                              file_filter="Pairs (*.txt);;All (*)")
        layout.addRow("Pairs", self.pairs)
        self.root = QLineEdit()
        self.root.setPlaceholderText("image root (default: the pairs file's folder)")
        self.root.setToolTip("Folder the pairs file's image names are relative to (default: the pairs file's "
                             "folder)")
        layout.addRow("Image root", self.root)
        self.cfp_box = QComboBox()
        self.cfp_box.addItems(["FF", "FP"])
        self.cfp_box.setToolTip("CFP protocol: frontal-frontal or frontal-profile pairs")
        layout.addRow("CFP protocol", self.cfp_box)
        self.folds = QLineEdit()
        self.folds.setPlaceholderText("all (or e.g. 9,10)")
        self.folds.setToolTip("Which folds of the protocol to score: all, or a list such as 9,10")
        layout.addRow("Folds", self.folds)
        self.form = layout
        self._format_changed()

    def format(self) -> str:
        return str(self.format_box.currentData())

    def set_format(self, fmt: str) -> None:
        """"lfw" or "cfp"."""
        self.format_box.setCurrentIndex(max(0, self.format_box.findData(fmt)))

    def _format_changed(self) -> None:
        cfp = self.format() == "cfp"
        self.pairs.directory = cfp
        self.pairs.caption = "CFP folder" if cfp else "Pairs file"
        self.cfp_box.setEnabled(cfp)
        self.root.setEnabled(not cfp)

    def options(self) -> dict[str, Any]:
        """format, pairs, root, cfp_protocol, folds (DatasetError for unreadable folds)."""
        return {"format": self.format(), "pairs": self.pairs.text(), "root": self.root.text().strip(),
                "cfp_protocol": self.cfp_box.currentText(), "folds": parse_folds(self.folds.text().strip())}
