"""Liveness (presentation-attack detection): passive MiniFASNet scorers, the active challenge, the policy.

Qt-free; the CLI (``faceapp liveness``, ``--liveness`` on verify/identify, ``liveness-eval``), the Live page
and the enrolment wizard call ``LivenessChecker`` / ``Challenge`` and record decisions through
``faceapp.services.audit.liveness_entry``.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule; loaded on first use (PEP 562) so that importing the package, e.g. for the challenge, does
# not import torch (the passive scorers need it): the GUI imports this before its window has painted
_EXPORTS = {
    "Action": "challenge", "Challenge": "challenge", "ChallengeResult": "challenge", "ChallengeStatus": "challenge",
    "Outcome": "challenge", "Step": "challenge", "random_steps": "challenge",
    "LivenessChecker": "check",
    "PAD_MODELS": "passive", "PassiveScore": "passive", "PassiveScorer": "passive",
    "LivenessDecision": "policy", "LivenessMode": "policy", "LivenessState": "policy", "PassiveThreshold": "policy",
    "decide": "policy", "passive_threshold": "policy", "save_passive_threshold": "policy",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'faceapp.liveness' has no attribute {name!r}")
    return getattr(importlib.import_module(f"faceapp.liveness.{_EXPORTS[name]}"), name)
