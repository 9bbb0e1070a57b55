"""The Thresholds tab's liveness section: passive scores of a labelled folder of live and attack images, the
APCER/BPCER trade-off against the threshold (ISO/IEC 30107-3), the threshold set at a target BPCER and
saved for the PAD scorer. Qt-free.

The folder has the NUAA shape ``<root>/live/<subject>/*.jpg`` beside one folder per attack kind
(``print_still/...``); every number comes from ``faceapp.liveness.evaluate`` (the code of
``faceapp liveness-eval``) and the threshold is stored through ``save_liveness_threshold``, the one route
the CLI's ``faceapp liveness-threshold --set`` takes as well (threshold file + audit entry).

Events (``faceapp.app.events.Event``): ``scored(scores)`` (a ``LivenessScores``); ``point_changed(metrics)``
(``pad_metrics`` at the threshold being studied); ``stored_changed(PassiveThreshold)``; ``message(level, text)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from faceapp.app.events import Event, run_now
from faceapp.app.identities import Runner
from faceapp.core.errors import DatasetError
from faceapp.core.progress import Job, Progress
from faceapp.liveness.evaluate import LIVE, Scored, det_points, pad_metrics, score_folder, threshold_at_bpcer
from faceapp.liveness.policy import PassiveThreshold, passive_threshold

STANDARD_BPCERS = (0.01, 0.02, 0.05, 0.10)      # the targets offered by "Set at BPCER"


@dataclass(frozen=True)
class LivenessScores:
    """Passive scores of a labelled folder, with the DET curve (APCER over all attacks, BPCER per threshold)."""

    pad_id: str
    folder: str
    scored: tuple[Scored, ...]
    thresholds: np.ndarray = field(repr=False)
    apcer: np.ndarray = field(repr=False)
    bpcer: np.ndarray = field(repr=False)

    @property
    def live_scores(self) -> list[float]:
        return [s.score for s in self.scored if s.kind == LIVE and s.score is not None]

    @property
    def attack_kinds(self) -> list[str]:
        return sorted({s.kind for s in self.scored if s.kind != LIVE})

    def summary(self) -> str:
        """"NUAA: 80 live, 120 attack images (3 kinds), 8 subjects; 2 without one face"."""
        faceless = sum(1 for s in self.scored if s.score is None)
        attacks = sum(1 for s in self.scored if s.kind != LIVE and s.score is not None)
        subjects = len({s.subject for s in self.scored})
        return (f"{Path(self.folder).name}: {len(self.live_scores)} live, {attacks} attack images "
                f"({len(self.attack_kinds)} kind(s)), {subjects} subject(s)"
                + (f"; {faceless} without exactly one face (left out)" if faceless else ""))


def liveness_score_job(folder: str | Path, pipeline_factory: Callable[[], Any], *, pad_model_dir: Path | None = None,
                       every: int = 1) -> Job[LivenessScores]:
    """Score every ``every``-th image of a labelled folder with the PAD scorer (a job: Progress per image,
    cancellable between images); DatasetError for a folder without ``live`` and an attack folder."""
    from faceapp.liveness.passive import PassiveScorer

    if not str(folder).strip():
        raise DatasetError("choose a labelled folder: live/ beside one folder per attack kind (the NUAA layout)")
    yield Progress("liveness", 0, None, message="loading the PAD models")
    scorer = PassiveScorer(pad_model_dir)          # ModelAssetError names a missing or wrong weight file
    pipeline = pipeline_factory()
    try:
        scoring = score_folder(Path(folder), scorer, pipeline, every=max(1, int(every)))
        while True:
            try:
                done, total = next(scoring)
            except StopIteration as finished:
                scored = finished.value
                break
            yield Progress("liveness", done, total, message=f"scoring {done}/{total}")
    finally:
        close = getattr(pipeline, "close", None)
        if close is not None:
            close()
    if not any(s.kind == LIVE and s.score is not None for s in scored):
        raise DatasetError(f"{folder}: no live image with exactly one face: nothing to set a threshold on",
                           path=str(folder))
    thresholds, apcer, bpcer = det_points(scored)
    return LivenessScores(scorer.id, str(folder), tuple(scored), thresholds, apcer, bpcer)


def save_liveness_threshold(store: Any, pad_id: str, value: float, *, target_bpcer: float | None = None,
                            operator: str | None = None) -> PassiveThreshold:
    """Store ``value`` as the passive threshold of ``pad_id`` and record it in the audit log (when a store is
    open): the one route of the CLI and the Thresholds tab."""
    from faceapp.liveness.policy import save_passive_threshold
    from faceapp.storage.records import AuditEntry

    saved = save_passive_threshold(pad_id, value, target_bpcer=target_bpcer)
    if store is not None:
        store.audit.append(AuditEntry("liveness-threshold", model_id=pad_id, threshold=saved.value, operator=operator,
                                      details={"target_bpcer": target_bpcer}))
    return saved


class LivenessThresholdsModel:
    """State and use cases of the liveness section (see the module docstring)."""

    def __init__(self, session: Any, run: Runner = run_now, start_job: Runner = run_now) -> None:
        self.session = session              # .store / .gallery (operator) / create_pipeline / pad_model_dir
        self.run = run
        self.start_job = start_job
        self.scores: LivenessScores | None = None
        self.threshold = 0.5                # the threshold being studied
        self.target_bpcer: float | None = None
        self.metrics: dict[str, Any] | None = None
        for name in ("scored", "point_changed", "stored_changed", "message"):
            setattr(self, name, Event(name))

    def compute(self, folder: str | Path, *, every: int = 1) -> None:
        """Score the labelled folder (a job: progress and cancel in the view's job panel)."""
        self.start_job(liveness_score_job, str(folder), lambda: self.session.create_pipeline("image"),
                       pad_model_dir=getattr(self.session, "pad_model_dir", None), every=every,
                       on_result=self._scored, context="Scoring liveness")

    def _scored(self, scores: LivenessScores) -> None:
        self.scores = scores
        self.scored.emit(scores)
        self.load_stored()
        self.set_threshold(passive_threshold(scores.pad_id).value)

    def set_threshold(self, value: float) -> None:
        """Study ``value``: APCER per attack kind and BPCER at it (``point_changed``)."""
        self.threshold = float(min(1.0, max(0.0, value)))
        if self.scores is not None:
            self.metrics = pad_metrics(self.scores.scored, self.threshold)
        self.point_changed.emit(self.metrics)

    def set_at_bpcer(self, target: float) -> float:
        """The highest threshold whose BPCER on the live images is at most ``target``; returns it."""
        if self.scores is None:
            raise DatasetError("score a labelled folder first")
        value = threshold_at_bpcer(self.scores.live_scores, float(target))
        self.set_threshold(value)
        self.target_bpcer = float(target)
        return value

    def save(self) -> None:
        """Store the threshold being studied for the PAD scorer that produced the scores (audited)."""
        if self.scores is None:
            self.message.emit("warning", "Score a labelled folder of live and attack images first.")
            return
        gallery = getattr(self.session, "gallery", None)
        self.run(save_liveness_threshold, getattr(self.session, "store", None), self.scores.pad_id, self.threshold,
                 target_bpcer=self.target_bpcer, operator=getattr(gallery, "operator", None),
                 on_result=self._saved, context="Saving the liveness threshold")

    def _saved(self, saved: PassiveThreshold) -> None:
        self.stored_changed.emit(saved)
        target = f" (target BPCER {saved.target_bpcer:g})" if saved.target_bpcer is not None else ""
        self.message.emit("info", f"Liveness threshold saved: {saved.value:.4f}{target}.")

    def load_stored(self) -> None:
        """Read the stored threshold of the PAD scorer of the scores (default before any save)."""
        if self.scores is not None:
            self.run(passive_threshold, self.scores.pad_id, on_result=self.stored_changed.emit,
                     context="Reading the liveness threshold")

    def readout(self) -> list[tuple[str, str]]:
        """(name, value) rows for the view: BPCER, APCER per attack kind, the worst APCER, the counts."""
        m = self.metrics
        if m is None:
            return []
        rows = [("BPCER (live refused)", _pct(m.get("bpcer")))]
        rows += [(f"APCER {kind}", _pct(rate)) for kind, rate in m["apcer"].items()]
        rows.append(("APCER max", _pct(m.get("apcer_max"))))
        return rows


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.2f} %"


def curve(scores: LivenessScores) -> tuple[Sequence[float], Sequence[float], Sequence[float]]:
    """(thresholds, APCER %, BPCER %) for the plot."""
    return scores.thresholds, 100.0 * scores.apcer, 100.0 * scores.bpcer
