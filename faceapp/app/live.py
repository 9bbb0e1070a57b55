"""The Live page model: the live session's settings (mode, thresholds, claimed identity), the result on
screen, the page's warnings, the identities to claim, candidate thumbnails, frame-rate accounting and the
use cases (save thresholds for the model, re-decide the shown result when a threshold moves, build the
live pipeline for the capture thread). Qt-free.

The Qt view (``faceapp.gui.pages.live.LivePage``) owns the widgets and the capture thread (``LiveThread``)
and forwards what happens to this model; the model answers with events. Slow work (SQL) goes through the
``run`` callable the owner passes in (``AppContext.run`` in the GUI, ``run_now`` in tests), as in
``faceapp.app.identities``.

Events (``faceapp.app.events.Event``):
- ``warnings_changed(lines)``: the page's persistent warning (services, then the model's readiness);
- ``identities_loaded(identities)``: the identities that can be claimed in verify mode;
- ``thresholds_loaded(thresholds)``: the active model's thresholds, to put on the sliders (exact values);
- ``threshold_source_changed(text)``: where the thresholds in use come from ("store:manual", "slider"...);
- ``thresholds_saved(record)``: thresholds were stored for the model (other pages must reload theirs);
- ``mode_changed(mode)``; ``result_changed(result, new_frame)``: the result to show (thresholds applied);
- ``thumbs_loaded(crops)``: identity id -> first stored crop (BGR) or None;
- ``start_requested(spec, loop)``: (re)start the live loop on ``spec`` (the model was changed, or --source);
- ``message(level, text)``: something to tell the operator;
- ``operating_points_changed(readouts)``: {"verify"|"identify": OperatingReadout} for the sliders' values;
- ``recent_changed(decisions)``: the recent decisions (newest first, filter applied) for the strip;
- ``audit_loaded(title, rows)``: the audit behind a recent decision (``AuditRow``s): every event of the
  person it names, or the row of an Unknown / Ambiguous decision with its best candidates apart.

Liveness (``set_liveness(mode, require=...)``): the live loop judges the main face under the policy
(``faceapp.services.live_liveness.LiveLiveness``, on the live thread) and audits each decision; with
``require`` a MATCH (or a name) of a face that is not live shows "LIVENESS REQUIRED" instead.

What the answer panel shows is ``panel(face)`` (a ``Panel``): the decision, the name, score, threshold and
margin, "ambiguous" when the top two identities are within ``ambiguity_margin``, and the empty and error
states (no source running, no face, empty gallery, nobody claimed) with a hint saying what to do.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from faceapp.app.events import Event, run_now
from faceapp.app.identities import Runner
from faceapp.services.live import (
    DecisionAuditor, FaceResult, GalleryMatcher, LivePipeline, LiveResult, LiveSettings, apply_thresholds,
)
from faceapp.matching.matcher import check_ambiguity_margin
from faceapp.services.live_liveness import LIVENESS_MODES, LiveLiveness, withheld_by_liveness
from faceapp.services.operating_point import OperatingReadout, change_summary, model_readouts

MODES = ("identify", "verify")
RECENT_KEEP = 50                    # decisions kept for the recent strip
RECENT_KINDS = ("all", "named", "ambiguous", "unknown", "match", "no-match", "liveness-required")
NO_SOURCE_HINT = "No source is running: choose a camera, a video or images and press Start (Space)."
EMPTY_GALLERY_HINT = "The gallery is empty: nobody can be recognised. Enrol people on the Enroll page first."


@dataclass(frozen=True)
class Panel:
    """What the answer panel shows for the main face (identify or verify)."""

    headline: str                       # NO SOURCE, NO FACE, MATCH, NO MATCH, Unknown, Ambiguous, a name
    role: str                           # style: verdict-idle / -match / -nomatch / -unknown / -ambiguous
    name: str = ""                      # the identity the decision is about ("" when none)
    score: float | None = None
    threshold: float | None = None
    ambiguous: bool = False
    runner_up: str = ""                 # the second identity when ambiguous
    hint: str = ""                      # an empty or error state: what to do

    @property
    def margin(self) -> float | None:
        """Score minus threshold (positive: accepted)."""
        return None if self.score is None or self.threshold is None else self.score - self.threshold

    @property
    def numbers(self) -> str:
        """"score 0.512 · threshold 0.426 · margin +0.086" (empty without a score)."""
        if self.score is None or self.threshold is None:
            return ""
        return f"score {self.score:.3f} · threshold {self.threshold:.3f} · margin {self.margin:+.3f}"


@dataclass(frozen=True)
class RecentDecision:
    """One audited decision for the recent strip (``crop``: the live probe, kept in memory only)."""

    audit_id: int
    time: datetime
    operation: str                      # identify / verify
    identity_id: int | None
    name: str                           # the identity, or "Unknown"
    score: float | None
    decision: str                       # identified / ambiguous / unknown / match / no-match / liveness-required
    operator: str
    crop: Any = None

    @classmethod
    def from_record(cls, record: Any, crop: Any = None) -> "RecentDecision":
        shown = {"unknown": "Unknown", "ambiguous": "Ambiguous"}.get(record.decision or "")
        return cls(record.id, record.time, record.operation, record.identity_id,
                   shown or (record.identity_name or "?"), record.score, record.decision or "",
                   record.operator or "-", crop)

    def kind(self) -> str:
        """The filter category: named / ambiguous / unknown / match / no-match / liveness-required."""
        return {"identified": "named"}.get(self.decision, self.decision)

    def line(self) -> str:
        score = "-" if self.score is None else f"{self.score:.3f}"
        when = self.time.astimezone().strftime("%H:%M:%S") if self.time.tzinfo else self.time.strftime("%H:%M:%S")
        verdict = {"match": "MATCH ", "no-match": "NO MATCH ", "liveness-required": "LIVENESS REQUIRED "
                   }.get(self.decision, "")
        return f"{when}  {verdict}{self.name}  {score}  · {self.operator}"


def recent_decisions(store: Any, limit: int = RECENT_KEEP) -> list[RecentDecision]:
    """The newest identify / verify audit events (runs on a worker)."""
    records = store.audit.query(limit=limit * 3, newest_first=True)
    decisions = [RecentDecision.from_record(r) for r in records if r.operation in ("identify", "verify")]
    return decisions[:limit]


AUDIT_COLUMNS = ("time", "operation", "decision", "name", "best candidate", "score", "threshold", "operator", "model")


@dataclass(frozen=True)
class AuditRow:
    """One audit event as the audit dialog shows it (``AUDIT_COLUMNS``). The name column holds the answer
    only: an Unknown or Ambiguous decision names nobody there, its best candidates (with their scores) stand
    in their own column, so they never read as the answer."""

    audit_id: int
    identity_id: int | None
    values: tuple[str, ...]


def audit_rows(records: Sequence[Any], names: dict[int, str]) -> list[AuditRow]:
    """``records`` (AuditRecord) as dialog rows; ``names``: identity id -> current name (for candidates)."""
    rows = []
    for r in records:
        named_nobody = r.operation == "identify" and r.decision in ("unknown", "ambiguous")
        best = ""
        if named_nobody:
            ranked = r.details.get("candidates") or []
            best = " / ".join(f"{names.get(int(i), f'#{i} (deleted)')} {float(score):.3f}"
                              for i, score in ranked[:2 if r.decision == "ambiguous" else 1])
        name = {"unknown": "Unknown", "ambiguous": "Ambiguous"}.get(r.decision or "") if named_nobody else None
        values = (r.time.astimezone().strftime("%Y-%m-%d %H:%M:%S") if r.time.tzinfo else
                  r.time.strftime("%Y-%m-%d %H:%M:%S"), r.operation, r.decision or "", name or r.identity_name or "",
                  best, "" if r.score is None else f"{r.score:.3f}",
                  "" if r.threshold is None else f"{r.threshold:.3f}", r.operator or "", r.model_id or "")
        rows.append(AuditRow(r.id, r.identity_id, values))
    return rows


def _names(store: Any) -> dict[int, str]:
    return {info.id: info.name for info in store.identities.list()}


def person_audit(store: Any, identity_id: int) -> list[AuditRow]:
    """Every audit event about one identity, newest first (runs on a worker)."""
    return audit_rows(store.audit.query(identity_id=identity_id, newest_first=True), _names(store))


def decision_audit(store: Any, audit_id: int) -> list[AuditRow]:
    """The audit row of one decision (an Unknown or Ambiguous one names no person; runs on a worker)."""
    return audit_rows(store.audit.query(event_id=audit_id), _names(store))


def parse_source(text: str) -> int | str:
    """A source typed or remembered as text: "camera:N" / "N" -> camera index, else a path."""
    value = text.strip()
    if value.lower().startswith("camera:") and value[7:].isdigit():
        return int(value[7:])
    if value.isdigit():
        return int(value)
    return value


def describe_source(spec: int | str | Sequence[str]) -> str:
    """Status-bar text for a source."""
    if isinstance(spec, int):
        return f"Camera: camera:{spec}"
    if isinstance(spec, (list, tuple)):
        return f"Images: {len(spec)} file(s)" if len(spec) != 1 else f"Image: {Path(spec[0]).name}"
    return f"Source: {Path(spec).name}"


def is_image(path: str) -> bool:
    from faceapp.capture.images import is_image_path

    return bool(is_image_path(path))


def readiness(gallery: Any) -> tuple[Any, list[str]]:
    """(gallery, warnings about its model) on a worker: see ``faceapp.services.activation.readiness_warnings``."""
    from faceapp.services.activation import readiness_warnings

    return gallery, readiness_warnings(gallery)


def first_crops(store: Any, identity_ids: list[int]) -> dict[int, Any]:
    """identity id -> its first stored crop (BGR) or None (runs on a worker)."""
    crops = {}
    for identity_id in identity_ids:
        try:
            stored = store.templates.crops(identity_id)
        except Exception:  # noqa: BLE001 - a deleted identity: no thumbnail
            stored = []
        crops[identity_id] = stored[0].image() if stored else None
    return crops


class LiveModel:
    """State and use cases of the Live page (see the module docstring)."""

    def __init__(self, session: Any, run: Runner = run_now, *, mode: str = "identify",
                 startup_source: str | None = None) -> None:
        self.session = session                  # .store / .embedder / .gallery / .loading / .errors / create_pipeline
        self.run = run
        self.settings = LiveSettings(mode=mode if mode in MODES else "identify")
        self.startup_source = startup_source    # --source: started once, when the services have loaded
        self.result: LiveResult | None = None
        self.identities: list[Any] = []
        self.problems: list[str] = []           # services missing
        self.readiness: list[str] = []          # the active model's thresholds / templates
        self.thumbs: dict[int, Any] = {}        # identity id -> first crop (BGR) or None
        self._thumbs_loading: set[int] = set()
        self.source_spec: int | str | list[str] | None = None
        self.live_embedder: Any = None          # the embedder the running loop was built with
        self.live_loop = False
        self.running = False                    # told by the view (its capture thread)
        self._autostarted = False
        self._pipeline: Any = None              # FacePipeline (video mode), created on the live thread, reused
        self._pipeline_lock = getattr(session, "pipeline_lock", None) or threading.Lock()
        self._shown: deque[float] = deque(maxlen=30)
        self.latency: deque[float] = deque(maxlen=120)
        self.gui_fps = 0.0
        self.display_ms = 0.0
        self.stored = {"identify": self.settings.identify_threshold, "verify": self.settings.verify_threshold}
        self.recent: deque[RecentDecision] = deque(maxlen=RECENT_KEEP)    # newest first
        self.recent_filter = ("", "all")                                   # (text in the name, kind)
        self._auditor: DecisionAuditor | None = None
        self.liveness: LiveLiveness | None = None    # the running loop's liveness (built with the loop)
        self.source_error = ""                  # why the last source failed ("" when it runs or ran fine)
        for name in ("warnings_changed", "identities_loaded", "thresholds_loaded", "threshold_source_changed",
                     "thresholds_saved", "mode_changed", "result_changed", "thumbs_loaded", "start_requested",
                     "message", "operating_points_changed", "recent_changed", "audit_loaded"):
            setattr(self, name, Event(name))

    # -- services ---------------------------------------------------------------------------------
    @property
    def loading(self) -> bool:
        return bool(getattr(self.session, "loading", False))

    def services_changed(self) -> None:
        """The store / model were (re)loaded: warnings, identities, thresholds, readiness; restart or autostart."""
        session = self.session
        problems = []
        if session.embedder is not None and not getattr(session.embedder, "trained", True):
            problems.append("Untrained model: names and scores are NOT meaningful until a trained model is active.")
        if session.gallery is None and not self.loading:
            problems.append("No gallery (database or model unavailable): faces are detected but not recognised.")
        self.problems = problems
        self.readiness = []
        self.warnings_changed.emit(self.warnings())
        self.load_identities()
        self.load_thresholds()
        self.check_readiness()
        self.load_recent()
        if self.running and self.source_spec is not None and self.live_embedder is not session.embedder:
            self.start_requested.emit(self.source_spec, self.live_loop)      # another model was activated
        errors = getattr(session, "errors", None)
        if self.startup_source and not self._autostarted and not self.loading and (session.embedder or errors):
            self._autostarted = True
            self.start_requested.emit(parse_source(self.startup_source), False)

    def gallery_changed(self) -> None:
        self.thumbs.clear()
        self.load_identities()
        self.check_readiness()
        self.operating_points_changed.emit(self.readouts())     # N changed

    def warnings(self) -> list[str]:
        """The page's persistent warning lines: what is wrong with the services, then with the active model."""
        return self.problems + self.readiness

    def check_readiness(self) -> None:
        """Ask whether the active model has calibrated thresholds and templates for everyone."""
        if self.session.gallery is None:
            return
        self.run(readiness, self.session.gallery, on_result=self._readiness_checked, context="Checking the model")

    def _readiness_checked(self, checked: tuple) -> None:
        gallery, warnings = checked
        if gallery is not self.session.gallery:
            return                                   # another model was activated meanwhile: its check follows
        self.readiness = list(warnings)
        self.warnings_changed.emit(self.warnings())

    def load_identities(self) -> None:
        if self.session.store is None:
            return
        self.run(self.session.store.identities.list, on_result=self._identities_loaded, context="Listing identities")

    def _identities_loaded(self, identities: list) -> None:
        self.identities = list(identities)
        self.identities_loaded.emit(self.identities)
        self.operating_points_changed.emit(self.readouts())

    # -- thresholds -------------------------------------------------------------------------------
    def load_thresholds(self) -> None:
        if self.session.gallery is None:
            return
        self.run(self.session.gallery.thresholds, on_result=self._thresholds_loaded, context="Reading thresholds")

    def _thresholds_loaded(self, thresholds: Any) -> None:
        self.stored = {"identify": float(thresholds.identify), "verify": float(thresholds.verify)}
        self.set_thresholds(thresholds.identify, thresholds.verify)
        self.thresholds_loaded.emit(thresholds)              # the view's sliders take the exact values
        self._set_source(thresholds.source)

    def _set_source(self, source: str) -> None:
        self.settings.thresholds_source = source
        self.threshold_source_changed.emit(f"source: {source}")

    def set_thresholds(self, identify: float, verify: float) -> None:
        """A slider moved: decide from the next frame at these values and re-decide the result on screen."""
        if (identify, verify) == (self.settings.identify_threshold, self.settings.verify_threshold):
            return
        self.settings.identify_threshold = float(identify)
        self.settings.verify_threshold = float(verify)
        self.settings.thresholds_source = "slider"            # until thresholds are (re)loaded or saved
        self.operating_points_changed.emit(self.readouts())
        if self.result is not None:
            self._redecide()

    def _redecide(self) -> None:
        """Re-decide the result on screen at the settings in use (the matcher decides) and show it again."""
        if self.result is not None:
            self.result = apply_thresholds(self.result, self.settings.identify_threshold,
                                           self.settings.verify_threshold, self.settings.ambiguity_margin)
            self.result_changed.emit(self.result, False)

    def save_thresholds(self) -> None:
        """Store the thresholds in use, exactly, as the active model's (the one route, through the gallery)."""
        gallery = self.session.gallery
        if gallery is None:
            self.message.emit("warning", "No gallery is loaded: thresholds cannot be saved.")
            return
        self.run(gallery.save_thresholds, self.settings.verify_threshold, self.settings.identify_threshold,
                 source="manual", on_result=self._thresholds_saved, context="Saving thresholds")

    def gallery_size(self) -> int:
        """N of identification: identities with a template of the active model."""
        gallery = self.session.gallery
        return int(gallery.index.identity_count) if gallery is not None else 0

    def readouts(self, identify: float | None = None, verify: float | None = None) -> dict[str, OperatingReadout]:
        """The operating point of the thresholds in use (or of the given values), from the model's calibration."""
        gallery = self.session.gallery
        return model_readouts(gallery.card if gallery is not None else None,
                              verify=self.settings.verify_threshold if verify is None else verify,
                              identify=self.settings.identify_threshold if identify is None else identify,
                              gallery_size=self.gallery_size())

    def save_summary(self) -> str:
        """The confirmation text before saving: stored and new value of each threshold with its operating point."""
        new = {"identify": self.settings.identify_threshold, "verify": self.settings.verify_threshold}
        return change_summary(self.stored, new, self.readouts(),
                              self.readouts(identify=self.stored["identify"], verify=self.stored["verify"]))

    def _thresholds_saved(self, record: Any) -> None:
        self.stored = {"identify": float(record.identify), "verify": float(record.verify)}
        self._set_source(f"store:{record.source}")
        self.message.emit("info", f"Thresholds saved for {record.model_id}: verify {record.verify:.4g}, "
                                  f"identify {record.identify:.4g}.")
        self.thresholds_saved.emit(record)

    # -- mode and claim ---------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """Switch between "identify" and "verify" (applies from the next frame)."""
        if mode not in MODES:
            raise ValueError(f"mode must be identify or verify, not {mode!r}")
        self.settings.mode = mode
        self.mode_changed.emit(mode)

    def set_claimed(self, identity_id: int | None, name: str = "") -> None:
        self.settings.claimed_identity_id = int(identity_id) if identity_id is not None else None
        self.settings.claimed_name = name

    # -- the live loop ----------------------------------------------------------------------------
    def begin(self, spec: int | str | Path | Sequence[str | Path], *, loop: bool = False) -> int | str | list[str]:
        """A new source is starting: remember it and the model it runs with, forget the last result."""
        if isinstance(spec, Path):
            spec = str(spec)
        if isinstance(spec, (list, tuple)):
            spec = [str(p) for p in spec]
        self.source_spec = spec
        self.live_embedder, self.live_loop = self.session.embedder, loop   # restarted when the model changes
        self.result = None
        self.source_error = ""
        self._shown.clear()
        self.latency.clear()
        return spec

    def make_live(self) -> LivePipeline:
        """Build the LivePipeline (call on the live thread: loads MediaPipe on first use)."""
        session = self.session
        with self._pipeline_lock:
            if self._pipeline is None:
                self._pipeline = session.create_pipeline("video")
        gallery = session.gallery
        matcher = GalleryMatcher(gallery) if gallery is not None else None
        auditor = None
        if gallery is not None and session.store is not None:
            auditor = DecisionAuditor(session.store, gallery.model.model_id, gallery.operator)
        self._auditor = auditor
        self.liveness = self._make_liveness(gallery)
        return LivePipeline(self._pipeline, session.embedder, matcher, self.settings, auditor=auditor,
                            liveness=self.liveness)

    # -- liveness ---------------------------------------------------------------------------------
    def _make_liveness(self, gallery: Any) -> LiveLiveness:
        """The loop's liveness judge; the PAD scorer of the previous loop is reused (loaded once, on first need)."""
        from faceapp.liveness.check import LivenessChecker

        previous = self.liveness
        checker = previous.checker if previous is not None else LivenessChecker(
            "off", pad_model_dir=getattr(self.session, "pad_model_dir", None))
        return LiveLiveness(self.settings, checker, store=self.session.store,
                            operator=getattr(gallery, "operator", None))

    def set_liveness(self, mode: str, *, require: bool | None = None) -> None:
        """The liveness policy (off / passive / challenge / both) and whether a MATCH needs "live"; applies from
        the next frame and re-decides the panel on screen."""
        if mode not in LIVENESS_MODES:
            raise ValueError(f"liveness must be one of {', '.join(LIVENESS_MODES)}, not {mode!r}")
        self.settings.liveness_mode = mode
        if require is not None:
            self.settings.require_liveness = bool(require)
        if self.result is not None:
            self.result_changed.emit(self.result, False)

    def restart_challenge(self) -> None:
        """A new challenge (new random steps) for the person in front of the camera."""
        if self.liveness is not None:
            self.liveness.restart_challenge()

    def liveness_of(self, face: FaceResult | None) -> tuple[str, str]:
        """(state, tooltip) of the badge next to the verdict: "" when liveness is off."""
        if self.settings.liveness_mode == "off":
            return "", ""
        decision = getattr(face, "liveness", None)
        if decision is None:
            return "not checked", "no face judged yet"
        return decision.state.value, liveness_tooltip(decision)

    def take(self, result: LiveResult, ready_at: float | None = None, *, now: float | None = None) -> LiveResult:
        """A new frame's result is shown: apply the current thresholds, count it (frame rate, display time)."""
        result = apply_thresholds(result, self.settings.identify_threshold, self.settings.verify_threshold,
                                  self.settings.ambiguity_margin)
        self.result = result
        if ready_at is not None:
            now = time.perf_counter() if now is None else now
            self.display_ms = (now - ready_at) * 1000.0
            self._shown.append(now)
            if len(self._shown) >= 2 and self._shown[-1] > self._shown[0]:
                self.gui_fps = (len(self._shown) - 1) / (self._shown[-1] - self._shown[0])
            self.latency.append(result.times.total_ms)
        self.result_changed.emit(result, True)
        self._collect_audited()
        return result

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.close()
            self._pipeline = None

    # -- what to show -----------------------------------------------------------------------------
    @property
    def ambiguity_margin(self) -> float:
        return self.settings.ambiguity_margin

    def set_ambiguity_margin(self, margin: float) -> None:
        """Top two identities whose scores differ by less than ``margin`` (cosine, in [0, 1]) name nobody: the
        answer is "ambiguous" (decided by the matcher, audited as such); applies to the result on screen too."""
        self.settings.ambiguity_margin = check_ambiguity_margin(margin)
        self._redecide()

    @staticmethod
    def is_ambiguous(face: FaceResult | None) -> bool:
        """Identify: the matcher found the runner-up within the ambiguity margin of the best."""
        return face is not None and face.identify is not None and face.identify.ambiguous

    def _idle(self, face: FaceResult | None) -> Panel | None:
        """The empty and error states shared by both modes (None when there is an answer to show)."""
        if face is None:
            if not self.running:
                hint = self.source_error or NO_SOURCE_HINT
                return Panel("NO SOURCE" if not self.source_error else "SOURCE FAILED", "verdict-idle", hint=hint)
            return Panel("NO FACE", "verdict-idle", hint="No face in view.")
        return None

    def panel(self, face: FaceResult | None) -> Panel:
        """What the answer panel shows for the main face in the current mode (see ``Panel``); an accepting
        answer withheld because liveness is required reads "LIVENESS REQUIRED"."""
        shown = self._decision_panel(face)
        withheld = withheld_by_liveness(face, self.settings) if shown.role == "verdict-match" else None
        if withheld is None:
            return shown
        return Panel("LIVENESS REQUIRED", "verdict-nomatch", name=shown.name, score=shown.score,
                     threshold=shown.threshold,
                     hint=f"Not a match: liveness {withheld.state.value} ({withheld.reason}).")

    def _decision_panel(self, face: FaceResult | None) -> Panel:
        """The panel of the recognition decision alone (see ``panel``)."""
        idle = self._idle(face)
        verify_mode = self.settings.mode == "verify"
        if not verify_mode and self.session.gallery is not None and self.gallery_size() == 0:
            return Panel("GALLERY EMPTY", "verdict-idle", hint=EMPTY_GALLERY_HINT)
        if idle is not None and not verify_mode:
            return idle
        if verify_mode:                          # nobody to claim, or no claim: said before "no source"
            if not self.identities:
                return Panel("NOBODY ENROLLED", "verdict-idle", hint="No identity enrolled yet: enrol someone "
                                                                     "on the Enroll page first.")
            if self.settings.claimed_identity_id is None:
                return Panel("-", "verdict-idle", hint="Choose the claimed identity.")
            if face is None or face.verify is None:
                return idle or Panel("-", "verdict-idle", hint="Waiting for the next frame.")
            v = face.verify
            return Panel("MATCH" if v.match else "NO MATCH", "verdict-match" if v.match else "verdict-nomatch",
                         name=v.name, score=v.score, threshold=v.threshold)
        if face is None or face.identify is None:
            return idle or Panel("-", "verdict-idle", hint="Not matched (no model or gallery).")
        decision = face.identify
        best = decision.best
        score = best.score if best is not None else None
        if decision.ambiguous:
            second = decision.candidates[1]
            return Panel("Ambiguous", "verdict-ambiguous", name=best.name, score=score, threshold=decision.threshold,
                         ambiguous=True, runner_up=second.name,
                         hint=f"{best.name} {best.score:.3f} and {second.name} {second.score:.3f} are within "
                              f"{decision.ambiguity_margin:.3f}: check the person.")
        if decision.is_unknown or best is None:
            return Panel("Unknown", "verdict-unknown", score=score, threshold=decision.threshold)
        return Panel(best.name, "verdict-match", name=best.name, score=score, threshold=decision.threshold)

    def candidate_lines(self, face: FaceResult | None) -> list[tuple[str, str, int]]:
        """Identify: [(name, "0.800 >= 0.590", identity id)] best first; asks for missing thumbnails."""
        if face is None or face.identify is None:
            return []
        decision = face.identify
        lines = []
        for rank, candidate in enumerate(decision.candidates, 1):
            above = candidate.score >= decision.threshold
            lines.append((f"{rank}. {candidate.name}",
                          f"{candidate.score:.3f} {'>=' if above else '<'} {decision.threshold:.3f}",
                          candidate.identity_id))
        self.request_thumbs([c.identity_id for c in decision.candidates])
        return lines

    def health(self) -> tuple[str, str]:
        """The source-health badge on the video: (text, colour name of the theme)."""
        if self.source_error and not self.running:
            return "✕ SOURCE FAILED", "bad"
        if not self.running:
            return "■ STOPPED", "unknown"
        result = self.result
        if result is None:
            return "● OPENING…", "warn"
        h, w = result.frame.image.shape[:2]
        color = "good" if result.dropped == 0 or self.gui_fps >= 10 else "warn"
        return (f"● LIVE {w}×{h} · {self.gui_fps:.1f} fps shown / {result.fps:.1f} processed · "
                f"{result.dropped} dropped"), color

    def source_failed(self, text: str) -> None:
        """The source could not open or stopped with an error (shown in the panel and the health badge)."""
        self.source_error = text
        self.running = False

    # -- recent decisions -------------------------------------------------------------------------
    def load_recent(self) -> None:
        """Read the newest decisions from the audit log (worker) for the recent strip."""
        if self.session.store is None:
            return
        self.run(recent_decisions, self.session.store, on_result=self._recent_loaded, context="Reading the audit log")

    def _recent_loaded(self, decisions: list) -> None:
        known = {d.audit_id: d for d in self.recent}
        merged = [known.get(d.audit_id, d) for d in decisions]           # keep the live crops already held
        newer = [d for d in self.recent if d.audit_id not in {m.audit_id for m in merged}]
        self.recent = deque(sorted(newer + merged, key=lambda d: -d.audit_id)[:RECENT_KEEP], maxlen=RECENT_KEEP)
        self.recent_changed.emit(self.filtered_recent())

    def _collect_audited(self) -> None:
        """Move the decisions the live loop audited since the last frame into the recent strip."""
        auditor = self._auditor
        if auditor is None or not auditor.recent:
            return
        added = False
        while auditor.recent:
            try:
                record, crop = auditor.recent.popleft()
            except IndexError:
                break
            self.recent.appendleft(RecentDecision.from_record(record, crop))
            added = True
        if added:
            self.recent_changed.emit(self.filtered_recent())

    def set_recent_filter(self, text: str = "", kind: str = "all") -> None:
        """Show only decisions whose name contains ``text`` (any case) and of ``kind`` (RECENT_KINDS)."""
        if kind not in RECENT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(RECENT_KINDS)}, not {kind!r}")
        self.recent_filter = (text.strip(), kind)
        self.recent_changed.emit(self.filtered_recent())

    def filtered_recent(self) -> list[RecentDecision]:
        text, kind = self.recent_filter
        needle = text.casefold()
        return [d for d in self.recent
                if (kind == "all" or d.kind() == kind) and (not needle or needle in d.name.casefold())]

    def open_audit(self, decision: RecentDecision) -> None:
        """The full audit behind a recent decision (worker), answered by ``audit_loaded(title, rows)``: every
        event of the person it names, or, for an Unknown / Ambiguous one (nobody named), that decision's own
        audit row with its best candidates kept out of the name column."""
        if decision.identity_id is not None:
            self.open_person_audit(decision.identity_id, decision.name)
            return
        when = decision.time.astimezone() if decision.time.tzinfo else decision.time
        title = f"Audit of the {decision.name} decision #{decision.audit_id} at {when:%Y-%m-%d %H:%M:%S}"
        self._load_audit(decision_audit, decision.audit_id, title)

    def open_person_audit(self, identity_id: int, name: str = "") -> None:
        """Load the full audit of one person (worker); answered by ``audit_loaded(title, rows)``."""
        self._load_audit(person_audit, int(identity_id),
                         f"Audit of {name or identity_id} (id {identity_id}): every event, newest first")

    def _load_audit(self, read: Any, key: int, title: str) -> None:
        if self.session.store is None:
            self.message.emit("warning", "No database is open: the audit log cannot be read.")
            return
        self.run(read, self.session.store, key, on_result=lambda rows: self.audit_loaded.emit(title, rows),
                 context="Reading the audit log")

    def request_thumbs(self, identity_ids: list[int]) -> None:
        missing = [i for i in identity_ids if i not in self.thumbs and i not in self._thumbs_loading]
        if missing and self.session.store is not None:
            self._thumbs_loading.update(missing)
            self.run(first_crops, self.session.store, missing, on_result=self._thumbs_loaded,
                     context="Loading thumbnails")

    def _thumbs_loaded(self, crops: dict) -> None:
        for identity_id, crop in crops.items():
            self._thumbs_loading.discard(identity_id)
            self.thumbs[identity_id] = crop
        self.thumbs_loaded.emit(crops)

    def stage_text(self, result: LiveResult | None) -> str:
        if result is None:
            return "ms per frame: capture - | detect - | embed - | match - | display -"
        t = result.times
        return (f"ms per frame: capture {t.capture_ms:.1f} | detect {t.detect_ms:.1f} | embed {t.embed_ms:.1f} | "
                f"match {t.match_ms:.1f} | display {self.display_ms:.1f} — processing {t.total_ms:.0f}, "
                f"latency {t.latency_ms:.0f}; {result.dropped} frame(s) dropped")

    def fps_text(self, result: LiveResult) -> str:
        return f"FPS {self.gui_fps:.1f} shown / {result.fps:.1f} processed"


def liveness_tooltip(decision: Any) -> str:
    """The badge's tooltip: the state, the reason, the passive scores and the challenge's outcome."""
    lines = [f"Liveness: {decision.state.value} (policy {decision.mode.value})", decision.reason]
    if decision.passive is not None:
        threshold = f" (threshold {decision.threshold.value:.3f}, {decision.threshold.source})" \
            if decision.threshold is not None else ""
        lines.append(f"passive score {decision.passive.live:.3f}{threshold}")
        lines += [f"  {name}: {score:.3f}" for name, score in decision.passive.per_model.items()]
    if decision.challenge is not None:
        c = decision.challenge
        lines.append(f"challenge {c.outcome.value}: {c.steps_done}/{len(c.steps)} steps")
    return "\n".join(line for line in lines if line)
