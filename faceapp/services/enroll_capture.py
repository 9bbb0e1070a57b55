"""Choosing enrolment frames from a live stream: quality-gated, one person, several poses.

``PoseCollector`` looks at the main face of each processed frame (with the quality gate's reasons and
hints already filled in by ``services.live``) and keeps a frame when it passes the gate, is at least
``min_interval_ms`` after the last kept one and shows a pose (yaw, pitch) at least ``min_pose_delta``
degrees from every kept pose. It prompts the person through a few poses ("look straight at the
camera", "turn slightly left", ...). Someone who cannot move (or a video used as a camera) is not
stuck: after ``patience_ms`` without a new pose, any gated frame that is ``min_interval_ms`` apart is
kept (``relaxed`` says so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from faceapp.core.types import AlignedFace

POSE_PROMPTS = (
    "look straight at the camera",
    "turn slightly left",
    "turn slightly right",
    "tilt your head slightly up",
    "tilt your head slightly down",
)


@dataclass
class Offer:
    """The collector's answer for one frame."""

    kept: bool
    message: str                 # what to show the person: a hint, a prompt or "hold still"
    reasons: tuple[str, ...] = ()


@dataclass
class PoseCollector:
    """Keeps up to ``target`` diverse, quality-gated frames of one person (see module docstring)."""

    target: int = 5
    min_pose_delta: float = 8.0
    min_interval_ms: float = 400.0
    patience_ms: float = 3000.0
    kept: list[AlignedFace] = field(default_factory=list)
    poses: list[tuple[float, float] | None] = field(default_factory=list)
    relaxed: bool = False
    _last_kept_ms: float | None = None
    _since_ms: float | None = None
    frames_seen: int = 0
    frames_rejected: int = 0

    @property
    def done(self) -> bool:
        return len(self.kept) >= self.target

    @property
    def prompt(self) -> str:
        """The pose to ask for next."""
        if self.done:
            return "done: thank you"
        return POSE_PROMPTS[len(self.kept) % len(POSE_PROMPTS)]

    def reset(self) -> None:
        """Forget every kept frame."""
        self.kept.clear()
        self.poses.clear()
        self.relaxed = False
        self._last_kept_ms = self._since_ms = None
        self.frames_seen = self.frames_rejected = 0

    def remove(self, index: int) -> None:
        """Drop a kept frame (the operator removed it)."""
        del self.kept[index]
        del self.poses[index]

    def _distance(self, pose: tuple[float, float] | None) -> float:
        if pose is None:
            return math.inf
        known = [p for p in self.poses if p is not None]
        if not known:
            return math.inf
        return min(math.hypot(pose[0] - p[0], pose[1] - p[1]) for p in known)

    def offer(self, faces: list[Any], timestamp_ms: float) -> Offer:
        """Consider the faces of one frame (``services.live.FaceResult`` with gate reasons/hints)."""
        self.frames_seen += 1
        if self._since_ms is None:
            self._since_ms = timestamp_ms
        if self.done:
            return Offer(False, "done: thank you")
        if not faces:
            return Offer(False, "look at the camera", ("no face found",))
        if len(faces) > 1:
            return Offer(False, "only one person in view", (f"{len(faces)} faces found",))
        face = faces[0]
        if face.reasons:
            self.frames_rejected += 1
            message = face.hints[0] if face.hints else "hold still"
            return Offer(False, message, tuple(face.reasons))
        if self._last_kept_ms is not None and timestamp_ms - self._last_kept_ms < self.min_interval_ms:
            return Offer(False, self.prompt)
        q = face.face.quality
        pose = (float(q.yaw), float(q.pitch)) if q is not None and q.yaw is not None and q.pitch is not None else None
        diverse = self._distance(pose) >= self.min_pose_delta
        waited = timestamp_ms - (self._last_kept_ms if self._last_kept_ms is not None else self._since_ms)
        if not diverse and waited < self.patience_ms:
            return Offer(False, self.prompt)
        if not diverse:
            self.relaxed = True
        self.kept.append(face.aligned)
        self.poses.append(pose)
        self._last_kept_ms = timestamp_ms
        return Offer(True, self.prompt if not self.done else "done: thank you")
