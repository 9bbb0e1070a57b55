"""Liveness of a still image or of a stream of frames, under a policy: the use case every interface calls.

    checker = LivenessChecker(LivenessMode.BOTH)                  # PAD weights found as in liveness.passive
    decision = checker.check_image(image, faces)                  # passive only (a still shows no challenge)
    decision = checker.check_frames(frames, pipeline, steps)      # challenge (+ passive on sampled frames)

A missing or wrong PAD weight file does not raise here: the decision is "not checked" naming the file
(exit code 5), so a verify with ``--liveness`` still answers and never counts the face as live.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from faceapp.core.errors import ExitCode, ModelAssetError
from faceapp.core.types import Face, Frame
from faceapp.liveness.challenge import Challenge, Outcome, Step, frame_brightness
from faceapp.liveness.policy import LivenessDecision, LivenessMode, PassiveScore, decide, passive_threshold

if TYPE_CHECKING:                       # the scorer (and torch) loads only when a passive check runs
    from faceapp.liveness.passive import PassiveScorer

#: passive scoring on a stream: every n-th frame with exactly one face, at most this many frames
PASSIVE_EVERY = 5
PASSIVE_MAX_FRAMES = 12
MIN_VIDEO_FRAMES = 10


class LivenessChecker:
    """Runs the checks ``mode`` asks for and decides; the PAD scorer is loaded once, on first need."""

    def __init__(self, mode: LivenessMode | str = LivenessMode.PASSIVE, *, pad_model_dir: Path | None = None,
                 thresholds_path: Path | None = None, scorer: PassiveScorer | None = None) -> None:
        self.mode = LivenessMode(mode)
        self._pad_model_dir = pad_model_dir
        self._thresholds_path = thresholds_path
        self._scorer = scorer
        self._scorer_error: str | None = None

    @property
    def scorer(self) -> PassiveScorer | None:
        """The passive scorer, or None (``scorer_error`` says why) when its weights are missing or wrong."""
        if self._scorer is None and self._scorer_error is None:
            try:
                from faceapp.liveness.passive import PassiveScorer

                self._scorer = PassiveScorer(self._pad_model_dir)
            except ModelAssetError as error:
                self._scorer_error = str(error)
        return self._scorer

    @property
    def scorer_error(self) -> str | None:
        return self._scorer_error

    def _passive_ready(self) -> tuple[PassiveScorer | None, str | None]:
        if not self.mode.passive:
            return None, None
        scorer = self.scorer
        return scorer, (None if scorer is not None else f"passive check not run: {self._scorer_error}")

    def decide(self, **kwargs) -> LivenessDecision:  # noqa: ANN003 - forwarded to policy.decide()
        """The decision under this checker's mode from checks run elsewhere (the live loop), with the PAD
        scorer's id and its stored threshold."""
        return self._decide(**kwargs)

    def _decide(self, **kwargs) -> LivenessDecision:  # noqa: ANN003 - forwarded to decide()
        scorer = self._scorer
        pad_id = scorer.id if scorer is not None else None
        threshold = passive_threshold(pad_id, path=self._thresholds_path) if kwargs.get("passive") else None
        return decide(self.mode, threshold=threshold, pad_id=pad_id, **kwargs)

    # ------------------------------------------------------------------ stills
    def check_image(self, image_bgr: np.ndarray, faces: Sequence[Face]) -> LivenessDecision:
        """Passive liveness of the one face in a still; a challenge cannot be judged on a still."""
        if self.mode is LivenessMode.OFF:
            return self._decide()
        scorer, problem = self._passive_ready()
        if problem:
            return self._decide(problem=problem, cause=ExitCode.MODEL_ASSET)
        if not faces:
            return self._decide(problem="no face found", cause=ExitCode.NO_FACE)
        if len(faces) > 1:
            return self._decide(problem=f"{len(faces)} faces found; liveness needs exactly one",
                                cause=ExitCode.SEVERAL_FACES)
        passive = scorer.score(image_bgr, faces[0].box) if scorer is not None else None
        problem = "a still image cannot show the active challenge" if self.mode.challenge else None
        return self._decide(passive=passive, problem=problem,
                            cause=ExitCode.LIVENESS_NOT_CHECKED if problem else None)

    # ------------------------------------------------------------------ streams
    def check_frames(self, frames: Iterable[Frame], pipeline, steps: Sequence[Step],  # noqa: ANN001 - FacePipeline
                     *, time_limit_ms: float | None = None) -> LivenessDecision:
        """Run the challenge ``steps`` (when the mode has one) over ``frames`` (a video-mode pipeline finds the
        faces) and score sampled single-face frames passively (when the mode has it)."""
        if self.mode is LivenessMode.OFF:
            return self._decide()
        scorer, problem = self._passive_ready()
        challenge = Challenge(steps, time_limit_ms=time_limit_ms or float("inf")) if self.mode.challenge else None
        scores: list[PassiveScore] = []
        count = several = faceless = 0
        for frame in frames:
            count += 1
            faces = pipeline.detect(frame.image, frame.timestamp_ms)
            several += len(faces) > 1
            faceless += not faces
            if challenge is not None:
                status = challenge.update(faces, frame.timestamp_ms, brightness=frame_brightness(frame.image))
                if status.done and (scorer is None or len(scores) >= PASSIVE_MAX_FRAMES):
                    break
            if scorer is not None and len(faces) == 1 and count % PASSIVE_EVERY == 1 and len(scores) < PASSIVE_MAX_FRAMES:
                scores.append(scorer.score(frame.image, faces[0].box))
            if challenge is None and len(scores) >= PASSIVE_MAX_FRAMES:
                break
        result = None
        if challenge is not None:
            challenge.end_of_input()
            result = challenge.result()
        passive = median_score(scores) if scores else None
        extra = {"frames": count}
        if count < MIN_VIDEO_FRAMES and (result is None or result.outcome is not Outcome.PASSED):
            return self._decide(problem=f"video too short: {count} frames (at least {MIN_VIDEO_FRAMES} needed)",
                                cause=ExitCode.LIVENESS_NOT_CHECKED, extra=extra)
        if problem:
            return self._decide(challenge=result, problem=problem, cause=ExitCode.MODEL_ASSET, extra=extra)
        if result is not None and result.outcome is Outcome.NOT_CHECKED:
            cause = ExitCode.SEVERAL_FACES if "faces in view" in result.reason else (
                ExitCode.NO_FACE if "no face" in result.reason else ExitCode.LIVENESS_NOT_CHECKED)
            return self._decide(passive=passive, challenge=result, problem=result.reason, cause=cause, extra=extra)
        if self.mode.passive and passive is None:
            cause = ExitCode.SEVERAL_FACES if several else ExitCode.NO_FACE
            what = "several faces in every sampled frame" if several else "no face in the sampled frames"
            return self._decide(challenge=result, problem=what, cause=cause, extra=extra)
        return self._decide(passive=passive, challenge=result, extra=extra)


def median_score(scores: Sequence[PassiveScore]) -> PassiveScore:
    """The per-model medians over frames, fused again as their mean (robust to a few bad frames)."""
    names = list(scores[0].per_model)
    per_model = {n: float(np.median([s.per_model[n] for s in scores])) for n in names}
    return PassiveScore(live=float(np.mean(list(per_model.values()))), per_model=per_model)
