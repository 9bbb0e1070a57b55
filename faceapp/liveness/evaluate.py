"""Liveness measured per ISO/IEC 30107-3, and the blink challenge measured on labelled videos.

- ``score_folder``: passive scores of a labelled folder ``{live,<attack kind>...}/<subject>/<image>`` (the NUAA
  layout; the Thresholds tab's liveness section reads any folder of that shape);
- ``pad_metrics``: APCER per attack kind (attacks accepted as live) and BPCER (bona fide rejected) at a
  threshold; ``threshold_at_bpcer`` picks it. ``nuaa_report`` chooses the threshold on one half of the
  subjects and reports on the other half: never tuned and reported on the same people;
- ``blink_report``: blink recall against the per-frame labels, false blinks per minute and the time a live
  person needs to pass a blink challenge started at several points of each video;
- ``replay_report``: the attack frames of each subject played as a video through the full challenge; the
  number that pass (it must be 0).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from faceapp.core.errors import DatasetError
from faceapp.liveness.challenge import Action, Challenge, Outcome, Step, random_steps
from faceapp.liveness.signals import BlinkDetector, eye_closure

LIVE = "live"
UNTESTED_ATTACKS = ("screen replay (phone/tablet/monitor)", "video replay", "3-D masks (paper, silicone, resin)",
                    "partial attacks (cut-out eyes, glasses)", "make-up / impersonation")
Report = Callable[[str], None]


@dataclass(frozen=True)
class Scored:
    """One image of a labelled folder: its kind (``live`` or an attack), subject, file and passive score
    (None when no face, or several, was found: counted apart, never as a pass)."""

    kind: str
    subject: str
    path: str
    score: float | None


def labelled_images(root: Path) -> list[tuple[str, str, Path]]:
    """(kind, subject, path) of ``root/<kind>/<subject>/<image>``; DatasetError when there is no ``live``
    folder or no attack folder."""
    from faceapp.capture.images import list_images

    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder (expected live/ and attack folders inside)", path=str(root))
    kinds = sorted(p.name for p in root.iterdir() if p.is_dir())
    if LIVE not in kinds or len(kinds) < 2:
        raise DatasetError(f"{root}: needs a 'live' folder and at least one attack folder beside it "
                           f"(found: {', '.join(kinds) or 'none'})", path=str(root))
    out = []
    for kind in kinds:
        for path in list_images([root / kind]):
            rel = path.relative_to(root / kind).parts
            out.append((kind, rel[0] if len(rel) > 1 else "-", path))
    return out


def score_folder(root: Path, scorer, pipeline, *, every: int = 1,  # noqa: ANN001 - PassiveScorer, FacePipeline
                 report: Report | None = None):  # noqa: ANN201 - generator of (done, total), returns list[Scored]
    """Passive score of every ``every``-th image of a labelled folder, as a generator of (done, total) that
    returns the list of ``Scored`` (so the GUI can show progress and cancel)."""
    from faceapp.capture.images import read_image

    items = labelled_images(root)[::every]
    out: list[Scored] = []
    for i, (kind, subject, path) in enumerate(items):
        image = read_image(path)
        faces = pipeline.detect(image)
        score = scorer.score(image, faces[0].box).live if len(faces) == 1 else None
        out.append(Scored(kind, subject, str(path), score))
        yield i + 1, len(items)
    return out


def threshold_at_bpcer(live_scores: Sequence[float], target: float) -> float:
    """The highest threshold whose BPCER (live scores under it) on ``live_scores`` is at most ``target``."""
    values = np.sort(np.asarray(live_scores, dtype=np.float64))
    if values.size == 0:
        raise DatasetError("no bona fide (live) scores to choose a threshold from")
    k = int(np.floor(target * values.size))
    return float(values[min(k, values.size - 1)])


def pad_metrics(scored: Sequence[Scored], threshold: float) -> dict[str, object]:
    """APCER per attack kind, max APCER, BPCER at ``threshold`` (live when score >= threshold). Images with no
    single face are listed as ``no_face`` and left out of the rates (an attack without a face cannot pass)."""
    kinds = sorted({s.kind for s in scored if s.kind != LIVE})
    out: dict[str, object] = {"threshold": threshold, "apcer": {}, "attempts": {}, "no_face": {}}
    for kind in kinds + [LIVE]:
        got = [s.score for s in scored if s.kind == kind and s.score is not None]
        out["attempts"][kind] = len(got)
        out["no_face"][kind] = sum(1 for s in scored if s.kind == kind and s.score is None)
        if kind == LIVE:
            out["bpcer"] = float(np.mean([v < threshold for v in got])) if got else None
        else:
            out["apcer"][kind] = float(np.mean([v >= threshold for v in got])) if got else None
    rates = [v for v in out["apcer"].values() if v is not None]
    out["apcer_max"] = max(rates) if rates else None
    out["subjects"] = sorted({s.subject for s in scored})
    return out


def det_points(scored: Sequence[Scored]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, APCER over all attacks, BPCER) for every distinct score: the DET curve."""
    live = np.array([s.score for s in scored if s.kind == LIVE and s.score is not None])
    attack = np.array([s.score for s in scored if s.kind != LIVE and s.score is not None])
    thresholds = np.unique(np.concatenate([live, attack, [0.0, 1.0 + 1e-9]]))
    apcer = np.array([(attack >= t).mean() if attack.size else np.nan for t in thresholds])
    bpcer = np.array([(live < t).mean() if live.size else np.nan for t in thresholds])
    return thresholds, apcer, bpcer


def nuaa_report(scored: Sequence[Scored], *, target_bpcer: float = 0.05) -> dict[str, object]:
    """Threshold chosen at ``target_bpcer`` on the first half of the subjects (sorted), metrics reported on the
    other half (and, for reference, on all subjects at that threshold)."""
    subjects = sorted({s.subject for s in scored})
    if len(subjects) < 2:
        raise DatasetError("need at least two subjects to choose the threshold on some and report on others")
    calib = set(subjects[: len(subjects) // 2])
    calib_live = [s.score for s in scored if s.subject in calib and s.kind == LIVE and s.score is not None]
    threshold = threshold_at_bpcer(calib_live, target_bpcer)
    test = [s for s in scored if s.subject not in calib]
    return {"target_bpcer": target_bpcer, "threshold": threshold, "calibration_subjects": sorted(calib),
            "test_subjects": sorted({s.subject for s in test}), "test": pad_metrics(test, threshold),
            "calibration": pad_metrics([s for s in scored if s.subject in calib], threshold)}


# ---------------------------------------------------------------------------------------------- blinks
def _label_runs(labels: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.r_[0, labels.astype(int), 0]))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def blink_series(video: Path, pipeline_factory) -> tuple[np.ndarray, list[list]]:  # noqa: ANN001
    """(timestamps in ms, faces per frame) of a video through a fresh video-mode pipeline."""
    from faceapp.capture.sources import VideoFileSource

    times, faces = [], []
    with pipeline_factory() as pipeline, VideoFileSource(video) as source:
        for frame in source:
            times.append(frame.timestamp_ms)
            faces.append(pipeline.detect(frame.image, frame.timestamp_ms))
    return np.asarray(times), faces


def blink_video_report(times: np.ndarray, faces: list[list], labels: np.ndarray, *, tolerance: int = 2,
                       starts_every_ms: float = 5000.0) -> dict[str, object]:
    """Recall, false blinks per minute and blink-challenge pass times for one labelled video."""
    if len(labels) != len(times):
        raise DatasetError(f"{len(labels)} labels for {len(times)} frames")
    detector = BlinkDetector()
    starts = []
    for i, (t, fs) in enumerate(zip(times, faces)):
        closure = eye_closure(fs[0]) if fs else None
        if closure is not None and detector.update(float(t), closure, fs[0]) is not None:
            starts.append(int(np.searchsorted(times, detector.events[-1].start_ms)))
    runs = _label_runs(labels)
    hit, false = set(), 0
    for s in starts:
        match = [k for k, (a, b) in enumerate(runs) if a - tolerance <= s < b + tolerance]
        hit.add(match[0]) if match else None
        false += not match
    minutes = float(times[-1] - times[0]) / 60000.0 if len(times) > 1 else 0.0
    pass_times = []
    for start in np.arange(times[0], times[-1], starts_every_ms):
        challenge = Challenge([Step(Action.BLINK)], time_limit_ms=float("inf"))
        for t, fs in zip(times, faces):
            if t >= start and challenge.update(fs, float(t)).done:
                break
        result = challenge.result()
        pass_times.append(result.elapsed_ms / 1000.0 if result.outcome is Outcome.PASSED else None)
    passed = [p for p in pass_times if p is not None]
    return {"frames": len(times), "minutes": round(minutes, 3), "labelled_blinks": len(runs),
            "detected_blinks": len(starts), "recall": len(hit) / len(runs) if runs else None,
            "false_blinks": false, "voided_closures": len(detector.voided), "false_per_minute": false / minutes if minutes else None,
            "challenge_starts": len(pass_times), "challenge_passed": len(passed),
            "pass_time_s_median": float(np.median(passed)) if passed else None,
            "pass_time_s_max": float(np.max(passed)) if passed else None}


def replay_report(root: Path, pipeline_factory, *, fps: float = 10.0, seed: int = 0,  # noqa: ANN001
                  orders: int = 3, full_challenges: int = 3) -> dict[str, object]:
    """Each subject's attack images of each kind played as a video (``fps``) in ``orders`` frame orders (the
    files' own, then random shuffles: new transitions between poses and bends), each through a blink-only
    challenge and ``full_challenges`` random full ones; counts how many pass (must be 0). The frames of one
    order go through a fresh video-mode pipeline once; every challenge of that order judges those faces."""
    from faceapp.capture.images import read_image

    rng = random.Random(seed)
    out: dict[str, list] = {}
    groups: dict[tuple[str, str], list[Path]] = {}
    for kind, subject, path in labelled_images(root):
        if kind != LIVE:
            groups.setdefault((kind, subject), []).append(path)
    passes, runs = 0, 0
    for (kind, subject), paths in sorted(groups.items()):
        images = [read_image(p) for p in sorted(paths)]
        for order in range(orders):
            sequence = list(range(len(images)))
            if order:
                rng.shuffle(sequence)
            with pipeline_factory() as pipeline:
                played = [(i * 1000.0 / fps, pipeline.detect(images[k], i * 1000.0 / fps))
                          for i, k in enumerate(sequence)]
            for steps in [(Step(Action.BLINK),)] + [random_steps(rng) for _ in range(full_challenges)]:
                challenge = Challenge(steps, time_limit_ms=float("inf"))
                for t, faces in played:
                    if challenge.update(faces, t).done:
                        break
                result = challenge.end_of_input()
                runs += 1
                passes += result.outcome is Outcome.PASSED
                out.setdefault(kind, []).append({"subject": subject, "frames": len(played), "order": order,
                                                 "steps": [s.action.value for s in steps],
                                                 "outcome": result.outcome.value,
                                                 "voided_blinks": challenge.result().voided_blinks})
    per_kind = {kind: {"runs": len(rows), "passed": sum(r["outcome"] == Outcome.PASSED.value for r in rows)}
                for kind, rows in out.items()}
    return {"runs": runs, "passed": passes, "per_kind_summary": per_kind, "per_kind": out, "fps": fps,
            "orders": orders, "full_challenges": full_challenges}
