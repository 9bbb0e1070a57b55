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
- ``message(level, text)``: something to tell the operator.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Sequence

from faceapp.app.events import Event, run_now
from faceapp.app.identities import Runner
from faceapp.services.live import (
    DecisionAuditor, FaceResult, GalleryMatcher, LivePipeline, LiveResult, LiveSettings, apply_thresholds,
)

MODES = ("identify", "verify")


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
        for name in ("warnings_changed", "identities_loaded", "thresholds_loaded", "threshold_source_changed",
                     "thresholds_saved", "mode_changed", "result_changed", "thumbs_loaded", "start_requested",
                     "message"):
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

    # -- thresholds -------------------------------------------------------------------------------
    def load_thresholds(self) -> None:
        if self.session.gallery is None:
            return
        self.run(self.session.gallery.thresholds, on_result=self._thresholds_loaded, context="Reading thresholds")

    def _thresholds_loaded(self, thresholds: Any) -> None:
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
        if self.result is not None:
            self.result = apply_thresholds(self.result, self.settings.identify_threshold,
                                           self.settings.verify_threshold)
            self.result_changed.emit(self.result, False)

    def save_thresholds(self) -> None:
        """Store the thresholds in use, exactly, as the active model's (the one route, through the gallery)."""
        gallery = self.session.gallery
        if gallery is None:
            self.message.emit("warning", "No gallery is loaded: thresholds cannot be saved.")
            return
        self.run(gallery.save_thresholds, self.settings.verify_threshold, self.settings.identify_threshold,
                 source="manual", on_result=self._thresholds_saved, context="Saving thresholds")

    def _thresholds_saved(self, record: Any) -> None:
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
        return LivePipeline(self._pipeline, session.embedder, matcher, self.settings, auditor=auditor)

    def take(self, result: LiveResult, ready_at: float | None = None, *, now: float | None = None) -> LiveResult:
        """A new frame's result is shown: apply the current thresholds, count it (frame rate, display time)."""
        result = apply_thresholds(result, self.settings.identify_threshold, self.settings.verify_threshold)
        self.result = result
        if ready_at is not None:
            now = time.perf_counter() if now is None else now
            self.display_ms = (now - ready_at) * 1000.0
            self._shown.append(now)
            if len(self._shown) >= 2 and self._shown[-1] > self._shown[0]:
                self.gui_fps = (len(self._shown) - 1) / (self._shown[-1] - self._shown[0])
            self.latency.append(result.times.total_ms)
        self.result_changed.emit(result, True)
        return result

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.close()
            self._pipeline = None

    # -- what to show -----------------------------------------------------------------------------
    def verdict(self, face: FaceResult | None) -> tuple[str, str, str]:
        """Verify mode: (big text, role, detail line)."""
        if face is None or face.verify is None:
            if not self.identities:
                detail = "No identity enrolled yet: enrol someone first"
            elif self.settings.claimed_identity_id is None:
                detail = "Choose the claimed identity"
            else:
                detail = "" if face is None else "Waiting for the next frame"
            return ("NO FACE" if face is None else "-"), "verdict-idle", detail
        verdict = face.verify
        return ("MATCH" if verdict.match else "NO MATCH", "verdict-match" if verdict.match else "verdict-nomatch",
                f"{verdict.name}: score {verdict.score:.3f} {'>=' if verdict.match else '<'} "
                f"threshold {verdict.threshold:.3f}")

    def answer(self, face: FaceResult | None) -> tuple[str, str, list[tuple[str, int]]]:
        """Identify mode: (big text, role, [(candidate line, identity id)]); asks for missing thumbnails."""
        if face is None or face.identify is None:
            return ("NO FACE" if face is None else "-"), "verdict-idle", []
        decision = face.identify
        if decision.is_unknown:
            text, role = "Unknown", "verdict-unknown"
        else:
            text, role = (decision.best.name if decision.best else "?"), "verdict-match"
        lines = []
        for rank, candidate in enumerate(decision.candidates, 1):
            above = candidate.score >= decision.threshold
            lines.append((f"{rank}. {candidate.name}   {candidate.score:.3f} {'>=' if above else '<'} "
                          f"{decision.threshold:.3f}", candidate.identity_id))
        self.request_thumbs([c.identity_id for c in decision.candidates])
        return text, role, lines

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

