"""Decision thresholds of a model and where they come from.

Resolution order (the ``source`` field says which one answered, and every verify/identify output shows it):

1. ``store``: thresholds saved for the model in the identity store (``faceapp thresholds set``, the GUI's
   "Save", or a calibration that wrote them), with target FAR and calibration date;
2. ``model-card``: ``card["thresholds"] = {"verify": .., "identify": .., "target_far": .., "date": ..}``
   written into the model folder by the trainer's calibration;
3. ``default``: the conservative constants below. They are not calibrated for any model: a trained model
   should always come with 1 or 2.

Identification compares one probe with N identities, so at the same per-comparison threshold its
false-accept rate grows with N; the default identify threshold is therefore stricter than verify.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

DEFAULT_VERIFY = 0.50
DEFAULT_IDENTIFY = 0.55


@dataclass(frozen=True)
class Thresholds:
    """Cosine-similarity thresholds: MATCH when score >= verify; a known identity when best >= identify."""

    verify: float = DEFAULT_VERIFY
    identify: float = DEFAULT_IDENTIFY
    target_far: float | None = None
    source: str = "default"
    calibrated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"verify": self.verify, "identify": self.identify, "target_far": self.target_far,
                "source": self.source, "calibrated_at": self.calibrated_at}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and -1.0 <= number <= 1.0 else None


def from_model_card(card: Mapping[str, Any] | None) -> Thresholds | None:
    """Thresholds from a model card's ``thresholds`` section, or None when it has no usable one."""
    section = (card or {}).get("thresholds")
    if not isinstance(section, Mapping):
        return None
    verify = _number(section.get("verify"))
    identify = _number(section.get("identify"))
    if verify is None and identify is None:
        return None
    verify = verify if verify is not None else identify
    identify = identify if identify is not None else verify
    far = section.get("target_far")
    date = section.get("date") or section.get("calibrated_at")
    try:
        calibrated = datetime.fromisoformat(str(date)) if date else None
    except ValueError:
        calibrated = None
    return Thresholds(verify=float(verify), identify=float(identify),
                      target_far=float(far) if isinstance(far, (int, float)) else None,
                      source="model-card", calibrated_at=calibrated)


def resolve_thresholds(stored: Any | None, card: Mapping[str, Any] | None = None) -> Thresholds:
    """Store record (anything with verify/identify/target_far/source/calibrated_at) > model card > default."""
    if stored is not None:
        return Thresholds(verify=float(stored.verify), identify=float(stored.identify), target_far=stored.target_far,
                          source=f"store:{stored.source}", calibrated_at=stored.calibrated_at)
    return from_model_card(card) or Thresholds()


@dataclass(frozen=True)
class FarCurve:
    """A model's calibration curve: FAR and FRR measured at a grid of thresholds (ascending) on
    ``impostor_pairs`` impostor and ``genuine_pairs`` genuine pairs of people it never trained on.

    Stored in the model card as ``card["thresholds"]["far_curve"]`` by ``scripts/calibrate_thresholds.py``.
    A FAR of 0 only says "below 1 / impostor_pairs": ``far_floor`` is what the calibration can measure.
    """

    thresholds: tuple[float, ...]
    far: tuple[float, ...]
    frr: tuple[float, ...]
    impostor_pairs: int
    genuine_pairs: int
    source: str = ""

    @property
    def far_floor(self) -> float:
        """The smallest non-zero FAR the calibration can measure (one impostor pair)."""
        return 1.0 / max(1, self.impostor_pairs)

    def at(self, threshold: float) -> tuple[float, float]:
        """(FAR, FRR) at ``threshold``: linear interpolation between the grid points (rates are step
        functions of the threshold; the grid is fine enough that the error is below the grid's step)."""
        import numpy as np

        t = np.asarray(self.thresholds, dtype=float)
        return (float(np.interp(threshold, t, np.asarray(self.far, dtype=float))),
                float(np.interp(threshold, t, np.asarray(self.frr, dtype=float))))


def far_curve_from_card(card: Mapping[str, Any] | None) -> FarCurve | None:
    """The calibration curve of a model card (``thresholds.far_curve``), or None when it has none or it
    is malformed (lists of different lengths, thresholds not ascending, rates outside [0, 1])."""
    section = (card or {}).get("thresholds")
    curve = section.get("far_curve") if isinstance(section, Mapping) else None
    if not isinstance(curve, Mapping):
        return None
    try:
        thresholds = tuple(float(v) for v in curve["threshold"])
        far = tuple(float(v) for v in curve["far"])
        frr = tuple(float(v) for v in curve["frr"])
        impostors, genuines = int(curve["impostor_pairs"]), int(curve["genuine_pairs"])
    except (KeyError, TypeError, ValueError):
        return None
    ascending = all(a < b for a, b in zip(thresholds, thresholds[1:]))
    in_range = all(0.0 <= v <= 1.0 for v in far + frr)
    if len(thresholds) < 2 or not (len(thresholds) == len(far) == len(frr)) or not ascending or not in_range:
        return None
    return FarCurve(thresholds, far, frr, impostors, genuines, str(section.get("source", "")))
