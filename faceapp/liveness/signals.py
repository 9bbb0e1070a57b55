"""Per-frame signals of the active challenge, each judged against the person's own resting baseline.

MediaPipe's FaceLandmarker gives 52 blendshapes per face (``eyeBlinkLeft/Right``, ``mouthSmileLeft/Right``)
and a pose from its facial transformation matrix (yaw, degrees, + = the subject turned to their left). Eyes
and mouths differ between people (a resting ``eyeBlink`` of 0.05 for one, 0.15 for another), so nothing
here uses a fixed level: each detector keeps a rolling window of the person's *resting* values (median =
baseline, 1.4826 x MAD = spread) and asks for a rise above it.

Blink: closure = mean(eyeBlinkLeft, eyeBlinkRight); a blink is a rise to baseline + max(K x spread,
MIN_RISE) that falls back under half that rise within ``max_closed_ms``. K = 4 and MIN_RISE = 0.12 were
chosen on ``blink_videos/mahie_test_1`` only (8 of 8 blinks, no false one); ``faceapp liveness-eval``
reports both videos.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from faceapp.core.types import Face

BLINK_K = 4.0
BLINK_MIN_RISE = 0.12
BASELINE_WINDOW_MS = 3000.0
BASELINE_MIN_FRAMES = 8
SMILE_MIN_RISE = 0.35
SMILE_LEVEL = 0.5


def eye_closure(face: Face) -> float | None:
    """Mean of eyeBlinkLeft/Right (0 open .. 1 closed); None without blendshapes."""
    b = face.blendshapes
    if "eyeBlinkLeft" not in b or "eyeBlinkRight" not in b:
        return None
    return (b["eyeBlinkLeft"] + b["eyeBlinkRight"]) / 2.0


def smile_level(face: Face) -> float | None:
    """Mean of mouthSmileLeft/Right (0 neutral .. 1 broad smile); None without blendshapes."""
    b = face.blendshapes
    if "mouthSmileLeft" not in b or "mouthSmileRight" not in b:
        return None
    return (b["mouthSmileLeft"] + b["mouthSmileRight"]) / 2.0


def yaw_of(face: Face) -> float | None:
    """Yaw in degrees (+ = subject's left) from the landmarker's transformation matrix; None without pose."""
    return None if face.pose is None else float(face.pose[0])


class RestingBaseline:
    """Rolling median and robust spread of a signal's resting values over the last ``window_ms``."""

    def __init__(self, window_ms: float = BASELINE_WINDOW_MS, min_frames: int = BASELINE_MIN_FRAMES) -> None:
        self.window_ms = window_ms
        self.min_frames = min_frames
        self._values: deque[tuple[float, float]] = deque()

    def add(self, timestamp_ms: float, value: float) -> None:
        self._values.append((timestamp_ms, value))
        while self._values and self._values[0][0] < timestamp_ms - self.window_ms:
            self._values.popleft()

    @property
    def ready(self) -> bool:
        return len(self._values) >= self.min_frames

    def level(self) -> tuple[float, float]:
        """(median, 1.4826 x median absolute deviation) of the resting values."""
        values = np.fromiter((v for _, v in self._values), dtype=np.float64)
        median = float(np.median(values))
        return median, 1.4826 * float(np.median(np.abs(values - median)))


@dataclass
class BlinkEvent:
    """A completed blink: when the eyes closed, how long, how far above the person's baseline."""

    start_ms: float
    duration_ms: float
    rise: float


class BlinkDetector:
    """Causal blink detector on the eye-closure blendshape with a per-person open-eye baseline."""

    def __init__(self, *, k: float = BLINK_K, min_rise: float = BLINK_MIN_RISE, max_closed_ms: float = 800.0) -> None:
        self.k, self.min_rise, self.max_closed_ms = k, min_rise, max_closed_ms
        self.baseline = RestingBaseline()
        self._closed: tuple[float, float, float] | None = None      # start, baseline, threshold
        self.events: list[BlinkEvent] = []

    def update(self, timestamp_ms: float, closure: float) -> BlinkEvent | None:
        """Feed one frame's closure; returns the blink that this frame completed, if any."""
        if self._closed is None:
            if self.baseline.ready:
                base, spread = self.baseline.level()
                threshold = base + max(self.k * spread, self.min_rise)
                if closure >= threshold:
                    self._closed = (timestamp_ms, base, threshold)
                    return None
            self.baseline.add(timestamp_ms, closure)
            return None
        start, base, threshold = self._closed
        if closure < base + (threshold - base) / 2.0:
            self._closed = None
            self.baseline.add(timestamp_ms, closure)
            if timestamp_ms - start <= self.max_closed_ms:
                event = BlinkEvent(start, timestamp_ms - start, threshold - base)
                self.events.append(event)
                return event
        elif timestamp_ms - start > 2 * self.max_closed_ms:
            self._closed = None          # eyes shut for long: not a blink; start over from the resting level
        return None


class RiseDetector:
    """``True`` once a signal rises ``min_rise`` above its resting baseline and reaches ``level``."""

    def __init__(self, *, min_rise: float = SMILE_MIN_RISE, level: float = SMILE_LEVEL) -> None:
        self.baseline = RestingBaseline()
        self.min_rise, self.level = min_rise, level

    def update(self, timestamp_ms: float, value: float) -> bool:
        if self.baseline.ready:
            base, _ = self.baseline.level()
            if value >= max(self.level, base + self.min_rise):
                return True
        self.baseline.add(timestamp_ms, value)
        return False
