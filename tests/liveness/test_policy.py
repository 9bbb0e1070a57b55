"""The policy: which state each combination of checks gives, exit codes, thresholds saved per PAD model."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceapp.core.errors import ExitCode
from faceapp.liveness.challenge import ChallengeResult, Outcome, Step, Action
from faceapp.liveness.passive import PassiveScore
from faceapp.liveness.policy import (DEFAULT_PASSIVE_THRESHOLD, LivenessMode, LivenessState, PassiveThreshold,
                                     decide, passive_threshold, save_passive_threshold)

T = PassiveThreshold(0.6)
HIGH, LOW = PassiveScore(0.9, {"a": 0.9}), PassiveScore(0.3, {"a": 0.3})


def _challenge(outcome: Outcome) -> ChallengeResult:
    return ChallengeResult(outcome, (Step(Action.BLINK),), int(outcome is Outcome.PASSED), "why", 1000.0, 30)


@pytest.mark.parametrize("mode,passive,challenge,problem,state", [
    (LivenessMode.PASSIVE, HIGH, None, None, LivenessState.LIVE),
    (LivenessMode.PASSIVE, LOW, None, None, LivenessState.ATTACK),
    (LivenessMode.PASSIVE, None, None, "weights missing", LivenessState.NOT_CHECKED),
    (LivenessMode.CHALLENGE, None, Outcome.PASSED, None, LivenessState.LIVE),
    (LivenessMode.CHALLENGE, None, Outcome.FAILED, None, LivenessState.ATTACK),
    (LivenessMode.CHALLENGE, None, Outcome.NOT_CHECKED, None, LivenessState.NOT_CHECKED),
    (LivenessMode.BOTH, HIGH, Outcome.PASSED, None, LivenessState.LIVE),
    (LivenessMode.BOTH, HIGH, Outcome.FAILED, None, LivenessState.ATTACK),
    (LivenessMode.BOTH, LOW, Outcome.PASSED, None, LivenessState.ATTACK),
    (LivenessMode.BOTH, HIGH, None, None, LivenessState.NOT_CHECKED),          # the challenge never ran
    (LivenessMode.BOTH, None, Outcome.PASSED, "weights missing", LivenessState.NOT_CHECKED),
    (LivenessMode.OFF, HIGH, Outcome.PASSED, None, LivenessState.NOT_CHECKED),
])
def test_decision_table(mode, passive, challenge, problem, state) -> None:  # noqa: ANN001
    decision = decide(mode, passive=passive, threshold=T if passive else None,
                      challenge=_challenge(challenge) if challenge else None, problem=problem)
    assert decision.state is state
    assert decision.is_live == (state is LivenessState.LIVE)


def test_exit_codes_follow_the_state_and_the_cause() -> None:
    assert decide(LivenessMode.PASSIVE, passive=HIGH, threshold=T).exit_code is ExitCode.OK
    assert decide(LivenessMode.PASSIVE, passive=LOW, threshold=T).exit_code is ExitCode.ATTACK_SUSPECTED
    missing = decide(LivenessMode.PASSIVE, problem="x", cause=ExitCode.MODEL_ASSET)
    assert missing.exit_code is ExitCode.MODEL_ASSET
    assert decide(LivenessMode.CHALLENGE, challenge=_challenge(Outcome.NOT_CHECKED)).exit_code \
        is ExitCode.LIVENESS_NOT_CHECKED
    assert len({c.value for c in ExitCode}) == len(ExitCode)


def test_score_at_the_threshold_is_live() -> None:
    assert decide(LivenessMode.PASSIVE, passive=PassiveScore(0.6), threshold=T).state is LivenessState.LIVE


def test_thresholds_are_saved_per_pad_model(tmp_path: Path) -> None:
    file = tmp_path / "t.json"
    assert passive_threshold("pad:a", path=file) == PassiveThreshold(DEFAULT_PASSIVE_THRESHOLD, "default")
    save_passive_threshold("pad:a", 0.42, target_bpcer=0.05, path=file)
    got = passive_threshold("pad:a", path=file)
    assert (got.value, got.source, got.target_bpcer) == (0.42, "saved", 0.05)
    assert passive_threshold("pad:b", path=file).source == "default"
    with pytest.raises(ValueError, match="0..1"):
        save_passive_threshold("pad:a", 1.5, path=file)
