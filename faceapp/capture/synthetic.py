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
