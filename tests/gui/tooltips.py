"""Which interactive widgets under a root widget have no tooltip (the walker of test_tooltips.py, meant to
run over any page or the whole main window)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractButton, QAbstractSpinBox, QCheckBox, QComboBox, QLineEdit, QSlider, QTabBar, QWidget,
)

INTERACTIVE = (QAbstractButton, QComboBox, QAbstractSpinBox, QLineEdit, QSlider, QCheckBox)
PARTS_OF = (QAbstractSpinBox, QComboBox, QTabBar, QLineEdit)   # their inner widgets (clear button) are parts


def describe(widget: QWidget) -> str:
    """A name that finds the widget in the code: object name, text or placeholder, class, parents."""
    text = ""
    for getter in ("text", "placeholderText", "currentText"):
        if hasattr(widget, getter):
            text = str(getattr(widget, getter)())
            if text:
                break
    chain, parent = [], widget.parentWidget()
    while parent is not None and len(chain) < 3:
        chain.append(parent.objectName() or type(parent).__name__)
        parent = parent.parentWidget()
    return f"{type(widget).__name__} {widget.objectName() or repr(text)} in {' < '.join(chain)}"


def untipped(root: QWidget, skip: tuple[type, ...] = ()) -> list[str]:
    """Every interactive widget under ``root`` (shown or not: all wizard steps and tabs) without a tooltip of
    its own; the inner parts of spin boxes, combo boxes, line edits and tab bars and Qt's own helpers
    ("qt_..." such as a table's corner button) are not controls of their own. ``skip``: widget classes whose
    insides another test covers."""
    missing = []
    for widget in root.findChildren(QWidget):
        if not isinstance(widget, INTERACTIVE) or isinstance(widget.parentWidget(), PARTS_OF):
            continue
        if widget.objectName().startswith("qt_") or _inside(widget, skip):
            continue
        if not widget.toolTip().strip():
            missing.append(describe(widget))
    return sorted(missing)


def _inside(widget: QWidget, classes: tuple[type, ...]) -> bool:
    parent = widget.parentWidget()
    while parent is not None:
        if classes and isinstance(parent, classes):
            return True
        parent = parent.parentWidget()
    return False
