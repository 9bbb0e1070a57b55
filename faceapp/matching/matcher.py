"""Verify (1:1) and identify (1:N, open set) over a gallery index.

Verification policies combine the claimed identity's templates into one score:

- ``max`` (default): the best cosine over the identity's templates. Matches how thresholds are
  calibrated (single image pairs) and tolerates one odd enrolment image; more templates of varied
  pose raise the chance that one is close.
- ``mean``: the mean cosine over the templates. Stricter: every template must agree; one bad
  enrolment image lowers every score of that identity.
- ``centroid``: the cosine with the normalised mean of the templates (the identity's "prototype").
  Averages out per-image noise; scores run a little higher than single pairs for a genuine match.

Identification ranks identities by their best template (``max``) and answers "unknown" when the best
score is under the identify threshold.

This module is the one owner of both decisions: ``decide_verify`` / ``decide_identify`` turn scores into
answers, ``Matcher`` searches an index and applies them, and ``redecide`` re-applies them to an answer
already given (the Live page's slider moves the threshold without new inference). Every call takes an
optional per-call ``threshold`` that overrides the matcher's ``Thresholds`` for that one decision.

Identify has three answers: a name, "unknown" (nobody reaches the threshold) and "ambiguous" (the best
two reach it within ``ambiguity_margin`` of each other: nobody is named). ``DEFAULT_AMBIGUITY_MARGIN`` is
the interfaces' default; the matcher's own default is 0 (a plain threshold decision).
"""

from __future__ import annotations

from typing import Sequence, TypeVar

import numpy as np

from faceapp.core.errors import NotFoundError
from faceapp.core.types import Candidate, IdentifyDecision, VerifyDecision
from faceapp.matching.index import GalleryIndex, as_probe, normalize_rows
from faceapp.matching.thresholds import Thresholds

Decision = TypeVar("Decision", VerifyDecision, IdentifyDecision)

DEFAULT_AMBIGUITY_MARGIN = 0.03    # what the Live page and `faceapp identify` use unless told otherwise (cosine)

POLICIES: dict[str, str] = {
    "max": "best cosine over the identity's templates (default)",
    "mean": "mean cosine over the identity's templates",
    "centroid": "cosine with the normalised mean of the identity's templates",
}


def combine(rows: np.ndarray, probe: np.ndarray, policy: str = "max") -> float:
    """One score for a probe (unit, (D,)) against an identity's unit template rows (k, D) under ``policy``."""
    if rows.shape[0] == 0:
        raise ValueError("no templates to compare with")
    if policy == "max":
        return float(np.max(rows @ probe))
    if policy == "mean":
        return float(np.mean(rows @ probe))
    if policy == "centroid":
        centroid = normalize_rows(rows.mean(axis=0, keepdims=True))[0]
        return float(centroid @ probe)
    raise ValueError(f"unknown verify policy {policy!r}; known: {', '.join(POLICIES)}")


def decide_verify(identity_id: int, name: str, score: float, threshold: float, policy: str = "max") -> VerifyDecision:
    """MATCH when the claimed identity's ``score`` reaches ``threshold`` (score >= threshold)."""
    return VerifyDecision(identity_id=int(identity_id), name=name, score=float(score), threshold=float(threshold),
                          match=bool(score >= threshold), policy=policy)


def check_ambiguity_margin(margin: float) -> float:
    """``margin`` as a float in [0, 1], else a ValueError naming the field."""
    margin = float(margin)
    if not 0.0 <= margin <= 1.0:
        raise ValueError(f"ambiguity margin must be in [0, 1], not {margin}")
    return margin


def decide_identify(candidates: Sequence[Candidate], threshold: float,
                    ambiguity_margin: float = 0.0) -> IdentifyDecision:
    """Open-set answer over ranked ``candidates`` (best first): the best one when its score reaches
    ``threshold``, else unknown (also when there is no candidate). When the runner-up scores within
    ``ambiguity_margin`` of the best (best - second < margin), nobody is named: the answer is ambiguous
    (``identity_id`` None, ``ambiguous`` True), for the operator to check the person."""
    ranked = tuple(candidates)
    margin = check_ambiguity_margin(ambiguity_margin)
    best = ranked[0] if ranked else None
    reached = best is not None and best.score >= threshold
    ambiguous = reached and len(ranked) > 1 and best.score - ranked[1].score < margin
    identity = best.identity_id if reached and not ambiguous else None
    return IdentifyDecision(candidates=ranked, threshold=float(threshold), identity_id=identity,
                            ambiguous=bool(ambiguous), ambiguity_margin=margin)


def redecide(decision: Decision, threshold: float, *, ambiguity_margin: float | None = None) -> Decision:
    """The same answer decided again at ``threshold`` (and ``ambiguity_margin``, else the one it was decided
    with) from its kept scores (no search, no inference)."""
    if isinstance(decision, VerifyDecision):
        return decide_verify(decision.identity_id, decision.name, decision.score, threshold, decision.policy)
    if isinstance(decision, IdentifyDecision):
        margin = decision.ambiguity_margin if ambiguity_margin is None else ambiguity_margin
        return decide_identify(decision.candidates, threshold, margin)
    raise TypeError(f"not a decision: {type(decision).__name__}")


class Matcher:
    """Decisions against one index with one set of thresholds (``threshold=`` overrides it per call)."""

    def __init__(self, index: GalleryIndex, thresholds: Thresholds) -> None:
        self.index = index
        self.thresholds = thresholds

    def verify(self, identity_id: int, probe: np.ndarray, policy: str = "max", *,
               threshold: float | None = None) -> VerifyDecision:
        """Is the probe the claimed identity (at ``threshold``, else the verify threshold)? NotFoundError
        when it has no template of this model."""
        if policy not in POLICIES:
            raise ValueError(f"unknown verify policy {policy!r}; known: {', '.join(POLICIES)}")
        vector = as_probe(probe, self.index.dim)
        rows = self.index.rows_of(identity_id)
        if rows.shape[0] == 0:
            raise NotFoundError(f"identity {self.index.name(identity_id)!r} has no template of model "
                                f"{self.index.model_id}: enrol it again or re-embed the gallery")
        score = combine(rows, vector, policy)
        used = self.thresholds.verify if threshold is None else threshold
        return decide_verify(identity_id, self.index.name(identity_id), score, used, policy)

    def identify(self, probe: np.ndarray, top_k: int = 5, *, threshold: float | None = None,
                 ambiguity_margin: float = 0.0) -> IdentifyDecision:
        """Ranked candidates (best template per identity) and the open-set answer at ``threshold``, else
        the identify threshold; ambiguous when the top two are within ``ambiguity_margin`` (with a margin,
        the runner-up is kept among the candidates even when ``top_k`` is 1)."""
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        used = self.thresholds.identify if threshold is None else threshold
        if len(self.index) == 0:
            as_probe(probe, self.index.dim)   # still reject a probe of the wrong size
            return decide_identify((), used, ambiguity_margin)
        ranked = self.index.top_identities(probe, max(top_k, 2) if ambiguity_margin > 0 else top_k)
        return decide_identify([Candidate(identity_id=i, name=self.index.name(i), score=s) for i, s in ranked], used,
                               ambiguity_margin)

