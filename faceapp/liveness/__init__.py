"""Liveness (presentation-attack detection): passive MiniFASNet scorers, the active challenge, the policy.

Qt-free; the CLI (``faceapp liveness``, ``--liveness`` on verify/identify, ``liveness-eval``), the Live page
and the enrolment wizard call ``LivenessChecker`` / ``Challenge`` and record decisions through
``faceapp.services.audit.liveness_entry``.
"""

from faceapp.liveness.challenge import Action, Challenge, ChallengeResult, ChallengeStatus, Outcome, Step, random_steps
from faceapp.liveness.check import LivenessChecker
from faceapp.liveness.passive import PAD_MODELS, PassiveScore, PassiveScorer
from faceapp.liveness.policy import (LivenessDecision, LivenessMode, LivenessState, PassiveThreshold, decide,
                                     passive_threshold, save_passive_threshold)

__all__ = [
    "PAD_MODELS", "Action", "Challenge", "ChallengeResult", "ChallengeStatus", "LivenessChecker", "LivenessDecision",
    "LivenessMode", "LivenessState", "Outcome", "PassiveScore", "PassiveScorer", "PassiveThreshold", "Step", "decide",
    "passive_threshold", "random_steps", "save_passive_threshold",
]
