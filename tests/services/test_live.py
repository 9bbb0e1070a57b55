"""The headless live pipeline on real videos built from dataset photos: frame dropping, still images,
identify / verify against a real SQLite gallery, threshold re-decisions, audit on change, camera failure.

Recognition with the untrained default model is weak, so the known person is enrolled from frames of the
very video used as the camera (score close to 1.0) and the stranger comes from another dataset (CFP vs
AT&T); the identify threshold is set to 0.9, between the two (see docs/gui.md, "Tests").
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from faceapp.capture.images import read_image
from faceapp.capture.sources import ImageFilesSource, VideoFileSource, open_source
from faceapp.capture.synthetic import face_video_frames, write_video
from faceapp.core.errors import CameraError
from faceapp.core.progress import CancelToken, run_to_completion
from faceapp.embedding import Embedder
from faceapp.services.enrollment import EnrollmentService
from faceapp.services.gallery import Gallery, model_spec
from faceapp.services.live import (
    DecisionAuditor, GalleryMatcher, LatestSlot, LivePipeline, LiveRunner, LiveSettings, apply_thresholds,
)
from faceapp.storage import NewIdentity, Store
from faceapp.vision.pipeline import FacePipeline
from faceapp.vision.quality import QualityGate

THRESHOLD = 0.9


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory, att: Path, cfp: Path) -> dict[str, Path]:
    """640x480 MJPG videos: AT&T s1 (the known person) and a CFP stranger, 40 frames each."""
    root = tmp_path_factory.mktemp("live-videos")
    known = read_image(att / "s1" / "1.pgm")
    stranger = read_image(cfp / "Data" / "Images" / "001" / "frontal" / "01.jpg")
    return {
        "known": write_video(face_video_frames(known, 40, motion_px=4), root / "known.avi", 25),
        "stranger": write_video(face_video_frames(stranger, 40, motion_px=4), root / "stranger.avi", 25),
    }


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder.load(device="cpu")


@pytest.fixture(scope="module")
def video_pipeline(mediapipe_models: Path) -> FacePipeline:
    with FacePipeline("video", model_dir=mediapipe_models) as opened:
        yield opened


@pytest.fixture
def gallery(tmp_path: Path, embedder: Embedder, pipeline: FacePipeline, videos: dict[str, Path], att: Path) -> Gallery:
    """A store with "s1" enrolled from 5 frames of the known video and "s2" from AT&T photos."""
    with Store(tmp_path / "live.db") as store:
        service = EnrollmentService(store, embedder, pipeline=pipeline, operator="tester")
        with VideoFileSource(videos["known"]) as source:
            frames = [f.image for f in source][::8]
        run_to_completion(service.enroll(NewIdentity("s1"), frames))
        run_to_completion(service.enroll(NewIdentity("s2"), [att / "s2" / f"{i}.pgm" for i in (1, 2, 3)]))
        gallery = Gallery(store, model_spec(embedder), embedder.card, operator="tester")
        gallery.save_thresholds(verify=THRESHOLD, identify=THRESHOLD, source="test")
        yield gallery


def _run(path: Path, live: LivePipeline, **kwargs) -> list:
    with LiveRunner(open_source(path), live, **kwargs) as runner:
        return list(runner.results(CancelToken()))


def test_latest_slot_drops_old_items_and_delivers_the_end_after_the_last():
    slot = LatestSlot()
    for i in range(5):
        slot.put(i)
    slot.finish()
    assert slot.take(0.1) == (4, True) and slot.dropped == 4
    with pytest.raises(StopIteration):
        slot.take(0.1)
    failing = LatestSlot()
    failing.put("last frame")
    failing.finish(CameraError("camera 0 stopped delivering frames (unplugged?)"))
    assert failing.take(0.1) == ("last frame", True)
    with pytest.raises(CameraError, match="unplugged"):
        failing.take(0.1)
    assert LatestSlot().take(0.01) == (None, False)


def test_frames_are_dropped_not_queued_and_the_newest_frame_wins(videos, video_pipeline):
    """While a frame is processed the capture thread keeps reading: the frames it replaces are dropped, not
    queued. The first frame is held until 5 have been replaced (counted, so a loaded machine cannot let
    processing keep pace with the file and drop nothing)."""
    live = LivePipeline(video_pipeline, settings=LiveSettings(mode="detect"))
    process = live.process
    with LiveRunner(open_source(videos["known"]), live) as runner:
        def held_process(*args, **kwargs):
            for _ in range(3000 if runner.processed == 0 else 0):   # a bound on the wait (30 s), not a measurement
                if runner.dropped >= 5:
                    break
                time.sleep(0.01)
            return process(*args, **kwargs)

        live.process = held_process
        results = list(runner.results(CancelToken()))
    last = results[-1]
    assert 1 <= len(results) <= 35 and last.dropped >= 5
    assert last.processed + last.dropped == 40
    assert last.frame.index == 39, "the newest frame must be the one processed at the end"
    indices = [r.frame.index for r in results]
    assert indices == sorted(set(indices))
    assert all(len(r.faces) == 1 for r in results)
    t = last.times
    assert t.detect_ms > 0 and t.total_ms >= t.detect_ms and t.embed_ms == 0.0 and t.latency_ms >= t.total_ms


def test_still_images_are_each_processed(att, pipeline, embedder):
    paths = [att / "s3" / f"{i}.pgm" for i in (1, 2, 3)]
    live = LivePipeline(pipeline, embedder, settings=LiveSettings(mode="identify", quality_gate=QualityGate()))
    with LiveRunner(ImageFilesSource(paths), live) as runner:
        results = list(runner.results())
    assert [r.frame.source for r in results] == [str(p) for p in paths]
    assert all(r.dropped == 0 and len(r.faces) == 1 for r in results)
    face = results[0].faces[0]
    assert face.embedding is not None and face.embedding.shape == (embedder.dim,)
    assert face.crop.shape == (112, 112, 3) and face.identify is None and face.label == ""
    assert isinstance(face.reasons, list) and isinstance(face.hints, list)


def test_identify_names_the_enrolled_person_and_calls_a_stranger_unknown(videos, video_pipeline, embedder, gallery):
    settings = LiveSettings(mode="identify", identify_threshold=gallery.thresholds().identify, top_k=2)
    live = LivePipeline(video_pipeline, embedder, GalleryMatcher(gallery), settings)
    known = _run(videos["known"], live)[-1].faces[0]
    assert known.label == "s1" and known.identify.identity_id is not None
    assert known.score > THRESHOLD and [c.name for c in known.candidates] == ["s1", "s2"]
    stranger = _run(videos["stranger"], live)[-1].faces[0]
    assert stranger.label == "Unknown" and stranger.identify.is_unknown
    assert stranger.score < THRESHOLD, f"stranger scored {stranger.score:.3f}"
    print(f"known {known.score:.3f} stranger {stranger.score:.3f}")


def test_verify_verdict_follows_the_threshold_without_new_inference(videos, video_pipeline, embedder, gallery):
    s1 = gallery.store.identities.get("s1")
    settings = LiveSettings(mode="verify", verify_threshold=THRESHOLD, claimed_identity_id=s1.id)
    live = LivePipeline(video_pipeline, embedder, GalleryMatcher(gallery), settings)
    result = _run(videos["known"], live)[-1]
    verdict = result.faces[0].verify
    assert verdict.match and verdict.name == "s1" and result.faces[0].label == "MATCH s1"
    stricter = apply_thresholds(result, identify_threshold=THRESHOLD, verify_threshold=min(1.0, verdict.score + 1e-4))
    assert not stricter.faces[0].verify.match and stricter.faces[0].verify.score == verdict.score
    assert stricter.faces[0].label == "NO MATCH s1"
    looser = apply_thresholds(stricter, identify_threshold=THRESHOLD, verify_threshold=verdict.score)
    assert looser.faces[0].verify.match


def test_auditor_writes_one_event_per_change_of_answer(videos, video_pipeline, embedder, gallery):
    store = gallery.store
    before = len(store.audit.query(operation="identify"))
    auditor = DecisionAuditor(store, embedder.model_id, operator="tester")
    live = LivePipeline(video_pipeline, embedder, GalleryMatcher(gallery),
                        LiveSettings(mode="identify", identify_threshold=THRESHOLD), auditor=auditor)
    _run(videos["known"], live)
    _run(videos["known"], live)
    _run(videos["stranger"], live)
    events = store.audit.query(operation="identify")[before:]
    assert [e.decision for e in events] == ["identified", "unknown"]
    assert events[0].identity_name == "s1" and events[0].details["source"] == "live"
    assert events[1].identity_id is None and auditor.written == 2


class _UnpluggedCamera(VideoFileSource):
    """A real video that fails like a webcam pulled out after ``frames`` frames."""

    def __init__(self, path: Path, frames: int) -> None:
        super().__init__(path)
        self.frames = frames
        self.description = "camera:0"

    def __iter__(self):
        for frame in super().__iter__():
            if frame.index >= self.frames:
                raise CameraError("camera 0 stopped delivering frames (unplugged?)")
            yield frame


def test_an_unplugged_camera_raises_after_the_frames_it_gave(videos, video_pipeline):
    live = LivePipeline(video_pipeline, settings=LiveSettings(mode="detect"))
    seen: list[int] = []
    with LiveRunner(_UnpluggedCamera(videos["known"], 5), live, drop_frames=False) as runner:
        with pytest.raises(CameraError, match="unplugged"):
            for result in runner.results():
                seen.append(result.frame.index)
    assert seen == [0, 1, 2, 3, 4]


def test_cancel_stops_an_endless_source(videos, video_pipeline):
    live = LivePipeline(video_pipeline, settings=LiveSettings(mode="detect"))
    cancel = CancelToken()
    count = 0
    with LiveRunner(open_source(videos["known"], loop=True), live) as runner:
        for _ in runner.results(cancel):
            count += 1
            if count == 3:
                cancel.cancel()
    assert count == 3
