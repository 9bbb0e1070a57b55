"""The live video view: the frame scaled to fit, with face boxes, optional landmarks, names and scores.

Overlays are plain records in frame pixels, so the same drawing serves the screen (scaled) and a
snapshot file (native resolution). Image files dropped on the view are offered through
``files_dropped``. The live thread hands frames already scaled to the view (``display_frame``), so
painting copies pixels without scaling or format conversion; the native frame is kept for snapshots.
A badge in the top-left corner shows the source's health (``set_health``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
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


def display_frame(image: np.ndarray, size: tuple[int, int] | None) -> QImage:
    """``image`` (BGR or grey) fitted into ``size`` (w, h; None: native) as an RGB32 QImage, the format the
    screen paints without converting. Runs on the live thread, so the GUI thread never scales a frame."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    h, w = image.shape[:2]
    if size is not None and size[0] > 0 and size[1] > 0:
        scale = min(size[0] / w, size[1] / h)
        tw, th = max(1, round(w * scale)), max(1, round(h * scale))
        if (tw, th) != (w, h):
            image = cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    bgra = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    return QImage(bgra.data, bgra.shape[1], bgra.shape[0], bgra.strides[0], QImage.Format.Format_RGB32).copy()


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
        self._frame_size: tuple[int, int] | None = None    # the frame's native (w, h): overlays are in its pixels
        self._native: np.ndarray | None = None             # the native BGR frame, for snapshots
        self._overlays: list[Overlay] = []
        self.health_text, self.health_color = "", "unknown"
        self.frames_shown = 0
        self.last_paint_ms = 0.0
        themes.notifier().changed.connect(self._theme_changed)

    def _theme_changed(self, _theme: object) -> None:
        self.update()

    # -- content --------------------------------------------------------------------------------
    def set_frame(self, image: QImage | None, overlays: list[Overlay] | None = None, *,
                  frame_size: tuple[int, int] | None = None, native: np.ndarray | None = None) -> None:
        """Show ``image`` (a QImage, already converted off the GUI thread, possibly scaled to the view) with
        ``overlays`` in the pixels of the native frame of ``frame_size`` (default: the image's own size);
        ``native`` (BGR) is what a snapshot saves."""
        self._image = image
        self._frame_size = frame_size or ((image.width(), image.height()) if image is not None else None)
        self._native = native
        self._overlays = list(overlays or [])
        self.frames_shown += 1
        self.update()

    def set_overlays(self, overlays: list[Overlay]) -> None:
        """Replace the overlays on the current frame (e.g. after a threshold change)."""
        self._overlays = list(overlays)
        self.update()

    def clear(self) -> None:
        self._image = None
        self._native = None
        self._frame_size = None
        self._overlays = []
        self.update()

    def set_health(self, text: str, color: str = "unknown") -> None:
        """The source-health badge (e.g. "● LIVE 640×480 · 25.0 fps · 0 dropped"; ``color``: a theme field)."""
        if (text, color) != (self.health_text, self.health_color):
            self.health_text, self.health_color = text, color
            self.update()

    @property
    def overlays(self) -> list[Overlay]:
        return list(self._overlays)

    @property
    def has_frame(self) -> bool:
        return self._image is not None

    def frame_size(self) -> tuple[int, int] | None:
        return self._frame_size if self._image is not None else None

    def render_snapshot(self) -> QImage | None:
        """The current frame at native resolution with its overlays drawn (for "Snapshot")."""
        if self._image is None:
            return None
        if self._native is not None:
            image = display_frame(self._native, None)
        else:
            image = self._image.convertToFormat(QImage.Format.Format_RGB32)
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
        assert self._image is not None and self._frame_size is not None
        w, h = self._frame_size
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
            w, h = self._frame_size
            target = QRectF(offset.x(), offset.y(), w * scale, h * scale)
            if abs(target.width() - self._image.width()) < 1.5 and abs(target.height() - self._image.height()) < 1.5:
                painter.drawImage(QPointF(round(offset.x()), round(offset.y())), self._image)   # pre-scaled: a copy
            else:                                                                            # resized since: scale
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
                painter.drawImage(target, self._image)
            paint_overlays(painter, self._overlays, scale, offset, show_landmarks=self.show_landmarks, theme=theme)
        finally:
            if self.health_text:
                self._paint_health(painter, theme)
            painter.end()
            self.last_paint_ms = (time.perf_counter() - start) * 1000.0

    def _paint_health(self, painter: QPainter, theme: themes.Theme) -> None:
        font = QFont(self.font())
        font.setPointSizeF(9.0)
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        text = metrics.elidedText(self.health_text, Qt.TextElideMode.ElideRight, max(40, self.width() - 24))
        box = QRectF(8, 8, metrics.horizontalAdvance(text) + 12, metrics.height() + 6)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 160))
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(QColor(getattr(theme, self.health_color, theme.text_muted)))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

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
