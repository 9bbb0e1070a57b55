"""Face quality measures and the gate that accepts faces for enrolment, with live operator hints.

Measures (``FaceQuality``): face size (sqrt of the box area) and inter-ocular distance in frame pixels;
sharpness = variance of the Laplacian of the grey aligned crop (blur and upsampled tiny faces score low);
brightness = mean grey level of the aligned crop's central face region; yaw/pitch/roll from the pose.

Hints speak to the person in front of the camera, in THEIR left/right ("turn slightly left" = turn to
your left), so they read naturally when shown on a mirrored live view.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceapp.core.types import Face, FaceQuality
from faceapp.vision.geometry import interocular

# the face region of a 112 x 112 aligned crop (eyes to chin, cheek to cheek), free of black warp borders
_CENTRE = (slice(28, 108), slice(20, 92))


def crop_sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the grey crop (higher = sharper)."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def crop_brightness(crop: np.ndarray) -> float:
    """Mean grey level (0..255) of the central face region of an aligned crop."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    h, w = grey.shape[:2]
    rows = slice(_CENTRE[0].start * h // 112, _CENTRE[0].stop * h // 112)
    cols = slice(_CENTRE[1].start * w // 112, _CENTRE[1].stop * w // 112)
    return float(grey[rows, cols].mean())


def measure_quality(face: Face, crop: np.ndarray) -> FaceQuality:
    """The quality record of ``face`` given its aligned crop."""
    yaw, pitch, roll = face.pose if face.pose is not None else (None, None, None)
    return FaceQuality(
        face_size=float(np.sqrt(max(0.0, face.area))),
        interocular=interocular(face.five_points),
        sharpness=crop_sharpness(crop),
        brightness=crop_brightness(crop),
        yaw=yaw,
        pitch=pitch,
        roll=roll,
    )


@dataclass
class QualityGate:
    """Thresholds for accepting a face (defaults suit enrolment from a webcam or ordinary photos).

    Pose limits are skipped for faces without a pose (fallback detectors); ``None`` disables a limit.
    """

    min_interocular: float | None = 20.0
    min_sharpness: float | None = 40.0
    min_brightness: float | None = 50.0
    max_brightness: float | None = 215.0
    max_yaw: float | None = 25.0
    max_pitch: float | None = 25.0
    max_roll: float | None = 25.0
    max_interocular: float | None = None
    # accepted, but flagged for the operator below this 0..1 summary quality (services.enrollment.quality_score:
    # eye distance / 80 px x sharpness / 300 x pose); ordinary photos score 0.15-0.95, tiny or soft faces 0.03-0.09
    warn_quality: float | None = 0.10

    def _quality(self, face: Face) -> FaceQuality:
        if face.quality is None:
            raise ValueError("face has no quality measures: run it through FacePipeline.detect first")
        return face.quality

    def check(self, face: Face) -> list[str]:
        """Human-readable reasons to reject ``face``; an empty list means accepted."""
        q = self._quality(face)
        reasons = []
        if self.min_interocular is not None and q.interocular < self.min_interocular:
            reasons.append(f"face too small: eyes {q.interocular:.0f} px apart, need {self.min_interocular:.0f}")
        if self.max_interocular is not None and q.interocular > self.max_interocular:
            reasons.append(f"face too close: eyes {q.interocular:.0f} px apart, at most {self.max_interocular:.0f}")
        if self.min_sharpness is not None and q.sharpness < self.min_sharpness:
            reasons.append(f"blurred: sharpness {q.sharpness:.0f}, need {self.min_sharpness:.0f}")
        if self.min_brightness is not None and q.brightness < self.min_brightness:
            reasons.append(f"too dark: brightness {q.brightness:.0f}, need {self.min_brightness:.0f}")
        if self.max_brightness is not None and q.brightness > self.max_brightness:
            reasons.append(f"too bright: brightness {q.brightness:.0f}, at most {self.max_brightness:.0f}")
        for name, value, limit in (("yaw", q.yaw, self.max_yaw), ("pitch", q.pitch, self.max_pitch),
                                   ("roll", q.roll, self.max_roll)):
            if value is not None and limit is not None and abs(value) > limit:
                reasons.append(f"head {name} {value:+.0f} degrees, at most {limit:.0f}")
        return reasons

    def accepts(self, face: Face) -> bool:
        """True when ``check`` finds nothing wrong."""
        return not self.check(face)

    def hints(self, face: Face) -> list[str]:
        """Short instructions for the person in front of the camera, most important first."""
        q = self._quality(face)
        hints = []
        if self.min_interocular is not None and q.interocular < self.min_interocular:
            hints.append("move closer")
        if self.max_interocular is not None and q.interocular > self.max_interocular:
            hints.append("move back")
        if self.min_brightness is not None and q.brightness < self.min_brightness:
            hints.append("too dark")
        if self.max_brightness is not None and q.brightness > self.max_brightness:
            hints.append("too bright")
        if q.yaw is not None and self.max_yaw is not None and abs(q.yaw) > self.max_yaw:
            # yaw > 0: turned to their left, so they should turn back to their right
            hints.append("turn slightly right" if q.yaw > 0 else "turn slightly left")
        pitch_bad = q.pitch is not None and self.max_pitch is not None and abs(q.pitch) > self.max_pitch
        roll_bad = q.roll is not None and self.max_roll is not None and abs(q.roll) > self.max_roll
        if pitch_bad or roll_bad:
            hints.append("look at the camera")
        if self.min_sharpness is not None and q.sharpness < self.min_sharpness:
            hints.append("hold still")
        return hints
