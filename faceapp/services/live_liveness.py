"""Liveness in the live loop: the state of the main face (live / attack suspected / not checked) under the
policy the operator chose, computed on the live thread next to detection, never on the GUI thread.

    liveness = LiveLiveness(settings, store=store, operator="ana")     # settings: LiveSettings (read every frame)
    decision = liveness.update(frame, face_results)                   # also sets face_results[0].liveness
    liveness.prompt                                                   # "Blink", "Turn your head left ..." or ""

Cost bound: the passive MiniFASNet pair runs at most once every ``passive_every`` frames for the tracked
face (a new face - the box jumps, or no face was seen for ``LOST_MS`` - starts a new track: its scores and
its challenge start over); the decision uses the median of the track's last ``PASSIVE_WINDOW`` scores. The
challenge reads the blendshapes and pose the landmarker already computed (no model of its own).

Every decision that changes for a track (and a challenge that ends) is written to the audit log through
``faceapp.services.audit.liveness_entry`` (operation "liveness", details: source "live", the frame).
A MATCH that requires liveness is withheld by ``withheld_by_liveness`` (the Live page's panel and the live
decision auditor both ask it), so what is shown and what is audited agree.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from typing import Any, Sequence

from faceapp.core.errors import ExitCode, FaceAppError
from faceapp.core.types import Frame
from faceapp.liveness.challenge import DEFAULT_TIME_LIMIT_MS, Challenge, Outcome, frame_brightness, random_steps
from faceapp.liveness.check import LivenessChecker, median_score
from faceapp.liveness.policy import LivenessDecision, LivenessMode, LivenessState, PassiveScore

log = logging.getLogger(__name__)

PASSIVE_EVERY_FRAMES = 10       # passive scoring: at most once every this many frames per tracked face
PASSIVE_WINDOW = 5              # the decision uses the median of the track's last scores
TRACK_IOU = 0.3                 # a main-face box overlapping the previous one less than this is a new person
LOST_MS = 1_000.0               # no face for longer than this ends the track
LIVENESS_MODES = tuple(m.value for m in LivenessMode)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def is_accepting(face: Any) -> bool:
    """True when the face's answer admits someone: a verify MATCH or a named identification (not unknown, not
    ambiguous: an ambiguous answer names nobody, so there is nothing to withhold)."""
    if face is None:
        return False
    if getattr(face, "verify", None) is not None:
        return bool(face.verify.match)
    identify = getattr(face, "identify", None)
    return identify is not None and identify.identity_id is not None


def withheld_by_liveness(face: Any, settings: Any) -> LivenessDecision | None:
    """The liveness decision that withholds ``face``'s accepting answer when the settings require liveness
    before a MATCH and the face is not live (None: nothing withheld). A face never checked is withheld too."""
    if not getattr(settings, "require_liveness", False) or not is_accepting(face):
        return None
    decision = getattr(face, "liveness", None)
    if decision is not None and decision.is_live:
        return None
    return decision or LivenessDecision(LivenessState.NOT_CHECKED, LivenessMode(settings.liveness_mode),
                                        reason="no liveness decision for this face yet")


class LiveLiveness:
    """The main face's liveness on a stream (see the module docstring). Not thread-safe except
    ``restart_challenge`` (the GUI thread may call it while the live thread runs ``update``)."""

    def __init__(self, settings: Any, checker: LivenessChecker | None = None, *, store: Any = None,
                 operator: str | None = None, operation: str = "liveness", passive_every: int = PASSIVE_EVERY_FRAMES,
                 time_limit_ms: float = DEFAULT_TIME_LIMIT_MS, rng: random.Random | None = None) -> None:
        self.settings = settings                     # .liveness_mode: off / passive / challenge / both
        self.checker = checker or LivenessChecker(LivenessMode.OFF)
        self.store = store
        self.operator = operator
        self.operation = operation                   # the audit operation ("enroll-liveness" for the wizard)
        self.passive_every = max(1, int(passive_every))
        self.time_limit_ms = float(time_limit_ms)
        self.rng = rng or random.SystemRandom()
        self.prompt = ""                             # what the person must do now ("" when nothing)
        self.decision: LivenessDecision | None = None
        self.scored = 0                              # passive forward passes so far (the cost bound's witness)
        self.audited: deque[Any] = deque(maxlen=20)  # audit records written, newest last
        self.tracks = 0
        self._restart = threading.Event()
        self._reset_track(None)

    # -- tracking ---------------------------------------------------------------------------------
    def _reset_track(self, box: Sequence[float] | None) -> None:
        self._box = tuple(box) if box is not None else None
        self._scores: deque[PassiveScore] = deque(maxlen=PASSIVE_WINDOW)
        self._since_score = 0
        self._challenge: Challenge | None = None
        self._audited_key: tuple[Any, ...] | None = None
        self._last_seen: float | None = None
        self.decision = None
        if box is not None:
            self.tracks += 1

    def restart_challenge(self) -> None:
        """Start a fresh challenge (new random steps) on the next frame; the passive scores are kept."""
        self._restart.set()

    def _follow(self, boxes: list[Sequence[float]], now_ms: float) -> None:
        """Keep the track when the main face stays in place, start a new one when it jumps or is lost."""
        if not boxes:
            if self._box is not None and self._last_seen is not None and now_ms - self._last_seen > LOST_MS:
                self._reset_track(None)
            return
        gap = self._last_seen is not None and now_ms - self._last_seen > LOST_MS
        if self._box is None or gap or box_iou(self._box, boxes[0]) < TRACK_IOU:
            self._reset_track(boxes[0])
        self._box = tuple(boxes[0])
        self._last_seen = now_ms

    # -- per frame --------------------------------------------------------------------------------
    def update(self, frame: Frame, results: Sequence[Any]) -> LivenessDecision | None:
        """Judge one processed frame (``results``: its FaceResults, main face first); sets the main face's
        ``liveness`` and returns the decision (None when liveness is off or no face was ever tracked)."""
        mode = LivenessMode(getattr(self.settings, "liveness_mode", "off"))
        if mode is LivenessMode.OFF:
            if self.checker.mode is not LivenessMode.OFF or self._box is not None:
                self.checker.mode = mode
                self._reset_track(None)
            self.prompt = ""
            return None
        if mode is not self.checker.mode:
            self.checker.mode = mode
            self._reset_track(None)
        faces = [r.face for r in results]
        self._follow([f.box for f in faces], frame.timestamp_ms)
        if self._box is None:
            self.prompt = "Look at the camera" if mode.challenge else ""
            return None
        passive_problem = self._score_passive(frame, faces) if mode.passive else None
        challenge_result = self._run_challenge(frame, faces) if mode.challenge else None
        problem, cause = passive_problem or (None, None)
        passive = median_score(list(self._scores)) if self._scores else None
        decision = self.checker.decide(passive=passive, challenge=challenge_result, problem=problem, cause=cause,
                                       extra={"frames_scored": len(self._scores), "track": self.tracks})
        self.decision = decision
        if results:
            results[0].liveness = decision
        self._audit(decision, frame)
        return decision

    def _score_passive(self, frame: Frame, faces: Sequence[Any]) -> tuple[str, ExitCode] | None:
        """Score the main face when its turn has come; a problem (no weights, several faces) or None."""
        scorer = self.checker.scorer
        if scorer is None:
            return f"passive check not run: {self.checker.scorer_error}", ExitCode.MODEL_ASSET
        if len(faces) > 1:
            return f"{len(faces)} faces in view; liveness needs exactly one", ExitCode.SEVERAL_FACES
        if not faces:
            return None
        self._since_score += 1
        if self._scores and self._since_score < self.passive_every:
            return None
        self._scores.append(scorer.score(frame.image, faces[0].box))
        self._since_score = 0
        self.scored += 1
        return None

    def _run_challenge(self, frame: Frame, faces: Sequence[Any]) -> Any:
        """Advance the track's challenge by one frame (a new one when asked); its result, prompt set."""
        if self._restart.is_set():
            self._restart.clear()
            self._challenge = None
            self._audited_key = None
        if self._challenge is None:
            self._challenge = Challenge(random_steps(self.rng), time_limit_ms=self.time_limit_ms)
        status = self._challenge.update(faces, frame.timestamp_ms, brightness=frame_brightness(frame.image))
        if status.done:
            self.prompt = {Outcome.PASSED: "Challenge passed", Outcome.FAILED: "Challenge failed",
                           }.get(status.outcome, f"Challenge not checked: {status.reason}")
        else:
            self.prompt = f"{status.prompt} ({status.steps_done + 1}/{status.steps_total}, " \
                          f"{status.time_left_ms / 1000:.0f} s)"
        return self._challenge.result()

    def _audit(self, decision: LivenessDecision, frame: Frame) -> None:
        """One audit entry per (track, state, challenge outcome) change; a running challenge is not a decision."""
        if self.store is None:
            return
        challenge = decision.challenge
        if challenge is not None and challenge.outcome is Outcome.RUNNING and decision.state is not LivenessState.ATTACK:
            return
        key = (self.tracks, decision.state, challenge.outcome if challenge is not None else None)
        if key == self._audited_key:
            return
        from faceapp.services.audit import liveness_entry

        try:
            record = self.store.audit.append(liveness_entry(decision, operation=self.operation, operator=self.operator,
                                                            details={"source": "live", "frame": frame.source}),
                                             queue_when_locked=True)   # locked: queued durably (record None)
        except FaceAppError as error:              # neither written nor queued: must not stop the live view
            log.warning("live liveness decision not audited: %s", error)
            return
        self._audited_key = key
        if record is not None:
            self.audited.append(record)

