"""Writing the liveness measurement: ``liveness_eval.md``, ``liveness_eval.json`` and ``liveness_det.png``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from faceapp.core.files import atomic_write
from faceapp.liveness.evaluate import UNTESTED_ATTACKS, Scored, det_points


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def write_det_png(scored: Sequence[Scored], path: Path, *, threshold: float | None = None, title: str = "") -> Path:
    """DET curve (APCER over all attacks vs BPCER, both in %) as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    thresholds, apcer, bpcer = det_points(scored)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot(100 * bpcer, 100 * apcer, color="tab:blue", label="passive (fused MiniFASNet)")
    if threshold is not None:
        i = int(np.searchsorted(thresholds, threshold))
        i = min(i, len(thresholds) - 1)
        ax.plot([100 * bpcer[i]], [100 * apcer[i]], "o", color="tab:red", label=f"threshold {threshold:.3f}")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("BPCER (%)")
    ax.set_ylabel("APCER (%)")
    ax.set_title(title or "DET, test subjects")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def markdown(result: dict[str, Any]) -> str:
    """The human report of ``faceapp liveness-eval``."""
    lines = ["# Liveness measurement", "", f"Command: `{result.get('command', 'faceapp liveness-eval')}`", ""]
    nuaa = result.get("nuaa")
    if nuaa:
        test = nuaa["test"]
        lines += ["## Passive PAD on NUAA (print attacks), ISO/IEC 30107-3", "",
                  f"PAD: {result.get('pad_model')}. Threshold {nuaa['threshold']:.4f} chosen at BPCER <= "
                  f"{100 * nuaa['target_bpcer']:.0f} % on subjects {', '.join(nuaa['calibration_subjects'])}; "
                  f"reported on the other {len(nuaa['test_subjects'])} subjects "
                  f"({', '.join(nuaa['test_subjects'])}).", "",
                  "| attack kind | attempts | APCER | no single face |", "|---|---|---|---|"]
        for kind, rate in test["apcer"].items():
            lines.append(f"| {kind} | {test['attempts'][kind]} | {_pct(rate)} | {test['no_face'][kind]} |")
        lines += ["", f"BPCER (bona fide rejected): {_pct(test['bpcer'])} of {test['attempts']['live']} live images "
                      f"({test['no_face']['live']} without a single face, not counted). Max APCER: "
                      f"{_pct(test['apcer_max'])}.", "", "DET curve: `liveness_det.png` (test subjects).", ""]
    blinks = result.get("blinks")
    if blinks:
        lines += ["## Blink challenge on blink_videos", "",
                  "Detector constants chosen on mahie_test_1 only; mahie_test_4_low_fps is held out.", "",
                  "| video | minutes | blinks | recall | false / min | voided closures | challenges passed "
                  "| median / max s to pass |", "|---|---|---|---|---|---|---|---|"]
        for name, r in blinks.items():
            med = "n/a" if r["pass_time_s_median"] is None else f"{r['pass_time_s_median']:.1f} / {r['pass_time_s_max']:.1f}"
            lines.append(f"| {name} | {r['minutes']:.2f} | {r['labelled_blinks']} | {_pct(r['recall'])} | "
                         f"{r['false_per_minute']:.2f} | {r.get('voided_closures', 0)} | "
                         f"{r['challenge_passed']} of {r['challenge_starts']} | {med} |")
        lines += ["", "A voided closure: the eyes closed and reopened but the head pose, face shape or a non-eye "
                      "blendshape moved with them (not a blink; see `faceapp.liveness.signals`).", ""]
    replay = result.get("replay")
    if replay:
        lines += ["## Still-photo replay through the challenge", "",
                  f"NUAA attack frames of each subject played as a {replay['fps']:.0f} fps video (the files' order "
                  f"and {replay.get('orders', 1) - 1} shuffled orders), each through a blink-only challenge and "
                  f"{replay.get('full_challenges', 1)} random full ones: {replay['passed']} of {replay['runs']} runs "
                  f"passed.", ""]
        summary = replay.get("per_kind_summary")
        if summary:
            lines += ["| attack kind | runs | passed |", "|---|---|---|"]
            lines += [f"| {kind} | {v['runs']} | {v['passed']} |" for kind, v in summary.items()] + [""]
    lines += ["## Never tested (no data here)", ""] + [f"- {a}" for a in UNTESTED_ATTACKS] + [
        "", "Only printed-photo attacks (NUAA: rotated, bent, held still) were measured; NUAA has 8 subjects and "
            "one capture setting, so these rates do not carry over to other cameras or attack instruments.", ""]
    return "\n".join(lines)


def write_report(result: dict[str, Any], out_dir: Path, scored: Sequence[Scored] | None = None) -> list[Path]:
    """Markdown + JSON (+ the DET PNG when ``scored`` is given) into ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [atomic_write(out_dir / "liveness_eval.md", markdown(result).encode()),
             atomic_write(out_dir / "liveness_eval.json", json.dumps(result, indent=2, default=str).encode())]
    if scored:
        nuaa = result.get("nuaa") or {}
        test = [s for s in scored if s.subject in set(nuaa.get("test_subjects", []))] or list(scored)
        paths.append(write_det_png(test, out_dir / "liveness_det.png", threshold=nuaa.get("threshold")))
    return paths
