"""The headless live pipeline: capture -> detect + align -> embed -> match, with per-stage latency and
frame dropping. The GUI's Live and Enroll pages drive it from a thread; ``faceapp bench`` times it.

    with LiveRunner(open_source("video.avi", realtime=True), LivePipeline(face_pipeline, embedder, matcher)) as runner:
        for result in runner.results(cancel):          # LiveResult per processed frame
            print(result.fps, result.times.total_ms, [f.label for f in result.faces])

Frame dropping ("latest frame wins"): a capture thread reads the source as fast as it delivers and keeps
only the newest frame in a one-item ``LatestSlot``; the processing loop always takes the newest, so when
processing is slower than the camera, old frames are dropped (and counted) instead of queued, and the
view never lags behind reality. Still images are never dropped (each is processed).

Decisions are the matcher's (``faceapp.matching.matcher``): each frame is decided at the thresholds of
``LiveSettings`` (read on every frame, passed as the matcher's per-call threshold override), and
``apply_thresholds`` re-decides a result already on screen with the matcher's ``redecide``, so a threshold
slider acts instantly even on a paused or still frame. Audit entries come from
``faceapp.services.audit.decision_entry``, the builder every interface uses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Protocol

import numpy as np

from faceapp.core.errors import CameraError, FaceAppError
from faceapp.core.progress import CancelToken
from faceapp.core.types import AlignedFace, Candidate, Face, Frame, IdentifyDecision, VerifyDecision
from faceapp.matching.matcher import DEFAULT_AMBIGUITY_MARGIN, redecide

log = logging.getLogger(__name__)

MODES = ("identify", "verify", "detect")


class Matcher(Protocol):
    """What the live pipeline needs from the matching layer: decisions at a per-call threshold."""

    def identify(self, embedding: np.ndarray, top_k: int, threshold: float,
                 ambiguity_margin: float = 0.0) -> IdentifyDecision:
        """Best ``top_k`` identities (one score per identity, best first) and the open-set answer."""

    def verify(self, identity_id: int, embedding: np.ndarray, threshold: float) -> VerifyDecision:
        """MATCH / NO MATCH of ``embedding`` against one identity's templates."""


@dataclass
class LiveSettings:
    """What the operator chose; read by the processing thread on every frame (plain attribute writes
    from the GUI thread are atomic in CPython)."""

    mode: str = "identify"
    identify_threshold: float = 0.5
    verify_threshold: float = 0.5
    claimed_identity_id: int | None = None
    claimed_name: str = ""
    top_k: int = 3
    max_faces: int = 4              # faces embedded and matched per frame (largest first)
    quality_gate: Any = None        # a vision.quality.QualityGate: fills reasons/hints per face
    thresholds_source: str = "live"  # where the thresholds came from (store:..., model-card, slider): audited
    ambiguity_margin: float = DEFAULT_AMBIGUITY_MARGIN   # identify: top two closer than this name nobody
    liveness_mode: str = "off"      # off / passive / challenge / both (faceapp.services.live_liveness)
    require_liveness: bool = False  # a MATCH (or a name) of a face not live is withheld: "liveness required"


@dataclass
class StageTimes:
    """Milliseconds spent per stage on one frame."""

    capture_ms: float = 0.0   # reading/decoding the frame (capture thread)
    detect_ms: float = 0.0    # detection + landmarks + five points + alignment + quality
    embed_ms: float = 0.0     # the embedding network, all faces of the frame in one batch
    match_ms: float = 0.0     # gallery search
    liveness_ms: float = 0.0  # liveness of the main face (passive scoring on its frames, the challenge)
    total_ms: float = 0.0     # detect + embed + match (processing time of the frame)
    latency_ms: float = 0.0   # from the frame's arrival to its result (includes waiting)

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.__dict__.items()}


@dataclass
class FaceResult:
    """One face in a processed frame, with its answer."""

    aligned: AlignedFace
    embedding: np.ndarray | None = None
    candidates: tuple[Candidate, ...] = ()
    identify: IdentifyDecision | None = None
    verify: VerifyDecision | None = None
    reasons: list[str] = field(default_factory=list)   # quality-gate rejections (when a gate is set)
    hints: list[str] = field(default_factory=list)     # operator hints (when a gate is set)
    liveness: Any = None      # the main face's LivenessDecision when liveness is on (None otherwise)

    @property
    def face(self) -> Face:
        return self.aligned.face

    @property
    def crop(self) -> np.ndarray:
        """The 112 x 112 aligned BGR crop."""
        return self.aligned.image

    @property
    def accepted(self) -> bool:
        """True when a quality gate ran and found nothing wrong."""
        return not self.reasons

    @property
    def label(self) -> str:
        """What to draw over the face: a name, "Unknown", "Ambiguous", MATCH/NO MATCH, or "" when not matched."""
        if self.verify is not None:
            return ("MATCH " if self.verify.match else "NO MATCH ") + self.verify.name
        if self.identify is not None:
            best = self.identify.best
            if self.identify.ambiguous:
                return "Ambiguous"
            return "Unknown" if self.identify.is_unknown or best is None else best.name
        return ""

    @property
    def score(self) -> float | None:
        if self.verify is not None:
            return self.verify.score
        if self.identify is not None and self.identify.best is not None:
            return self.identify.best.score
        return None


@dataclass
class LiveResult:
    """The answer for one processed frame."""

    frame: Frame
    faces: list[FaceResult]
    times: StageTimes
    fps: float = 0.0              # processed frames per second (recent average)
    dropped: int = 0              # frames dropped so far because processing was behind
    processed: int = 0            # frames processed so far
    fallback: bool = False        # the detector is a fallback (no 478-point landmarker)
    mode: str = "identify"
    liveness_prompt: str = ""     # the challenge's instruction to show on the video ("" when none)


def apply_thresholds(result: LiveResult, identify_threshold: float, verify_threshold: float,
                     ambiguity_margin: float | None = None) -> LiveResult:
    """The same result re-decided by the matcher under new thresholds (and ambiguity margin, else the one each
    answer was decided with): no inference, the scores are kept."""
    faces = []
    for fr in result.faces:
        identify = (redecide(fr.identify, identify_threshold, ambiguity_margin=ambiguity_margin)
                    if fr.identify is not None else None)
        verify = redecide(fr.verify, verify_threshold) if fr.verify is not None else None
        faces.append(replace(fr, identify=identify, verify=verify))
    return replace(result, faces=faces)


class GalleryMatcher:
    """``Matcher`` over a ``faceapp.services.gallery.Gallery`` (synced with the store, thread-safe).

    Live frames are not audited one by one (that would be ten rows a second); ``DecisionAuditor``
    writes one audit event each time the answer for the main face changes.
    """

    def __init__(self, gallery: Any, policy: str = "max") -> None:
        self.gallery = gallery
        self.policy = policy

    def identify(self, embedding: np.ndarray, top_k: int, threshold: float,
                 ambiguity_margin: float = 0.0) -> IdentifyDecision:
        return self.gallery.identify(embedding, top_k=top_k, threshold=threshold,
                                     ambiguity_margin=ambiguity_margin, audit=False)

    def verify(self, identity_id: int, embedding: np.ndarray, threshold: float) -> VerifyDecision:
        return self.gallery.verify(identity_id, embedding, policy=self.policy, threshold=threshold, audit=False)


class DecisionAuditor:
    """Appends an audit event when the live answer for the main face changes (identity, unknown,
    MATCH/NO MATCH, claimed identity or mode), so every decision shown can be explained later."""

    def __init__(self, store: Any, model_id: str, operator: str | None = None) -> None:
        self.store = store
        self.model_id = model_id
        self.operator = operator
        self._last: tuple[Any, ...] | None = None
        self.written = 0
        self.recent: deque[tuple[Any, np.ndarray]] = deque(maxlen=20)   # (AuditRecord, probe crop), newest last

    def observe(self, result: "LiveResult", thresholds_source: str | None = None, settings: Any = None) -> bool:
        """Audit ``result``'s main face if its decision (or its liveness state) differs from the last audited
        one; True if written. ``settings`` (LiveSettings): a withheld MATCH is audited "liveness-required"."""
        from faceapp.services.audit import decision_entry, withheld_entry
        from faceapp.services.live_liveness import withheld_by_liveness

        face = result.faces[0] if result.faces else None
        if face is None or (face.identify is None and face.verify is None):
            return False
        decision: VerifyDecision | IdentifyDecision
        if face.verify is not None:
            decision = face.verify
            key: tuple[Any, ...] = ("verify", decision.identity_id, decision.match)
        else:
            assert face.identify is not None
            decision = face.identify
            key = ("identify", decision.outcome, decision.identity_id)
        details: dict[str, Any] = {"source": "live", "frame": result.frame.source}
        withheld = withheld_by_liveness(face, settings) if settings is not None else None
        if face.liveness is not None:
            details["liveness"] = face.liveness.state.value
            key += (face.liveness.state,)
        if key == self._last:
            return False
        entry = decision_entry(decision, model_id=self.model_id, operator=self.operator,
                               thresholds_source=thresholds_source or "live", details=details)
        if withheld is not None:         # shown as "liveness required": audited as such, never as a match
            entry = withheld_entry(entry, withheld.state.value)
        record = self.store.audit.append(entry, queue_when_locked=True)
        self._last = key
        self.written += 1
        if record is not None:           # None: queued while the database is locked (no id yet; read back later)
            self.recent.append((record, face.crop.copy()))   # in memory only: the Live page's recent strip
        return True


class LivePipeline:
    """Processes one frame: faces, crops, embeddings, candidates and decisions, timed per stage.

    ``embedder`` and ``matcher`` may be None (detection only, e.g. no database or model): faces are
    still found and drawn, without names.
    """

    def __init__(self, pipeline: Any, embedder: Any = None, matcher: Matcher | None = None,
                 settings: LiveSettings | None = None, auditor: DecisionAuditor | None = None,
                 liveness: Any = None) -> None:
        self.pipeline = pipeline
        self.embedder = embedder
        self.matcher = matcher
        self.settings = settings or LiveSettings()
        self.auditor = auditor
        self.liveness = liveness            # a services.live_liveness.LiveLiveness, or None

    def process(self, frame: Frame, capture_ms: float = 0.0) -> tuple[list[FaceResult], StageTimes]:
        """Detect, align, embed and match the faces of ``frame``."""
        settings = self.settings
        times = StageTimes(capture_ms=capture_ms)
        t0 = time.perf_counter()
        timestamp = frame.timestamp_ms if getattr(self.pipeline, "mode", "image") == "video" else None
        aligned = self.pipeline.process(frame.image, timestamp)
        t1 = time.perf_counter()
        times.detect_ms = (t1 - t0) * 1000.0
        for a in aligned:
            a.source = a.source or frame.source
        results = [FaceResult(aligned=a) for a in aligned]
        gate = settings.quality_gate
        if gate is not None:
            for fr in results:
                fr.reasons = gate.check(fr.face)
                fr.hints = gate.hints(fr.face)
        mode = settings.mode
        matched = results[: max(0, settings.max_faces)]
        if mode != "detect" and self.embedder is not None and matched:
            vectors = self.embedder.embed([fr.crop for fr in matched])
            t2 = time.perf_counter()
            times.embed_ms = (t2 - t1) * 1000.0
            for fr, vector in zip(matched, vectors):
                fr.embedding = vector
            if self.matcher is not None:
                self._match(matched, settings)
            times.match_ms = (time.perf_counter() - t2) * 1000.0
        if self.liveness is not None:
            t3 = time.perf_counter()
            self.liveness.update(frame, results)
            times.liveness_ms = (time.perf_counter() - t3) * 1000.0
        times.total_ms = (time.perf_counter() - t0) * 1000.0
        return results, times

    def _match(self, faces: list[FaceResult], settings: LiveSettings) -> None:
        assert self.matcher is not None
        if settings.mode == "identify":
            for fr in faces:
                fr.identify = self.matcher.identify(fr.embedding, max(1, settings.top_k), settings.identify_threshold,
                                                    settings.ambiguity_margin)
                fr.candidates = fr.identify.candidates
        elif settings.mode == "verify" and settings.claimed_identity_id is not None:
            for fr in faces:
                fr.verify = self.matcher.verify(settings.claimed_identity_id, fr.embedding, settings.verify_threshold)
                fr.candidates = (Candidate(fr.verify.identity_id, fr.verify.name, fr.verify.score),)


class LatestSlot:
    """A one-item mailbox: ``put`` replaces what is there (counting the replaced item as dropped),
    ``take`` waits for an item. A producer error or end is delivered after the last item."""

    _END = object()

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._has = False
        self._final: Any = None      # _END or an exception
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._cond:
            if self._has:
                self.dropped += 1
            self._item, self._has = item, True
            self._cond.notify_all()

    def wait_empty(self, timeout_s: float) -> bool:
        """Block until the consumer took the item (no-drop mode); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._has or self._final is not None, timeout_s)

    def finish(self, error: BaseException | None = None) -> None:
        with self._cond:
            self._final = error if error is not None else self._END
            self._cond.notify_all()

    def take(self, timeout_s: float) -> tuple[Any, bool]:
        """(item, True), or (None, False) on timeout; raises the producer's error / StopIteration at the end."""
        with self._cond:
            self._cond.wait_for(lambda: self._has or self._final is not None, timeout_s)
            if self._has:
                item, self._item, self._has = self._item, None, False
                self._cond.notify_all()
                return item, True
            if self._final is self._END:
                raise StopIteration
            if self._final is not None:
                raise self._final
            return None, False


def is_still_source(source: Any) -> bool:
    """True for image-file sources, whose frames must each be processed (never dropped)."""
    return type(source).__name__ == "ImageFilesSource"


class LiveRunner:
    """Runs a ``FrameSource`` through a ``LivePipeline`` with a capture thread and frame dropping."""

    def __init__(self, source: Any, live: LivePipeline, *, drop_frames: bool | None = None,
                 fps_window: int = 30) -> None:
        self.source = source
        self.live = live
        self.drop_frames = (not is_still_source(source)) if drop_frames is None else drop_frames
        self._slot = LatestSlot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stamps: deque[float] = deque(maxlen=max(2, fps_window))
        self.processed = 0

    @property
    def dropped(self) -> int:
        return self._slot.dropped

    def _capture(self) -> None:
        try:
            iterator = iter(self.source)
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    frame = next(iterator)
                except StopIteration:
                    break
                self._slot.put((frame, (time.perf_counter() - t0) * 1000.0, time.perf_counter()))
                if not self.drop_frames:
                    while not self._stop.is_set() and not self._slot.wait_empty(0.1):
                        pass
            self._slot.finish()
        except FaceAppError as error:
            self._slot.finish(error)
        except Exception as error:  # noqa: BLE001 - a driver failure is a camera problem for the user
            log.debug("capture failed", exc_info=True)
            self._slot.finish(CameraError(f"{getattr(self.source, 'description', 'source')}: capture failed: {error}"))

    def start(self) -> None:
        """Start the capture thread (``results`` does it on first use)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._capture, name="faceapp-capture", daemon=True)
            self._thread.start()

    def results(self, cancel: CancelToken | None = None, *, idle_timeout_s: float = 0.25) -> Iterator[LiveResult]:
        """Processed frames until the source ends (normal return), fails (its error is raised, e.g.
        CameraError for an unplugged camera) or ``cancel`` is set (normal return)."""
        cancel = cancel or CancelToken()
        self.start()
        while not cancel.cancelled:
            try:
                item, ok = self._slot.take(idle_timeout_s)
            except StopIteration:
                return
            if not ok:
                continue
            frame, capture_ms, arrived = item
            faces, times = self.live.process(frame, capture_ms)
            now = time.perf_counter()
            times.latency_ms = (now - arrived) * 1000.0
            self._stamps.append(now)
            self.processed += 1
            fps = 0.0
            if len(self._stamps) >= 2 and self._stamps[-1] > self._stamps[0]:
                fps = (len(self._stamps) - 1) / (self._stamps[-1] - self._stamps[0])
            result = LiveResult(frame=frame, faces=faces, times=times, fps=fps, dropped=self.dropped,
                                processed=self.processed,
                                fallback=bool(getattr(self.live.pipeline, "fallback_active", False)),
                                mode=self.live.settings.mode,
                                liveness_prompt=getattr(self.live.liveness, "prompt", "") or "")
            if self.live.auditor is not None:
                try:
                    self.live.auditor.observe(result, self.live.settings.thresholds_source, self.live.settings)
                except FaceAppError as error:      # a locked database must not stop the live view
                    log.warning("live decision not audited: %s", error)
            yield result

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop capturing and release the source (joins the capture thread)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)   # it stops after the frame being read; then the source is idle
        try:
            self.source.close()
        except Exception:  # noqa: BLE001
            log.debug("closing the source failed", exc_info=True)

    def __enter__(self) -> "LiveRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
