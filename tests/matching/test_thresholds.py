"""Threshold resolution: store > model card > default, with the source named."""

from __future__ import annotations

from datetime import datetime, timezone

from faceapp.matching import Thresholds, from_model_card, resolve_thresholds
from faceapp.matching.thresholds import DEFAULT_IDENTIFY, DEFAULT_VERIFY
from faceapp.storage import ThresholdRecord


def test_store_record_wins_and_names_its_source() -> None:
    record = ThresholdRecord("m@1", 0.3, 0.35, 1e-3, "cfp-ff", datetime(2025, 1, 1, tzinfo=timezone.utc))
    card = {"thresholds": {"verify": 0.9, "identify": 0.9}}
    resolved = resolve_thresholds(record, card)
    assert (resolved.verify, resolved.identify, resolved.source) == (0.3, 0.35, "store:cfp-ff")


def test_model_card_then_default() -> None:
    card = {"thresholds": {"verify": 0.42, "target_far": 0.001, "date": "2025-02-03T04:05:06+00:00"}}
    from_card = resolve_thresholds(None, card)
    assert (from_card.verify, from_card.identify, from_card.source) == (0.42, 0.42, "model-card")
    assert from_card.target_far == 0.001 and from_card.calibrated_at.year == 2025
    assert from_model_card({"thresholds": {"verify": "nonsense"}}) is None
    assert from_model_card({"thresholds": {"verify": 7}}) is None
    default = resolve_thresholds(None, {"trained": False})
    assert default == Thresholds() and default.source == "default"
    assert (default.verify, default.identify) == (DEFAULT_VERIFY, DEFAULT_IDENTIFY)
    assert DEFAULT_IDENTIFY >= DEFAULT_VERIFY
