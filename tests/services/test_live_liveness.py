"""Liveness in the live loop on real NUAA frames played as a stream through the real MediaPipe video
pipeline and the real MiniFASNet pair: the state per face, the cost bound (passive scoring at most every N
frames per tracked face), the challenge prompt, the audit entries and a MATCH withheld when liveness is
required."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from faceapp.capture.images import read_image
from faceapp.core.types import Frame, VerifyDecision
from faceapp.liveness.check import LivenessChecker
from faceapp.liveness.policy import LivenessState
from faceapp.services.live import DecisionAuditor, LivePipeline, LiveResult, LiveSettings, StageTimes
from faceapp.services.live_liveness import LiveLiveness, box_iou, withheld_by_liveness
from faceapp.storage import NewIdentity, Store
from tests.app.gallery_data import MODEL, samples
from faceapp.vision.pipeline import FacePipeline

FRAMES = 24                                # NUAA sessions: 40 live frames, 15 per attack kind per subject


@pytest.fixture(scope="module")
def video_pipeline(mediapipe_models: Path) -> Iterator[FacePipeline]:
    with FacePipeline("video", model_dir=mediapipe_models, fallback=False) as pipe:
        yield pipe


@pytest.fixture(scope="module")
def checker() -> LivenessChecker:
    return LivenessChecker("off")          # the mode is set per stream from the settings


def _stream(datasets: Path, kind: str, subject: str = "0001", start_ms: float = 0.0) -> list[Frame]:
    files = sorted((datasets / "nuaa_pad" / kind / subject).glob("*.jpg"))[:FRAMES]
    return [Frame(read_image(f), start_ms + 33.0 * i, i, str(f)) for i, f in enumerate(files)]


def _play(frames: list[Frame], live: LivePipeline) -> list:
    return [live.process(frame)[0] for frame in frames]


@pytest.mark.slow
def test_printed_photo_is_attack_live_face_is_live_scored_every_nth_frame_and_audited(
        datasets, video_pipeline, checker, tmp_path) -> None:  # noqa: ANN001
    settings = LiveSettings(mode="detect", liveness_mode="passive")
    with Store(tmp_path / "gallery.db") as store:
        liveness = LiveLiveness(settings, checker, store=store, operator="desk-1", passive_every=10)
        live = LivePipeline(video_pipeline, settings=settings, liveness=liveness)
        attack = _play(_stream(datasets, "print_still"), live)
        assert attack[-1][0].liveness.state is LivenessState.ATTACK
        assert liveness.tracks == 1
        assert liveness.scored == 2                                         # frames 1 and 11 of 15, not every frame
        live_faces = _play(_stream(datasets, "live", start_ms=10_000.0), live)
        assert live_faces[-1][0].liveness.state is LivenessState.LIVE
        assert liveness.tracks == 2                                         # the new person: new track, new scores
        records = store.audit.query(operation="liveness")
        states = sorted(r.decision for r in records)
        assert states == ["attack suspected", "live"]                       # one entry per decision, not per frame
        assert all(r.details["source"] == "live" and r.model_id.startswith("pad:") for r in records)


@pytest.mark.slow
def test_challenge_prompts_on_the_video_and_a_still_photo_never_passes(datasets, video_pipeline, checker) -> None:  # noqa: ANN001
    settings = LiveSettings(mode="detect", liveness_mode="challenge")
    liveness = LiveLiveness(settings, checker, time_limit_ms=250.0)
    live = LivePipeline(video_pipeline, settings=settings, liveness=liveness)
    frames = _stream(datasets, "print_still", start_ms=20_000.0)
    first = _play(frames[:3], live)
    assert first[-1][0].liveness.state is LivenessState.NOT_CHECKED           # running: not yet a decision
    assert liveness.prompt and liveness.prompt[0].isupper() and "/3" in liveness.prompt
    last = _play(frames[3:], live)                                             # 0.25 s limit passes without a blink
    assert last[-1][0].liveness.state is LivenessState.ATTACK
    assert liveness.prompt == "Challenge failed"
    liveness.restart_challenge()
    _play(frames[:1], live)
    assert liveness.prompt != "Challenge failed"                               # a fresh challenge is running
    settings.liveness_mode = "off"
    off = _play(frames[:1], live)
    assert off[0][0].liveness is None and liveness.prompt == ""


def test_a_match_of_a_face_not_live_is_withheld_and_audited_so(tmp_path) -> None:  # noqa: ANN001
    from types import SimpleNamespace

    import numpy as np

    from faceapp.liveness.policy import LivenessMode, decide
    from faceapp.services.live import FaceResult

    settings = LiveSettings(mode="verify", liveness_mode="passive", require_liveness=True)
    aligned = SimpleNamespace(image=np.zeros((112, 112, 3), np.uint8), face=None)
    match = VerifyDecision(1, "s1", 0.8, 0.5, True, "max")
    attack = decide(LivenessMode.PASSIVE, problem="no PAD weights")
    face = FaceResult(aligned, verify=match, liveness=attack)
    assert withheld_by_liveness(face, settings) is attack
    assert withheld_by_liveness(FaceResult(aligned, verify=match), settings).state is LivenessState.NOT_CHECKED
    settings.require_liveness = False
    assert withheld_by_liveness(face, settings) is None
    settings.require_liveness = True
    with Store(tmp_path / "gallery.db") as store:
        store.templates.enroll(NewIdentity("s1"), samples(1, 1), MODEL)
        auditor = DecisionAuditor(store, MODEL.model_id, "desk-1")
        result = LiveResult(Frame(np.zeros((4, 4, 3), np.uint8), 0.0), [face], StageTimes())
        assert auditor.observe(result, "test", settings)
        record = store.audit.query(operation="verify")[0]
        assert record.decision == "liveness-required" and record.details["liveness"] == "not checked"


def test_box_iou() -> None:
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


def test_an_ambiguous_answer_is_not_withheld_and_is_audited_ambiguous(tmp_path) -> None:  # noqa: ANN001
    """Ambiguous names nobody: required liveness has nothing to withhold, the audit says what the panel says."""
    from types import SimpleNamespace

    import numpy as np

    from faceapp.core.types import Candidate, IdentifyDecision
    from faceapp.liveness.policy import LivenessMode, decide
    from faceapp.services.live import FaceResult

    settings = LiveSettings(mode="identify", liveness_mode="passive", require_liveness=True)
    aligned = SimpleNamespace(image=np.zeros((112, 112, 3), np.uint8), face=None)
    ambiguous = IdentifyDecision((Candidate(1, "s1", 0.80), Candidate(2, "s2", 0.79)), 0.5, None,
                                 ambiguous=True, ambiguity_margin=0.05)
    attack = decide(LivenessMode.PASSIVE, problem="no PAD weights")
    face = FaceResult(aligned, identify=ambiguous, liveness=attack)
    assert withheld_by_liveness(face, settings) is None
    with Store(tmp_path / "gallery.db") as store:
        store.templates.enroll(NewIdentity("s1"), samples(1, 1), MODEL)
        auditor = DecisionAuditor(store, MODEL.model_id, "desk-1")
        result = LiveResult(Frame(np.zeros((4, 4, 3), np.uint8), 0.0), [face], StageTimes())
        assert auditor.observe(result, "test", settings)
        record = store.audit.query(operation="identify")[0]
        assert record.decision == "ambiguous"


def test_live_decisions_and_liveness_are_queued_not_lost_while_the_database_is_locked(tmp_path) -> None:  # noqa: ANN001
    """Another program holds the write lock: the live decision and its liveness decision are queued (not
    dropped), the recent strip gets no record without an id, and both reach the table once the lock is gone."""
    import sqlite3
    from types import SimpleNamespace

    import numpy as np

    from faceapp.services.live import FaceResult

    with Store(tmp_path / "gallery.db") as setup:
        setup.templates.enroll(NewIdentity("s1"), samples(1, 1), MODEL)
    settings = LiveSettings(mode="verify", liveness_mode="passive")
    with Store(tmp_path / "gallery.db", busy_timeout_s=0.2) as store:
        checker = LivenessChecker("off")
        liveness = LiveLiveness(settings, checker, store=store, operator="desk-1")
        auditor = DecisionAuditor(store, MODEL.model_id, "desk-1")
        frame = Frame(np.zeros((64, 64, 3), np.uint8), 0.0, 0, "cam")
        aligned = SimpleNamespace(image=np.zeros((112, 112, 3), np.uint8), face=SimpleNamespace(box=(8, 8, 40, 40)))
        face = FaceResult(aligned, verify=VerifyDecision(1, "s1", 0.8, 0.5, True, "max"))
        other = sqlite3.connect(tmp_path / "gallery.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            assert liveness.update(frame, [face]) is not None    # a decision (a black frame: not live)
            assert auditor.observe(LiveResult(frame, [face], StageTimes()), "test", settings)
            assert store.audit.pending() == 2                      # both queued durably
            assert all(record is not None for record, _crop in auditor.recent)
        finally:
            other.rollback()
            other.close()
        assert store.audit.flush_queue() == 2
        assert sorted(r.operation for r in store.audit.query()) == ["enroll", "liveness", "verify"]
