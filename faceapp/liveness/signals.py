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

A blink must also be an *eye* event: the eyes close and reopen while the rest of the face stays as it was
on the last open-eye frame. A bent or rotated print changes the apparent eye shape (the blendshapes read it
as closure) but it changes the whole face with it, so a candidate blink is voided when, on any frame of it,

- the head pose (yaw, pitch or roll) moved more than ``BLINK_MAX_POSE_DEG``;
- the face's shape moved: the landmarks outside the eye contours, after the best similarity fit (shift,
  scale, in-plane rotation) onto the reference frame's, are off by an RMS over ``BLINK_MAX_SHAPE`` x the
  inter-ocular distance;
- any non-eye blendshape (mouth, jaw, brow, cheek, nose) moved more than ``BLINK_MAX_EXPRESSION``.

Each limit is 1.5 x the largest value over the 8 blinks of ``mahie_test_1`` (1.86 deg, 0.0123, 0.251),
rounded up; ``mahie_test_4_low_fps`` and the NUAA replays were not used to choose them.
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
BLINK_MAX_POSE_DEG = 2.8
BLINK_MAX_SHAPE = 0.019
BLINK_MAX_EXPRESSION = 0.38
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


#: MediaPipe face-mesh indices of the two eye contours (FaceLandmarksConnections.FACE_LANDMARKS_LEFT/RIGHT_EYE):
#: the points a blink moves; every other of the 468 mesh points is "face shape"
EYE_CONTOUR_POINTS = frozenset((7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246,
                                249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466))
FACE_SHAPE_POINTS = np.array([i for i in range(468) if i not in EYE_CONTOUR_POINTS])
OUTER_EYE_CORNERS = (33, 263)


@dataclass(frozen=True)
class FaceChange:
    """How far a face moved from a reference frame, apart from its eyes: the largest pose angle change
    (degrees), the face-shape residual after a similarity fit (RMS / inter-ocular distance) and the largest
    change of a non-eye blendshape (with its name)."""

    pose_deg: float
    shape: float
    expression: float
    expression_name: str = ""

    def exceeds(self, other: "FaceChange") -> bool:
        return self.pose_deg > other.pose_deg or self.shape > other.shape or self.expression > other.expression

    def worst(self, other: "FaceChange") -> "FaceChange":
        """The element-wise larger of two changes."""
        expr = max((self.expression, self.expression_name), (other.expression, other.expression_name))
        return FaceChange(max(self.pose_deg, other.pose_deg), max(self.shape, other.shape), *expr)

    def describe(self) -> str:
        return (f"pose {self.pose_deg:.1f} deg, face shape {self.shape:.3f} x eye distance, "
                f"{self.expression_name or 'expression'} {self.expression:.2f}")


STILL_FACE_LIMITS = FaceChange(BLINK_MAX_POSE_DEG, BLINK_MAX_SHAPE, BLINK_MAX_EXPRESSION)
NO_CHANGE = FaceChange(0.0, 0.0, 0.0)
UNKNOWN_CHANGE = FaceChange(float("inf"), float("inf"), float("inf"), "unknown (no landmarks)")


def _similarity_residual(points: np.ndarray, reference: np.ndarray) -> float:
    """RMS distance between ``points`` mapped by their best similarity transform onto ``reference``
    (closed-form Umeyama fit) and ``reference``."""
    a = points - points.mean(axis=0)
    b = reference - reference.mean(axis=0)
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    s[-1] *= d
    u[:, -1] *= d
    scale = s.sum() / max(float((a ** 2).sum()), 1e-12)
    mapped = scale * a @ (u @ vt)
    return float(np.sqrt(((mapped - b) ** 2).sum(axis=1).mean()))


def face_change(reference: Face, face: Face) -> FaceChange | None:
    """How far ``face`` moved from ``reference`` outside the eyes; None when either lacks the landmarks,
    pose or blendshapes it takes (the caller must then refuse the blink)."""
    if reference.landmarks is None or face.landmarks is None or reference.pose is None or face.pose is None:
        return None
    pose = float(np.max(np.abs(np.subtract(face.pose, reference.pose))))
    ref_xy = np.asarray(reference.landmarks, dtype=np.float64)[:, :2]
    eye_distance = float(np.linalg.norm(ref_xy[OUTER_EYE_CORNERS[0]] - ref_xy[OUTER_EYE_CORNERS[1]]))
    if eye_distance <= 0:
        return None
    xy = np.asarray(face.landmarks, dtype=np.float64)[:, :2]
    shape = _similarity_residual(xy[FACE_SHAPE_POINTS], ref_xy[FACE_SHAPE_POINTS]) / eye_distance
    names = [n for n in reference.blendshapes if not n.startswith("eye") and n != "_neutral"
             and n in face.blendshapes]
    if not names:
        return None
    expression, name = max((abs(face.blendshapes[n] - reference.blendshapes[n]), n) for n in names)
    return FaceChange(pose, shape, float(expression), name)


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


@dataclass
class VoidedBlink:
    """An eye closure that was not taken for a blink because the rest of the face moved with it."""

    start_ms: float
    change: FaceChange

    @property
    def reason(self) -> str:
        return f"the whole face changed during the eye closure ({self.change.describe()})"


class BlinkDetector:
    """Causal blink detector on the eye-closure blendshape with a per-person open-eye baseline.

    Given the frame's ``face``, a closure only counts when the rest of the face stayed still from the last
    open-eye frame to the reopening (``limits``, see the module docstring); otherwise it goes to ``voided``.
    Without a face (closure values alone, e.g. a recorded signal) only the closure is judged."""

    def __init__(self, *, k: float = BLINK_K, min_rise: float = BLINK_MIN_RISE, max_closed_ms: float = 800.0,
                 limits: FaceChange = STILL_FACE_LIMITS) -> None:
        self.k, self.min_rise, self.max_closed_ms, self.limits = k, min_rise, max_closed_ms, limits
        self.baseline = RestingBaseline()
        self._closed: tuple[float, float, float] | None = None      # start, baseline, threshold
        self._open_face: Face | None = None                         # the last open-eye frame's face
        self._change = NO_CHANGE                                     # worst change since it
        self.events: list[BlinkEvent] = []
        self.voided: list[VoidedBlink] = []

    def update(self, timestamp_ms: float, closure: float, face: Face | None = None) -> BlinkEvent | None:
        """Feed one frame's closure (and its face); returns the blink that this frame completed, if any."""
        if self._closed is None:
            if self.baseline.ready:
                base, spread = self.baseline.level()
                threshold = base + max(self.k * spread, self.min_rise)
                if closure >= threshold:
                    self._closed = (timestamp_ms, base, threshold)
                    self._change = NO_CHANGE
                    self._track(face)
                    return None
            self.baseline.add(timestamp_ms, closure)
            self._open_face = face
            return None
        self._track(face)
        start, base, threshold = self._closed
        if closure < base + (threshold - base) / 2.0:
            self._closed = None
            self.baseline.add(timestamp_ms, closure)
            change, self._open_face = self._change, face
            if timestamp_ms - start <= self.max_closed_ms:
                if change.exceeds(self.limits):
                    self.voided.append(VoidedBlink(start, change))
                    return None
                event = BlinkEvent(start, timestamp_ms - start, threshold - base)
                self.events.append(event)
                return event
        elif timestamp_ms - start > 2 * self.max_closed_ms:
            self._closed = None          # eyes shut for long: not a blink; start over from the resting level
        return None

    def _track(self, face: Face | None) -> None:
        """Fold this frame's change from the last open-eye face into the candidate blink's worst change; a
        face that cannot show it stayed still (no reference, no landmarks, pose or blendshapes) voids it."""
        if face is None:
            return
        change = face_change(self._open_face, face) if self._open_face is not None else None
        self._change = self._change.worst(change if change is not None else UNKNOWN_CHANGE)


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
