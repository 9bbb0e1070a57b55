"""The active liveness challenge: blink, turn the head left / right by a random amount, smile; random order,
one time limit, judged frame by frame from the landmarker's blendshapes and pose (no extra model runs).

    challenge = Challenge.random(rng)               # e.g. [turn_left 19 deg, blink, smile], 12 s
    for frame in frames:
        status = challenge.update(pipeline.detect(frame.image, frame.timestamp_ms), frame.timestamp_ms,
                                  brightness=frame_brightness(frame.image))
        show(status.prompt)
        if status.done: break
    result = challenge.result()                      # passed / failed / not checked, with the reason

Bad input never passes: several faces in a frame, no face for longer than ``max_gap_ms``, a frame too dark
(mean grey under ``min_brightness``) for too long, a face without blendshapes (a fallback detector) or a
window that ends before the challenge could be judged each give "not checked" with the reason.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence

import cv2
import numpy as np

from faceapp.core.types import Face
from faceapp.liveness.signals import BlinkDetector, RestingBaseline, RiseDetector, eye_closure, smile_level, yaw_of

TURN_RANGE_DEG = (15.0, 25.0)
DEFAULT_TIME_LIMIT_MS = 12_000.0
MAX_GAP_MS = 1_000.0
MIN_BRIGHTNESS = 40.0
#: the yaw baseline is taken from the first frames, when the person faces the camera
YAW_BASELINE_FRAMES = 5


class Action(str, Enum):
    """One step of the challenge."""

    BLINK = "blink"
    TURN_LEFT = "turn_left"        # the subject's left (the image's right on an unmirrored camera)
    TURN_RIGHT = "turn_right"
    SMILE = "smile"


class Outcome(str, Enum):
    """Where a challenge stands."""

    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"              # the window or time ran out with steps left: attack suspected
    NOT_CHECKED = "not checked"    # the input could not be judged (faces, light, length): never a pass


@dataclass(frozen=True)
class Step:
    """An action, with the turn angle in degrees for the turns."""

    action: Action
    degrees: float = 0.0

    @property
    def prompt(self) -> str:
        if self.action is Action.BLINK:
            return "Blink"
        if self.action is Action.SMILE:
            return "Smile"
        side = "left" if self.action is Action.TURN_LEFT else "right"
        return f"Turn your head {side} (about {self.degrees:.0f} degrees)"


@dataclass
class ChallengeStatus:
    """What a view shows after a frame: outcome, the current prompt, steps done, time left, the reason."""

    outcome: Outcome
    prompt: str
    steps_done: int
    steps_total: int
    time_left_ms: float
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.outcome is not Outcome.RUNNING


@dataclass
class ChallengeResult:
    """The end of a challenge (what the policy and the audit log get)."""

    outcome: Outcome
    steps: tuple[Step, ...]
    steps_done: int
    reason: str
    elapsed_ms: float
    frames: int
    blinks: int = 0
    voided_blinks: int = 0         # eye closures refused as blinks because the whole face changed with them
    details: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"outcome": self.outcome.value, "steps": [f"{s.action.value}" + (f":{s.degrees:.0f}" if s.degrees else "")
                                                         for s in self.steps],
                "steps_done": self.steps_done, "reason": self.reason, "elapsed_s": round(self.elapsed_ms / 1000, 3),
                "frames": self.frames, "blinks": self.blinks, "voided_blinks": self.voided_blinks}


def random_steps(rng: random.Random, actions: Sequence[Action] = (Action.BLINK, Action.SMILE),
                 *, turns: int = 1, turn_range: tuple[float, float] = TURN_RANGE_DEG) -> tuple[Step, ...]:
    """``actions`` plus ``turns`` head turns to a random side by a random angle, in random order."""
    steps = [Step(a) for a in actions]
    for _ in range(turns):
        side = rng.choice((Action.TURN_LEFT, Action.TURN_RIGHT))
        steps.append(Step(side, round(rng.uniform(*turn_range), 1)))
    rng.shuffle(steps)
    return tuple(steps)


def frame_brightness(image_bgr: np.ndarray) -> float:
    """Mean grey level of a frame (0..255), on a 64-px-wide thumbnail (cheap)."""
    h, w = image_bgr.shape[:2]
    small = cv2.resize(image_bgr, (64, max(1, round(64 * h / max(w, 1)))), interpolation=cv2.INTER_AREA)
    return float(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).mean())


class Challenge:
    """Feed it the faces of each frame; it walks through ``steps`` in order within ``time_limit_ms``."""

    def __init__(self, steps: Sequence[Step], *, time_limit_ms: float = DEFAULT_TIME_LIMIT_MS,
                 max_gap_ms: float = MAX_GAP_MS, min_brightness: float = MIN_BRIGHTNESS) -> None:
        if not steps:
            raise ValueError("a challenge needs at least one step")
        self.steps = tuple(steps)
        self.time_limit_ms = float(time_limit_ms)
        self.max_gap_ms = float(max_gap_ms)
        self.min_brightness = float(min_brightness)
        self._index = 0
        self._start: float | None = None
        self._last_face: float | None = None
        self._dark_since: float | None = None
        self._now = 0.0
        self._frames = 0
        self._outcome = Outcome.RUNNING
        self._reason = ""
        self._blink = BlinkDetector()
        self._smile = RiseDetector()
        self._yaw = RestingBaseline(window_ms=float("inf"), min_frames=YAW_BASELINE_FRAMES)

    @classmethod
    def random(cls, rng: random.Random | None = None, **kwargs: float) -> "Challenge":
        """A challenge of blink, smile and one turn by a random angle, in random order."""
        return cls(random_steps(rng or random.SystemRandom()), **kwargs)

    # ------------------------------------------------------------------ feeding frames
    def update(self, faces: Sequence[Face], timestamp_ms: float, *, brightness: float | None = None) -> ChallengeStatus:
        """Judge one frame (``faces`` as the pipeline found them, largest first)."""
        if self._outcome is not Outcome.RUNNING:
            return self.status()
        self._frames += 1
        self._now = float(timestamp_ms)
        if self._start is None:
            self._start = self._last_face = self._now
        if self._now - self._start > self.time_limit_ms:
            return self._finish(Outcome.FAILED, f"time limit of {self.time_limit_ms / 1000:.0f} s reached at step "
                                                f"{self._index + 1} of {len(self.steps)} ({self.steps[self._index].prompt})")
        if brightness is not None and brightness < self.min_brightness:
            self._dark_since = self._now if self._dark_since is None else self._dark_since
            if self._now - self._dark_since > self.max_gap_ms:
                return self._finish(Outcome.NOT_CHECKED, f"too dark (mean grey {brightness:.0f} < "
                                                         f"{self.min_brightness:.0f}) for the challenge")
            return self.status()
        self._dark_since = None
        if len(faces) > 1:
            return self._finish(Outcome.NOT_CHECKED, f"{len(faces)} faces in view during the challenge; "
                                                     "exactly one person must be in front of the camera")
        if not faces:
            last = self._now if self._last_face is None else self._last_face
            if self._now - last > self.max_gap_ms:
                return self._finish(Outcome.NOT_CHECKED, "no face in view for more than "
                                                         f"{self.max_gap_ms / 1000:.1f} s during the challenge")
            return self.status()
        face = faces[0]
        self._last_face = self._now
        closure, smile, yaw = eye_closure(face), smile_level(face), yaw_of(face)
        if closure is None or smile is None or yaw is None:
            return self._finish(Outcome.NOT_CHECKED, "the face has no blendshapes or pose (a fallback detector "
                                                     "found it): the challenge needs the MediaPipe landmarker")
        self._judge(face, closure, smile, yaw)
        return self.status()

    def _judge(self, face: Face, closure: float, smile: float, yaw: float) -> None:
        """Advance the detectors by one frame; complete the current step when its signal is seen (a blink
        only when the rest of the face stayed still through it)."""
        blinked = self._blink.update(self._now, closure, face) is not None
        smiled = self._smile.update(self._now, smile)
        if not self._yaw.ready:
            self._yaw.add(self._now, yaw)
            return
        yaw_base, _ = self._yaw.level()
        step = self.steps[self._index]
        turned = yaw - yaw_base
        done = {Action.BLINK: blinked, Action.SMILE: smiled,
                Action.TURN_LEFT: turned >= step.degrees, Action.TURN_RIGHT: -turned >= step.degrees}[step.action]
        if done:
            self._index += 1
            if self._index == len(self.steps):
                self._finish(Outcome.PASSED, f"all {len(self.steps)} steps done")

    def end_of_input(self) -> ChallengeStatus:
        """The frames ran out (a recorded video ended) before the challenge finished."""
        if self._outcome is Outcome.RUNNING:
            if self._frames == 0 or not self._yaw.ready or not self._blink.baseline.ready:
                return self._finish(Outcome.NOT_CHECKED, f"too short: {self._frames} usable frames, not enough to "
                                                         "learn the person's resting face before the challenge")
            return self._finish(Outcome.FAILED, f"the video ended at step {self._index + 1} of {len(self.steps)} "
                                                f"({self.steps[self._index].prompt})")
        return self.status()

    def _finish(self, outcome: Outcome, reason: str) -> ChallengeStatus:
        self._outcome, self._reason = outcome, reason
        return self.status()

    # ------------------------------------------------------------------ state
    def status(self) -> ChallengeStatus:
        elapsed = self._now - self._start if self._start is not None else 0.0
        prompt = self.steps[self._index].prompt if self._outcome is Outcome.RUNNING else self._outcome.value
        return ChallengeStatus(self._outcome, prompt, self._index, len(self.steps),
                               max(0.0, self.time_limit_ms - elapsed), self._reason)

    def result(self) -> ChallengeResult:
        elapsed = self._now - self._start if self._start is not None else 0.0
        return ChallengeResult(self._outcome, self.steps, self._index, self._reason, elapsed, self._frames,
                               blinks=len(self._blink.events), voided_blinks=len(self._blink.voided))
