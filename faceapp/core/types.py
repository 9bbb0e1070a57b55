"""Typed records passed between layers. Plain dataclasses over numpy arrays; no torch, no Qt.

Coordinates are pixels in the frame the face was found in, x to the right, y down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


@dataclass
class Frame:
    """One BGR uint8 image from a source, with its capture time."""

    image: np.ndarray            # H x W x 3, uint8, BGR
    timestamp_ms: float          # monotonic for cameras/videos; 0 for stills
    index: int = 0               # position in the source (frame number, or file index)
    source: str = ""             # file path, "camera:0", ...


@dataclass
class FaceQuality:
    """Measures the quality gate and the enrolment hints are computed from."""

    face_size: float             # box side (sqrt of area) in pixels
    interocular: float           # distance between the eye centres in pixels
    sharpness: float             # variance of the Laplacian on the aligned crop
    brightness: float            # mean grey level of the aligned crop, 0..255
    yaw: float | None = None     # degrees, + = subject turned to their left (image right)
    pitch: float | None = None   # degrees, + = looking up
    roll: float | None = None    # degrees, + = head tilted clockwise in the image


class Detector(str, Enum):
    """Which model found the face; anything but LANDMARKER is a visible fallback."""

    LANDMARKER = "landmarker"    # MediaPipe FaceLandmarker (478 points)
    BLAZEFACE = "blazeface"      # MediaPipe FaceDetector short range (6 keypoints)
    LANDMARKER_ROI = "landmarker-roi"  # FaceLandmarker run on a region BlazeFace proposed (profile search, stills)
    HAAR = "haar"                # OpenCV Haar cascades (estimated points)


@dataclass
class Face:
    """A face found in a frame."""

    box: tuple[float, float, float, float]          # x, y, w, h
    five_points: np.ndarray                          # 5 x 2 float32: left eye, right eye, nose, left mouth, right mouth (image left/right)
    score: float = 1.0
    landmarks: np.ndarray | None = None              # 478 x 3 (x, y px; z relative) when the landmarker found it
    pose: tuple[float, float, float] | None = None   # yaw, pitch, roll in degrees
    blendshapes: dict[str, float] = field(default_factory=dict)
    quality: FaceQuality | None = None
    detector: Detector = Detector.LANDMARKER

    @property
    def is_fallback(self) -> bool:
        """True when the face came from a fallback detector, not the 478-point landmarker."""
        return self.detector is not Detector.LANDMARKER

    @property
    def area(self) -> float:
        return float(self.box[2] * self.box[3])

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return (x + w / 2.0, y + h / 2.0)


@dataclass
class AlignedFace:
    """A face warped onto the 112 x 112 five-point template, ready for the embedder."""

    image: np.ndarray            # 112 x 112 x 3 uint8 BGR
    face: Face
    transform: np.ndarray        # 2 x 3 similarity matrix frame -> crop
    source: str = ""


@dataclass(frozen=True)
class Candidate:
    """One ranked gallery answer."""

    identity_id: int
    name: str
    score: float                 # cosine similarity in [-1, 1]


@dataclass(frozen=True)
class VerifyDecision:
    """Answer to "is this person who they claim?"."""

    identity_id: int
    name: str
    score: float
    threshold: float
    match: bool
    policy: str                  # how an identity's templates were combined (max, mean, centroid)


@dataclass(frozen=True)
class IdentifyDecision:
    """Answer to "who is this?" with an open-set "unknown"."""

    candidates: tuple[Candidate, ...]
    threshold: float
    identity_id: int | None      # None: unknown, or ambiguous (nobody is named)
    ambiguous: bool = False      # the best two reach the threshold within the ambiguity margin of each other
    ambiguity_margin: float = 0.0

    @property
    def is_unknown(self) -> bool:
        """Nobody reaches the threshold (an ambiguous answer is not unknown: someone does, but who is open)."""
        return self.identity_id is None and not self.ambiguous

    @property
    def outcome(self) -> str:
        """"identified", "ambiguous" or "unknown" (the audit log's decision)."""
        return "ambiguous" if self.ambiguous else "unknown" if self.identity_id is None else "identified"

    @property
    def runner_up(self) -> Candidate | None:
        """The second-ranked identity (the one the best is confused with when ambiguous)."""
        return self.candidates[1] if len(self.candidates) > 1 else None

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None
