"""Test images composed from dataset photos: several faces side by side in one frame, and a huge JPEG
(moved out of ``faceapp.capture.synthetic``: only the tests use them)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_large_jpeg(path: str | Path, size: tuple[int, int] = (20000, 20000), *, face: np.ndarray | None = None,
                     face_height: int = 4000, quality: int = 75) -> Path:
    """A greyscale JPEG of ``size`` pixels (optionally with ``face`` pasted in the middle, ``face_height``
    tall), for testing huge inputs. Built in greyscale so it costs width x height bytes (400 MB for
    20000 x 20000) once, while it is encoded."""
    from PIL import Image

    path = Path(path)
    width, height = size
    canvas = Image.new("L", (width, height), 128)
    if face is not None:
        grey = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY) if face.ndim == 3 else face
        scale = face_height / grey.shape[0]
        big = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        canvas.paste(Image.fromarray(big), ((width - big.shape[1]) // 2, (height - big.shape[0]) // 2))
        del big
    canvas.save(path, quality=quality)
    canvas.close()
    return path


def side_by_side(images: list[np.ndarray], widths: list[int], size: tuple[int, int] = (640, 480), *,
                 background: int = 100, top: int = 40) -> np.ndarray:
    """Photos scaled to the given ``widths`` and placed left to right on one canvas (several-face frames)."""
    width, height = size
    canvas = np.full((height, width, 3), background, np.uint8)
    x = max(0, (width - sum(widths)) // (len(images) + 1))
    gap = x
    for image, w in zip(images, widths):
        h = int(round(w * image.shape[0] / image.shape[1]))
        resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        rows = min(h, height - top)
        cols = min(w, width - x)
        if rows > 0 and cols > 0:
            canvas[top:top + rows, x:x + cols] = resized[:rows, :cols]
        x += w + gap
    return canvas


def face_grid(photos: list[np.ndarray], columns: int, cell: int, *, background: int = 110) -> np.ndarray:
    """Photos scaled to fit ``cell`` x ``cell`` squares, laid out ``columns`` to a row (crowd frames); photo
    ``i`` is centred in the cell at row ``i // columns``, column ``i % columns``."""
    rows = -(-len(photos) // columns)
    canvas = np.full((rows * cell, columns * cell, 3), background, np.uint8)
    for i, photo in enumerate(photos):
        scale = cell / max(photo.shape[:2])
        small = cv2.resize(photo, (int(photo.shape[1] * scale), int(photo.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        y0 = (i // columns) * cell + (cell - small.shape[0]) // 2
        x0 = (i % columns) * cell + (cell - small.shape[1]) // 2
        canvas[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    return canvas
