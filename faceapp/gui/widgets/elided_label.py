"""A label that never widens its layout: long text (a 40-character name, a right-to-left name) is first
shrunk down to a minimum point size, then elided in the middle of what still does not fit; the full text
is in the tooltip. Its minimum width is small, so a fixed-width panel stays fixed."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QFont, QFontMetrics, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class ElidedLabel(QLabel):
    """``setText`` keeps the full text (``full_text()``); what is shown fits the width (``shown_text()``)."""

    def __init__(self, text: str = "", *, point_size: float | None = None, min_point_size: float | None = None,
                 bold: bool = False, elide: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self._more = ""                     # said in the tooltip after the full text (set_more_tooltip)
        self._elide = elide
        font = QFont(self.font())
        if point_size:
            font.setPointSizeF(point_size)
        font.setBold(bold)
        self.setFont(font)
        self._max_pt = font.pointSizeF()
        self._min_pt = min_point_size or self._max_pt
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt API
        if text == self._full and self.toolTip():
            return
        self._full = text
        self._fit()

    def set_more_tooltip(self, text: str) -> None:
        """What the tooltip says after the full text (e.g. what the value means)."""
        self._more = text
        self._fit()

    def text(self) -> str:  # noqa: D102 - Qt API: the full text (what is shown may be elided)
        return self._full

    full_text = text

    def shown_text(self) -> str:
        return super().text()

    def is_elided(self) -> bool:
        return self.shown_text() != self._full

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        hint = super().minimumSizeHint()
        return QSize(40, hint.height())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        hint = super().sizeHint()
        return QSize(min(hint.width(), 200), hint.height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._fit()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API: a new style (role) changes the padding
        super().changeEvent(event)
        if event.type() == QEvent.Type.StyleChange and not self._fitting:
            self._fit()

    def showEvent(self, event: object) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self._fit()

    _fitting = False
    _shown_pt = 0.0

    def _fit(self) -> None:
        if self._fitting:
            return
        self._fitting = True
        try:
            self._fit_now()
        finally:
            self._fitting = False

    def _fit_now(self) -> None:
        available = max(10, self.contentsRect().width() - 2 * max(0, self.margin()) - 4)
        font = QFont(self.font())
        size = self._max_pt
        font.setPointSizeF(size)
        while size > self._min_pt and QFontMetrics(font).horizontalAdvance(self._full) > available:
            size = max(self._min_pt, size - 1)
            font.setPointSizeF(size)
        if size != self._shown_pt:          # a style sheet would override setFont: the size goes in the widget's own
            self._shown_pt = size
            weight = "bold" if font.bold() else "normal"
            self.setStyleSheet(f"font-size: {size:g}pt; font-weight: {weight};")
        shown = QFontMetrics(font).elidedText(self._full, self._elide, available)
        super().setText(shown)
        self.setToolTip("\n\n".join(t for t in (self._full, self._more) if t))
