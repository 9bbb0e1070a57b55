"""numpy BGR images -> Qt images and thumbnails."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap


def bgr_to_qimage(image: np.ndarray) -> QImage:
    """A deep-copied RGB888 QImage of a BGR (or grey) uint8 array (safe after the array is gone)."""
    if image.ndim == 2:
        gray = np.ascontiguousarray(image)
        h, w = gray.shape
        return QImage(gray.data, w, h, gray.strides[0], QImage.Format.Format_Grayscale8).copy()
    rgb = np.ascontiguousarray(image[:, :, 2::-1])
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888).copy()


def bgr_to_pixmap(image: np.ndarray, size: int | None = None) -> QPixmap:
    """A pixmap of a BGR array, scaled to fit ``size`` x ``size`` (keeping the aspect) when given."""
    pixmap = QPixmap.fromImage(bgr_to_qimage(image))
    if size:
        pixmap = pixmap.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                               Qt.TransformationMode.SmoothTransformation)
    return pixmap
