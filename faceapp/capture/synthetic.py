"""Building test and demo videos from still photos (no webcam on CI machines).

``write_video`` writes frames with OpenCV (MJPG in .avi works in every OpenCV build with FFmpeg or its
built-in MJPEG writer); ``face_video_frames`` places a photo on a 640 x 480 canvas with a small, smooth
motion so a tracker sees a plausible stream.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from faceapp.core.errors import InputFileError


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: float = 25.0, *,
                fourcc: str = "MJPG") -> Path:
    """Write BGR uint8 frames (all the size of the first) to ``path``; returns the path.

    MJPG/.avi is the safe choice (lossy but near-transparent at OpenCV's default quality); raises
    InputFileError when OpenCV cannot open a writer for that container/codec or no frame is given.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer: cv2.VideoWriter | None = None
    size: tuple[int, int] | None = None
    count = 0
    try:
        for frame in frames:
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            if writer is None:
                size = (int(frame.shape[1]), int(frame.shape[0]))
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), size)
                if not writer.isOpened():
                    raise InputFileError(f"{path}: OpenCV cannot write {fourcc} video here", path=str(path))
            if (frame.shape[1], frame.shape[0]) != size:
                frame = cv2.resize(frame, size)
            writer.write(np.ascontiguousarray(frame))
            count += 1
    finally:
        if writer is not None:
            writer.release()
    if count == 0:
        raise InputFileError(f"{path}: no frames to write", path=str(path))
    return path


def place_on_canvas(image: np.ndarray, size: tuple[int, int] = (640, 480), *, center: tuple[float, float] | None = None,
                    height_fraction: float = 0.8, background: int = 96) -> np.ndarray:
    """``image`` scaled to ``height_fraction`` of the canvas height and pasted at ``center`` (pixels)."""
    width, height = size
    canvas = np.full((height, width, 3), background, np.uint8)
    scale = height * height_fraction / image.shape[0]
    resized = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    cx, cy = center if center is not None else (width / 2.0, height / 2.0)
    x0 = int(round(cx - resized.shape[1] / 2.0))
    y0 = int(round(cy - resized.shape[0] / 2.0))
    xa, ya = max(0, x0), max(0, y0)
    xb, yb = min(width, x0 + resized.shape[1]), min(height, y0 + resized.shape[0])
    if xb > xa and yb > ya:
        canvas[ya:yb, xa:xb] = resized[ya - y0:yb - y0, xa - x0:xb - x0]
    return canvas


def face_video_frames(image: np.ndarray, n_frames: int = 60, size: tuple[int, int] = (640, 480), *,
                      motion_px: float = 12.0, height_fraction: float = 0.8) -> Iterator[np.ndarray]:
    """``n_frames`` canvases with ``image`` drifting on a small circle of radius ``motion_px``."""
    width, height = size
    for i in range(n_frames):
        angle = 2.0 * math.pi * i / max(1, n_frames)
        center = (width / 2.0 + motion_px * math.cos(angle), height / 2.0 + motion_px * math.sin(angle))
        yield place_on_canvas(image, size, center=center, height_fraction=height_fraction)


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
