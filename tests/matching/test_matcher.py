"""Verify policies (max, mean, centroid) computed by hand, identify with an open-set "unknown"."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.core.errors import IncompatibleError, NotFoundError
from faceapp.core.types import Candidate
from faceapp.matching import GalleryIndex, Matcher, Thresholds, combine, decide_identify, redecide


def _index() -> GalleryIndex:
    index = GalleryIndex("m@1", 3)
    # identity 1: two templates along x and y; identity 2: one template along z
    index.add([10, 11, 20], [1, 1, 2], np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32))
    index.names = {1: "Alice", 2: "Bob"}
    return index


def test_policies_by_hand() -> None:
    rows = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    probe = np.array([0.8, 0.6, 0.0], np.float32)
    assert combine(rows, probe, "max") == pytest.approx(0.8)
    assert combine(rows, probe, "mean") == pytest.approx(0.7)
    assert combine(rows, probe, "centroid") == pytest.approx((0.8 + 0.6) / np.sqrt(2))
    with pytest.raises(ValueError, match="policy"):
        combine(rows, probe, "median")


def test_verify_compares_score_with_the_verify_threshold() -> None:
    matcher = Matcher(_index(), Thresholds(verify=0.75, identify=0.9, source="test"))
    probe = np.array([0.8, 0.6, 0.0], np.float32)
    decision = matcher.verify(1, probe)
    assert (decision.name, decision.match, decision.policy) == ("Alice", True, "max")
    assert decision.score == pytest.approx(0.8) and decision.threshold == 0.75
    assert not matcher.verify(1, probe, policy="mean").match          # 0.7 < 0.75
    assert matcher.verify(1, probe, policy="centroid").match          # 0.99 >= 0.75
    assert not matcher.verify(2, probe).match
    with pytest.raises(NotFoundError, match="no template"):
        matcher.verify(3, probe)
    with pytest.raises(IncompatibleError):
        matcher.verify(1, np.ones(4, np.float32))


def test_identify_ranks_identities_and_answers_unknown_under_the_threshold() -> None:
    index = _index()
    probe = np.array([0.1, 0.2, 0.97], np.float32)
    known = Matcher(index, Thresholds(verify=0.5, identify=0.9)).identify(probe, top_k=5)
    assert [c.name for c in known.candidates] == ["Bob", "Alice"]        # Alice once, by her best template
    assert known.identity_id == 2 and not known.is_unknown
    unknown = Matcher(index, Thresholds(verify=0.5, identify=0.99)).identify(probe, top_k=1)
    assert unknown.is_unknown and len(unknown.candidates) == 1 and unknown.best.name == "Bob"
    assert unknown.best.score < unknown.threshold
    empty = Matcher(GalleryIndex("m@1", 3), Thresholds()).identify(probe)
    assert empty.is_unknown and empty.candidates == ()


def test_decide_identify_is_open_set() -> None:
    candidates = [Candidate(1, "a", 0.8), Candidate(2, "b", 0.6)]
    assert decide_identify(candidates, 0.7).identity_id == 1
    assert decide_identify(candidates, 0.8).identity_id == 1                # score >= threshold
    assert decide_identify(candidates, 0.81).is_unknown
    assert decide_identify([], 0.1).is_unknown


def test_a_per_call_threshold_overrides_the_thresholds_for_that_decision_only() -> None:
    index = _index()
    matcher = Matcher(index, Thresholds(verify=0.75, identify=0.9))
    probe = np.array([0.1, 0.2, 0.97], np.float32)
    for threshold in (0.5, 0.97, 0.971, 0.99, 0.5016):
        override = matcher.identify(probe, top_k=2, threshold=threshold)
        assert override == Matcher(index, Thresholds(identify=threshold)).identify(probe, top_k=2)
        assert override.threshold == threshold                             # exactly, never rounded
        assert redecide(matcher.identify(probe, top_k=2), threshold) == override
        verdict = matcher.verify(1, probe, threshold=threshold)
        assert verdict == Matcher(index, Thresholds(verify=threshold)).verify(1, probe)
        assert redecide(matcher.verify(1, probe), threshold) == verdict
    assert matcher.identify(probe).threshold == 0.9 and matcher.verify(1, probe).threshold == 0.75
    empty = Matcher(GalleryIndex("m@1", 3), Thresholds()).identify(probe, threshold=0.1)
    assert empty.is_unknown and empty.threshold == 0.1
    with pytest.raises(TypeError):
        redecide(Candidate(1, "a", 0.5), 0.5)
