"""The one builder of audit entries for verify/identify decisions, used by every interface.

The command line (``faceapp verify`` / ``identify``, through ``Gallery``), the GUI's Live page (through
``DecisionAuditor``) and the benchmarks all record a decision with ``decision_entry``, so an audit row has
the same fields whichever desk or command made it:

- verify: operation "verify", the claimed identity's id and name, score, threshold, decision
  "match"/"no-match"; details ``policy`` and ``thresholds`` (where the threshold came from);
- identify: operation "identify", the identified id and name (none when unknown or ambiguous: the best
  candidate is never written as the answer then), the best score, threshold, decision
  "identified"/"ambiguous"/"unknown"; details ``candidates`` ([[id, score], ...], best first),
  ``thresholds`` and ``ambiguity_margin`` (when one was used).

What only one interface knows (the probe file, the live frame, ``top_k``) goes into ``details`` as well.

A failed attempt (no face in the probe, an unknown name, an unreadable file, ...) is recorded too, by
``failure_entry``: the operation, decision "failed", the claimed name when there was one, and details
``error`` (the message) and ``exit_code`` (its name, e.g. "no_face").
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from faceapp.core.errors import FaceAppError
from faceapp.core.types import IdentifyDecision, VerifyDecision
from faceapp.liveness.policy import LivenessDecision
from faceapp.storage import AuditEntry, Store

log = logging.getLogger(__name__)


def decision_entry(decision: VerifyDecision | IdentifyDecision, *, model_id: str, operator: str | None = None,
                   thresholds_source: str | None = None, details: Mapping[str, Any] | None = None) -> AuditEntry:
    """The audit entry recording ``decision`` made with ``model_id``'s templates (see module docstring)."""
    if isinstance(decision, VerifyDecision):
        return AuditEntry(
            "verify", identity_id=decision.identity_id, identity_name=decision.name, model_id=model_id,
            score=decision.score, threshold=decision.threshold, decision="match" if decision.match else "no-match",
            operator=operator,
            details={"policy": decision.policy, "thresholds": thresholds_source, **(details or {})})
    if isinstance(decision, IdentifyDecision):
        best = decision.best
        margin = {"ambiguity_margin": decision.ambiguity_margin} if decision.ambiguity_margin else {}
        return AuditEntry(
            "identify", identity_id=decision.identity_id,
            identity_name=best.name if best is not None and decision.identity_id is not None else None,
            model_id=model_id, score=best.score if best is not None else None, threshold=decision.threshold,
            decision=decision.outcome, operator=operator,
            details={"candidates": [[c.identity_id, round(c.score, 6)] for c in decision.candidates],
                     "thresholds": thresholds_source, **margin, **(details or {})})
    raise TypeError(f"not a decision: {type(decision).__name__}")


def liveness_entry(decision: LivenessDecision, *, operation: str = "liveness", identity_id: int | None = None,
                   identity_name: str | None = None, operator: str | None = None,
                   details: Mapping[str, Any] | None = None) -> AuditEntry:
    """The audit entry of a liveness decision (operation "liveness", or "enroll-liveness" for the wizard):
    decision = the state ("live", "attack suspected", "not checked"), score/threshold = the passive ones
    when that check ran, model_id = the PAD scorer's id; details = mode, reason, the per-model scores, the
    challenge's steps and outcome (no image, no landmarks)."""
    body = decision.as_dict()
    passive = body.get("passive") or {}
    threshold = body.get("threshold") or {}
    return AuditEntry(operation, identity_id=identity_id, identity_name=identity_name, model_id=decision.pad_id,
                      score=passive.get("score"), threshold=threshold.get("value"), decision=decision.state.value,
                      operator=operator,
                      details={k: v for k, v in body.items() if k not in ("state", "live", "pad_model")}
                      | dict(details or {}))


def withheld_entry(entry: AuditEntry, liveness_state: str) -> AuditEntry:
    """``entry`` of a decision that named someone (a MATCH, an identification) held back because the face was not
    live: audited "liveness-required", never as the match it was not allowed to be (the Live page and the
    CLI's ``--liveness`` both call this)."""
    from dataclasses import replace

    return replace(entry, decision="liveness-required",
                   details={**(entry.details or {}), "withheld": f"liveness {liveness_state}"})


def failure_entry(operation: str, error: FaceAppError, *, model_id: str | None, operator: str | None = None,
                  identity_name: str | None = None, details: Mapping[str, Any] | None = None) -> AuditEntry:
    """The audit entry recording an attempt of ``operation`` that ``error`` stopped (see module docstring)."""
    return AuditEntry(operation, identity_name=identity_name, model_id=model_id, decision="failed", operator=operator,
                      details={"error": str(error)[:1000], "exit_code": error.exit_code.name.lower(),
                               **(details or {})})


def record_failure(store: Store, operation: str, error: FaceAppError, *, model_id: str | None,
                   operator: str | None = None, identity_name: str | None = None,
                   details: Mapping[str, Any] | None = None) -> None:
    """Audit an attempt that ``error`` stopped, queued when the database is locked. A failure to record is
    logged, never raised: the caller goes on to report ``error`` itself."""
    entry = failure_entry(operation, error, model_id=model_id, operator=operator,
                          identity_name=None if identity_name is None else str(identity_name)[:200], details=details)
    try:
        store.audit.append(entry, queue_when_locked=True)
    except FaceAppError as audit_error:
        log.error("the failed %s attempt was not recorded in the audit log: %s", operation, audit_error)
