"""What a threshold costs: the operating point of a verify or identify threshold, read from the active
model's stored calibration (``card["thresholds"]["far_curve"]``, see ``faceapp.matching.thresholds.FarCurve``).

The one owner of the read-out beside every threshold control (the Live page's sliders, the Thresholds tab
through the shared ``ThresholdSlider``): verify shows the false accept rate per comparison (FAR) and the
genuine rejections (FRR); identify shows the expected false positive identification rate at the current
gallery size N, ``expected_fpir(FAR, N) = 1 - (1 - FAR)^N`` (``faceapp.services.thresholds``). A model
without a calibration curve reads "uncalibrated": its thresholds may still be stored, but what they cost
is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from faceapp.matching.thresholds import FarCurve, far_curve_from_card
from faceapp.services.thresholds import expected_fpir

KINDS = ("verify", "identify")

TRADE = {
    "verify": ("Verify (1:1) threshold: a claimed identity is accepted when its score reaches it.\n"
               "Lower it: fewer genuine people rejected (FRR down), more impostors accepted (FAR up).\n"
               "Raise it: fewer impostors accepted, more genuine people rejected."),
    "identify": ("Identify (1:N) threshold: the best candidate is named when its score reaches it, else "
                 "\"Unknown\".\nLower it: more enrolled people recognised, more strangers named as someone "
                 "(FPIR up, and it grows with the gallery size N).\nRaise it: fewer strangers named, more "
                 "enrolled people shown as Unknown."),
}


def percent(rate: float) -> str:
    """A rate as a short percentage: 0.1 %, 0.012 %, 12 %."""
    value = rate * 100.0
    if value == 0:
        return "0 %"
    if value >= 10:
        return f"{value:.0f} %"
    if value >= 1:
        return f"{value:.1f} %"
    return f"{value:.2g} %"


@dataclass(frozen=True)
class OperatingReadout:
    """The operating point of one threshold control, ready to show."""

    kind: str                      # "verify" or "identify"
    threshold: float
    calibrated: bool
    far: float | None = None       # per comparison, interpolated on the calibration curve
    frr: float | None = None
    fpir: float | None = None      # identify: expected at ``gallery_size``
    gallery_size: int = 0
    below_floor: bool = False      # FAR under what the calibration can measure: far is an upper bound
    text: str = "uncalibrated"     # the short line beside the control
    tooltip: str = ""              # what moving it trades, and where the numbers come from


def readout(curve: FarCurve | None, kind: str, threshold: float, gallery_size: int = 0) -> OperatingReadout:
    """The read-out of ``kind``'s control at ``threshold`` (``gallery_size``: identities searched by identify)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be verify or identify, not {kind!r}")
    trade = TRADE[kind]
    if curve is None:
        return OperatingReadout(kind, float(threshold), False, gallery_size=gallery_size, text="uncalibrated",
                                tooltip=trade + "\n\nThe active model has no calibration curve in its model card "
                                "(scripts/calibrate_thresholds.py --write), so what this value costs is unknown.")
    far, frr = curve.at(threshold)
    below = far < curve.far_floor
    far_shown = curve.far_floor if below else far
    far_text = ("< " if below else "") + percent(far_shown)
    source = (f"\n\nFrom the model's calibration: {curve.impostor_pairs:,} impostor and {curve.genuine_pairs:,} "
              f"genuine pairs" + (f" ({curve.source})" if curve.source else "") + ".")
    if kind == "verify":
        text = f"FAR {far_text} · FRR {percent(frr)}"
        return OperatingReadout(kind, float(threshold), True, far=far, frr=frr, gallery_size=gallery_size,
                                below_floor=below, text=text, tooltip=trade + source)
    n = max(0, int(gallery_size))
    fpir = expected_fpir(far_shown, n)
    text = (f"FPIR {'< ' if below else ''}{percent(fpir)} at N={n} · FRR {percent(frr)}" if n
            else f"FAR {far_text} per comparison · gallery empty")
    detail = (f"\nFPIR = 1 - (1 - FAR)^N with FAR {far_text} per comparison and N = {n} identities enrolled "
              "(scores treated as independent).")
    return OperatingReadout(kind, float(threshold), True, far=far, frr=frr, fpir=fpir, gallery_size=n,
                            below_floor=below, text=text, tooltip=trade + detail + source)


def model_readouts(card: Mapping[str, Any] | None, *, verify: float, identify: float,
                   gallery_size: int) -> dict[str, OperatingReadout]:
    """Both read-outs for a model card at the given thresholds."""
    curve = far_curve_from_card(card)
    return {"verify": readout(curve, "verify", verify, gallery_size),
            "identify": readout(curve, "identify", identify, gallery_size)}


def change_summary(old: Mapping[str, float], new: Mapping[str, float], readouts: Mapping[str, OperatingReadout],
                   old_readouts: Mapping[str, OperatingReadout]) -> str:
    """The confirmation text before saving: every threshold's old and new value with its operating point."""
    lines = []
    for kind in ("identify", "verify"):
        mark = "" if old[kind] == new[kind] else "   (changed)"
        lines.append(f"{kind.title()}: {old[kind]:.4f} ({old_readouts[kind].text})  →  {new[kind]:.4f} "
                     f"({readouts[kind].text}){mark}")
    return "\n".join(lines)
