"""The live video view: the frame scaled to fit, with face boxes, optional landmarks, names and scores.

Overlays are plain records in frame pixels, so the same drawing serves the screen (scaled) and a
snapshot file (native resolution). Image files dropped on the view are offered through
``files_dropped``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QFont, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from faceapp.gui import theme as themes


@dataclass
class Overlay:
    """One face to draw: box (x, y, w, h), points (N x 2), a label and a theme colour name."""

    box: tuple[float, float, float, float]
    label: str = ""
    detail: str = ""                     # second line: score vs threshold, quality hint...
    color: str = "accent"                # Theme field: good, bad, unknown, warn, accent
    five_points: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def paint_overlays(painter: QPainter, overlays: list[Overlay], scale: float, offset: QPointF,
                   *, show_landmarks: bool = False, theme: themes.Theme | None = None) -> None:
    """Draw ``overlays`` (frame pixels) with ``painter`` at ``scale`` and ``offset`` (widget pixels)."""
    theme = theme or themes.current_theme()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    font = QFont(painter.font())
    font.setPointSizeF(max(9.0, min(16.0, 11.0 * max(scale, 0.8))))
    font.setBold(True)
    painter.setFont(font)
    metrics = painter.fontMetrics()
    for overlay in overlays:
        color = QColor(getattr(theme, overlay.color, theme.accent))
        x, y, w, h = overlay.box
        rect = QRectF(offset.x() + x * scale, offset.y() + y * scale, w * scale, h * scale)
        painter.setPen(QPen(color, max(2.0, 2.5 * scale)))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(rect, 4, 4)
        if show_landmarks:
            points = overlay.landmarks if overlay.landmarks is not None else overlay.five_points
            if points is not None and len(points):
                painter.setPen(QPen(color.lighter(130), max(1.5, 2.0 * scale)))
                step = 1 if len(points) <= 68 else 2
                for px, py in np.asarray(points)[::step, :2]:
                    painter.drawPoint(QPointF(offset.x() + px * scale, offset.y() + py * scale))
            if overlay.five_points is not None and points is not overlay.five_points:
                painter.setPen(QPen(QColor(theme.warn), max(3.0, 4.0 * scale)))
                for px, py in np.asarray(overlay.five_points)[:, :2]:
                    painter.drawPoint(QPointF(offset.x() + px * scale, offset.y() + py * scale))
        lines = [t for t in (overlay.label, overlay.detail) if t]
        if not lines:
            continue
        pad = 4
        width = max(metrics.horizontalAdvance(t) for t in lines) + 2 * pad
        height = metrics.height() * len(lines) + 2 * pad
        top = rect.top() - height - 2 if rect.top() - height - 2 >= 0 else rect.bottom() + 2
        tag = QRectF(rect.left(), top, width, height)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawRoundedRect(tag, 3, 3)
        painter.setPen(QColor("white"))
        for i, text in enumerate(lines):
            painter.drawText(QPointF(tag.left() + pad, tag.top() + pad + metrics.ascent() + i * metrics.height()), text)


class VideoView(QWidget):
    """Shows the newest frame with overlays; keeps the aspect ratio; accepts dropped image files."""

    files_dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None, *, placeholder: str = "") -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAcceptDrops(True)
        self.placeholder = placeholder or "No source.\nChoose a camera, a video or images, or drop image files here."
        self.show_landmarks = False
        self._image: QImage | None = None
        self._overlays: list[Overlay] = []
        self.frames_shown = 0
        self.last_paint_ms = 0.0
        themes.notifier().changed.connect(self._theme_changed)

    def _theme_changed(self, _theme: object) -> None:
        self.update()

    # -- content --------------------------------------------------------------------------------
    def set_frame(self, image: QImage | None, overlays: list[Overlay] | None = None) -> None:
        """Show ``image`` (a QImage, already converted off the GUI thread) with ``overlays``."""
        self._image = image
        self._overlays = list(overlays or [])
        self.frames_shown += 1
        self.update()

    def set_overlays(self, overlays: list[Overlay]) -> None:
        """Replace the overlays on the current frame (e.g. after a threshold change)."""
        self._overlays = list(overlays)
        self.update()

    def clear(self) -> None:
        self._image = None
        self._overlays = []
        self.update()

    @property
    def overlays(self) -> list[Overlay]:
        return list(self._overlays)

    @property
    def has_frame(self) -> bool:
        return self._image is not None

    def frame_size(self) -> tuple[int, int] | None:
        return (self._image.width(), self._image.height()) if self._image is not None else None

    def render_snapshot(self) -> QImage | None:
        """The current frame at native resolution with its overlays drawn (for "Snapshot")."""
        if self._image is None:
            return None
        image = self._image.convertToFormat(QImage.Format.Format_RGB888)
        painter = QPainter(image)
        try:
            paint_overlays(painter, self._overlays, 1.0, QPointF(0, 0), show_landmarks=self.show_landmarks)
        finally:
            painter.end()
        return image

    def save_snapshot(self, path: str | Path) -> Path:
        """Write ``render_snapshot()`` to ``path`` (format from the suffix); OSError when it cannot."""
        image = self.render_snapshot()
        if image is None:
            raise OSError("no frame to save yet: start a source first")
        path = Path(path)
        if not image.save(str(path)):
            raise OSError(f"{path}: could not write the image (unknown suffix or folder not writable)")
        return path

    # -- painting -------------------------------------------------------------------------------
    def _geometry(self) -> tuple[float, QPointF]:
        assert self._image is not None
        w, h = self._image.width(), self._image.height()
        scale = min(self.width() / max(1, w), self.height() / max(1, h))
        offset = QPointF((self.width() - w * scale) / 2.0, (self.height() - h * scale) / 2.0)
        return scale, offset

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        start = time.perf_counter()
        theme = themes.current_theme()
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), QColor("#0B0F14" if theme.name == "dark" else "#2B2F33"))
            if self._image is None:
                painter.setPen(QColor("#C0C4C8"))
                painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
                return
            scale, offset = self._geometry()
            target = QRectF(offset.x(), offset.y(), self._image.width() * scale, self._image.height() * scale)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(target, self._image)
            paint_overlays(painter, self._overlays, scale, offset, show_landmarks=self.show_landmarks, theme=theme)
        finally:
            painter.end()
            self.last_paint_ms = (time.perf_counter() - start) * 1000.0

    # -- drag and drop --------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit(paths)
