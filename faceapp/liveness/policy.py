"""The liveness policy: which checks run (off / passive / challenge / both), the passive threshold stored
per PAD model, and the one function that turns check results into a decision.

Decision states (what every interface shows next to the verdict and the audit log records):

- ``live``: every check the mode asks for ran and passed;
- ``attack suspected``: a check ran and failed (passive score under the threshold, challenge not done);
- ``not checked``: a check could not run (no PAD weights, no face, several faces, too dark, too short) or
  the mode is ``off``. Never a pass: a MATCH that requires liveness is withheld.

Passive thresholds resolve like the verification thresholds: ``saved`` (``<data>/liveness_thresholds.json``,
keyed by the PAD scorer's id: names + weight hashes; written by ``faceapp liveness-threshold`` and the
Thresholds tab), else ``default`` (``DEFAULT_PASSIVE_THRESHOLD``, chosen by ``faceapp liveness-eval`` on
NUAA subjects 0001-0004 at BPCER <= 5 %, see its report).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from faceapp.core.errors import ExitCode, InputFileError
from faceapp.core.files import atomic_write
from faceapp.core.paths import data_dir
from faceapp.liveness.challenge import ChallengeResult, Outcome

DEFAULT_PASSIVE_THRESHOLD = 0.5
THRESHOLDS_FILE = "liveness_thresholds.json"



@dataclass(frozen=True)
class PassiveScore:
    """Probability of "live" per PAD model and fused (their mean), in 0..1 (``faceapp.liveness.passive`` makes
    it; defined here, without torch, so the policy and the live loop can be imported before any model)."""

    live: float
    per_model: dict[str, float] = field(default_factory=dict)

class LivenessMode(str, Enum):
    """Which checks run."""

    OFF = "off"
    PASSIVE = "passive"
    CHALLENGE = "challenge"
    BOTH = "both"

    @property
    def passive(self) -> bool:
        return self in (LivenessMode.PASSIVE, LivenessMode.BOTH)

    @property
    def challenge(self) -> bool:
        return self in (LivenessMode.CHALLENGE, LivenessMode.BOTH)


class LivenessState(str, Enum):
    """The answer shown next to the verdict."""

    LIVE = "live"
    ATTACK = "attack suspected"
    NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class PassiveThreshold:
    """Passive score threshold (live when score >= value) and where it came from."""

    value: float = DEFAULT_PASSIVE_THRESHOLD
    source: str = "default"
    target_bpcer: float | None = None
    saved_at: str | None = None


@dataclass(frozen=True)
class LivenessDecision:
    """A liveness decision with everything the audit log and the JSON output carry."""

    state: LivenessState
    mode: LivenessMode
    reason: str
    passive: PassiveScore | None = None
    threshold: PassiveThreshold | None = None
    challenge: ChallengeResult | None = None
    pad_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    cause: ExitCode | None = None      # why it is "not checked" (no face, several faces, missing weights...)

    @property
    def exit_code(self) -> ExitCode:
        """The CLI exit status: OK live, ATTACK_SUSPECTED, else the cause of "not checked" (MODEL_ASSET missing
        PAD weights, NO_FACE, SEVERAL_FACES, LIVENESS_NOT_CHECKED too short / too dark / not judgeable)."""
        if self.state is LivenessState.LIVE:
            return ExitCode.OK
        if self.state is LivenessState.ATTACK:
            return ExitCode.ATTACK_SUSPECTED
        return self.cause or ExitCode.LIVENESS_NOT_CHECKED

    @property
    def is_live(self) -> bool:
        return self.state is LivenessState.LIVE

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state.value, "live": self.is_live, "mode": self.mode.value,
                               "reason": self.reason, "pad_model": self.pad_id}
        if self.passive is not None:
            out["passive"] = {"score": round(self.passive.live, 6),
                              "per_model": {k: round(v, 6) for k, v in self.passive.per_model.items()}}
        if self.threshold is not None:
            out["threshold"] = {"value": self.threshold.value, "source": self.threshold.source}
        if self.challenge is not None:
            out["challenge"] = self.challenge.as_dict()
        out.update(self.extra)
        return out


def decide(mode: LivenessMode, *, passive: PassiveScore | None = None, threshold: PassiveThreshold | None = None,
           challenge: ChallengeResult | None = None, problem: str | None = None, cause: ExitCode | None = None,
           pad_id: str | None = None, extra: dict[str, Any] | None = None) -> LivenessDecision:
    """The decision for ``mode`` from the checks that ran; ``problem`` (why a check could not run) makes it
    "not checked" unless another check already found an attack."""
    extra = extra or {}
    common = dict(mode=mode, passive=passive, threshold=threshold, challenge=challenge, pad_id=pad_id, extra=extra,
                  cause=cause)
    if mode is LivenessMode.OFF:
        return LivenessDecision(LivenessState.NOT_CHECKED, reason="liveness is off", **common)
    reasons: list[str] = []
    attack = False
    if mode.passive and passive is not None and threshold is not None:
        if passive.live < threshold.value:
            attack = True
            reasons.append(f"passive score {passive.live:.3f} < threshold {threshold.value:.3f}")
        else:
            reasons.append(f"passive score {passive.live:.3f} >= threshold {threshold.value:.3f}")
    if mode.challenge and challenge is not None:
        if challenge.outcome is Outcome.FAILED:
            attack = True
        reasons.append(f"challenge {challenge.outcome.value}: {challenge.reason}")
    if attack:
        return LivenessDecision(LivenessState.ATTACK, reason="; ".join(reasons), **common)
    missing = []
    if problem:
        missing.append(problem)
    if mode.passive and (passive is None or threshold is None) and not problem:
        missing.append("passive check did not run")
    if mode.challenge and (challenge is None or challenge.outcome is not Outcome.PASSED) and not problem:
        missing.append("challenge not passed" if challenge is None else f"challenge {challenge.outcome.value}: "
                                                                         f"{challenge.reason}")
    if missing:
        return LivenessDecision(LivenessState.NOT_CHECKED, reason="; ".join(missing + reasons), **common)
    return LivenessDecision(LivenessState.LIVE, reason="; ".join(reasons), **common)


# ---------------------------------------------------------------------------------------------- thresholds
def _thresholds_path(path: Path | None = None) -> Path:
    return path or (data_dir() / THRESHOLDS_FILE)


def _read_all(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path}: unreadable liveness thresholds file ({exc}); fix or delete it",
                             path=str(path)) from exc
    return data if isinstance(data, dict) else {}


def passive_threshold(pad_id: str | None, *, path: Path | None = None) -> PassiveThreshold:
    """The saved threshold of the PAD scorer ``pad_id``, else the default."""
    entry = _read_all(_thresholds_path(path)).get(pad_id or "", None)
    if isinstance(entry, dict):
        value = entry.get("passive")
        if isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 1.0:
            return PassiveThreshold(float(value), "saved", entry.get("target_bpcer"), entry.get("saved_at"))
    return PassiveThreshold()


def save_passive_threshold(pad_id: str, value: float, *, target_bpcer: float | None = None,
                           path: Path | None = None) -> PassiveThreshold:
    """Store ``value`` as the passive threshold of ``pad_id`` (atomically); returns what a read now gives."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"passive threshold must be a number in 0..1, got {value!r}")
    file = _thresholds_path(path)
    data = _read_all(file)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    data[pad_id] = {"passive": float(value), "target_bpcer": target_bpcer, "saved_at": stamp}
    file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(file, json.dumps(data, indent=2, sort_keys=True).encode())
    return PassiveThreshold(float(value), "saved", target_bpcer, stamp)
