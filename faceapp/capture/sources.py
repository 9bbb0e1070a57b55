"""Frame sources: a webcam, a video file (also a stand-in camera) or still images, all yielding ``Frame``.

A source is an iterable of ``faceapp.core.types.Frame`` (BGR uint8 + timestamp in ms) and a context
manager; ``close()`` releases the device or file. Timestamps are monotonic within one source, as
MediaPipe's VIDEO mode requires: a camera uses the monotonic clock since it was opened, a video file its
frame times (continuing to grow when it loops), still images 0.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

import cv2
import numpy as np

from faceapp.capture.images import is_image_path, list_images, read_image
from faceapp.core.errors import CameraError, FaceAppError, InputFileError
from faceapp.core.types import Frame

log = logging.getLogger(__name__)
T = TypeVar("T")

VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".avi", ".mp4", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".gif"}
)


def _repeat(once: Callable[[], Iterator[T]], loop: bool) -> Iterator[T]:
    """Items of ``once()``; with ``loop``, again and again until one pass yields nothing."""
    while True:
        produced = 0
        for item in once():
            produced += 1
            yield item
        if not loop or produced == 0:
            return


class FrameSource:
    """Base class: iterate to get frames; use as a context manager or call ``close()``."""

    description: str = "frames"

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the underlying device or file (idempotent)."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own stderr logging (camera probing warnings) for the duration."""
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_api is None:
        yield
        return
    old = logging_api.getLogLevel()
    logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging_api.setLogLevel(old)


def _to_bgr(frame: np.ndarray) -> np.ndarray:
    """Frames from capture devices may be greyscale or BGRA: make them BGR uint8."""
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


class CameraSource(FrameSource):
    """A webcam by index. CameraError when it cannot be opened or stops delivering frames."""

    def __init__(self, index: int = 0, *, width: int | None = None, height: int | None = None,
                 max_failures: int = 10) -> None:
        self.index = int(index)
        self.description = f"camera:{self.index}"
        self.max_failures = max_failures
        with quiet_opencv():
            self._cap = cv2.VideoCapture(self.index)
        if not self._cap.isOpened():
            self._cap.release()
            raise CameraError(f"camera {self.index} not found or busy (is a webcam plugged in and free?)")
        if width:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._t0 = time.monotonic()
        self._closed = False

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        failures = 0
        while not self._closed:
            ok, image = self._cap.read()
            if not ok or image is None:
                failures += 1
                if failures >= self.max_failures:
                    raise CameraError(f"camera {self.index} stopped delivering frames (unplugged?)")
                time.sleep(0.01)
                continue
            failures = 0
            yield Frame(_to_bgr(image), (time.monotonic() - self._t0) * 1000.0, index, self.description)
            index += 1

    def close(self) -> None:
        self._closed = True
        self._cap.release()


class VideoFileSource(FrameSource):
    """Frames of a video file; with ``loop`` it restarts forever and with ``realtime`` it is paced at
    the file's frame rate, so it stands in for a camera in tests and demos."""

    def __init__(self, path: str | Path, *, loop: bool = False, realtime: bool = False) -> None:
        self.path = Path(path)
        self.description = str(self.path)
        self.loop = loop
        self.realtime = realtime
        if not self.path.is_file():
            raise InputFileError(f"{self.path}: no such video file", path=str(self.path))
        if self.path.stat().st_size == 0:
            raise InputFileError(f"{self.path}: empty file (0 bytes), not a video", path=str(self.path))
        with quiet_opencv():
            self._cap = cv2.VideoCapture(str(self.path))
            ok = self._cap.isOpened()
            first = self._cap.read() if ok else (False, None)
        if not ok or not first[0]:
            self._cap.release()
            raise InputFileError(f"{self.path}: not a readable video (no frame could be decoded)", path=str(self.path))
        self._first: np.ndarray | None = first[1]
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 1.0 <= fps <= 1000.0 else 25.0
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_size = (int(self._first.shape[1]), int(self._first.shape[0]))
        self._closed = False

    def _frames_once(self) -> Iterator[np.ndarray]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        else:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        while not self._closed:
            ok, image = self._cap.read()
            if not ok or image is None:
                return
            yield image

    def __iter__(self) -> Iterator[Frame]:
        period_ms = 1000.0 / self.fps
        start = time.monotonic()
        for index, image in enumerate(_repeat(self._frames_once, self.loop)):
            timestamp = index * period_ms
            if self.realtime:
                delay = start + timestamp / 1000.0 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield Frame(_to_bgr(image), timestamp, index, self.description)

    def close(self) -> None:
        self._closed = True
        self._cap.release()


class ImageFilesSource(FrameSource):
    """Still images as frames (index = position in the list, timestamp 0).

    ``skip_unreadable`` logs and skips files that cannot be decoded (their errors are kept in
    ``errors``); otherwise the first bad file raises InputFileError.
    """

    def __init__(self, paths: Sequence[str | Path], *, loop: bool = False, skip_unreadable: bool = False,
                 max_pixels: int | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise InputFileError("no image files given")
        self.loop = loop
        self.skip_unreadable = skip_unreadable
        self.max_pixels = max_pixels
        self.errors: list[tuple[str, str]] = []
        self.description = str(self.paths[0]) if len(self.paths) == 1 else f"{len(self.paths)} images"
        self._closed = False

    def _images_once(self) -> Iterator[tuple[Path, np.ndarray]]:
        for path in self.paths:
            if self._closed:
                return
            try:
                yield path, read_image(path, self.max_pixels)
            except FaceAppError as error:
                if not self.skip_unreadable:
                    raise
                self.errors.append((str(path), str(error)))
                log.warning("skipped %s", error)

    def __iter__(self) -> Iterator[Frame]:
        for index, (path, image) in enumerate(_repeat(self._images_once, self.loop)):
            yield Frame(image, 0.0, index, str(path))

    def close(self) -> None:
        self._closed = True


def _camera_index(spec: object) -> int | None:
    if isinstance(spec, bool):
        return None
    if isinstance(spec, int):
        return spec
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text.startswith("camera:") and text[7:].isdigit():
            return int(text[7:])
        if text.isdigit() and not Path(spec).exists():
            return int(text)
    return None


def open_source(spec: int | str | Path | Sequence[str | Path], *, loop: bool = False,
                realtime: bool = False) -> FrameSource:
    """A frame source from a camera index (``0``, ``"camera:0"``), a video file, an image file, a folder
    of images (recursive) or a list of image files. ``loop`` repeats files forever; ``realtime`` paces
    a video file at its frame rate."""
    index = _camera_index(spec)
    if index is not None:
        return CameraSource(index)
    if isinstance(spec, (list, tuple)):
        return ImageFilesSource(list_images(spec), loop=loop)
    path = Path(spec)  # type: ignore[arg-type]
    if path.is_dir():
        images = list_images([path])
        if not images:
            raise InputFileError(f"{path}: folder holds no image files", path=str(path))
        return ImageFilesSource(images, loop=loop)
    if not path.exists():
        raise InputFileError(f"{path}: no such file", path=str(path))
    if is_image_path(path):
        return ImageFilesSource([path], loop=loop)
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return VideoFileSource(path, loop=loop, realtime=realtime)
    # unknown extension: try as a video first, then as an image
    try:
        return VideoFileSource(path, loop=loop, realtime=realtime)
    except InputFileError:
        read_image(path)  # raises a clear InputFileError if it is not an image either
        return ImageFilesSource([path], loop=loop)
