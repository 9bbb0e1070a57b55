"""Choosing enrolment frames: real faces through the real pipeline and quality gate, frame times given."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.services.enroll_capture import POSE_PROMPTS, PoseCollector
from faceapp.services.live import FaceResult
from faceapp.vision.quality import QualityGate


@pytest.fixture(scope="module")
def faces(pipeline, att_image):  # noqa: ANN001, ANN201
    """``faces(subject, number)`` -> [FaceResult] with the default gate's reasons and hints."""
    gate = QualityGate()

    def make(subject: int, number: int, image: np.ndarray | None = None) -> list[FaceResult]:
        aligned = pipeline.process(att_image(subject, number) if image is None else image)
        return [FaceResult(aligned=a, reasons=gate.check(a.face), hints=gate.hints(a.face)) for a in aligned]

    return make


def _pose(results: list[FaceResult]) -> tuple[float, float]:
    q = results[0].face.quality
    return q.yaw, q.pitch


def test_keeps_diverse_poses_at_intervals_until_the_target(faces):
    collector = PoseCollector(target=3, min_pose_delta=4.0, min_interval_ms=400, patience_ms=10_000)
    frames = [faces(5, n) for n in range(1, 11)]
    assert collector.prompt == POSE_PROMPTS[0]
    offers = [collector.offer(f, t * 500.0) for t, f in enumerate(frames)]
    kept_at = [i for i, o in enumerate(offers) if o.kept]
    assert len(collector.kept) == 3 and collector.done and not collector.relaxed
    poses = [_pose(frames[i]) for i in kept_at]
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.hypot(poses[a][0] - poses[b][0], poses[a][1] - poses[b][1]) >= 4.0
    assert offers[-1].message == "done: thank you" and not offers[-1].kept


def test_same_pose_waits_for_patience_then_relaxes(faces):
    same = faces(1, 1)
    collector = PoseCollector(target=2, min_interval_ms=400, patience_ms=2000)
    assert collector.offer(same, 0.0).kept
    assert not collector.offer(same, 300.0).kept              # too soon
    waiting = collector.offer(same, 1000.0)
    assert not waiting.kept and waiting.message == POSE_PROMPTS[1]
    assert collector.offer(same, 2100.0).kept and collector.relaxed


def test_rejections_give_reasons_and_hints(faces, att_image):
    collector = PoseCollector()
    assert collector.offer([], 0.0).message == "look at the camera"
    two = np.hstack([att_image(1, 1), att_image(2, 1)])
    both = faces(0, 0, two)
    assert len(both) == 2 and collector.offer(both, 10.0).message == "only one person in view"
    dark = faces(0, 0, (att_image(1, 1) * 0.15).astype(np.uint8))
    assert len(dark) == 1, "MediaPipe still finds the darkened face; the gate must refuse it"
    offer = collector.offer(dark, 20.0)
    assert not offer.kept and any("too dark" in r for r in offer.reasons) and offer.message == "too dark"
    assert collector.kept == [] and collector.frames_seen == 3 and collector.frames_rejected == 1


def test_remove_and_reset(faces):
    collector = PoseCollector(target=5, min_interval_ms=0, patience_ms=0)
    for t in range(3):
        collector.offer(faces(5, t + 1), float(t))
    assert len(collector.kept) == 3
    collector.remove(0)
    assert len(collector.kept) == len(collector.poses) == 2
    collector.reset()
    assert collector.kept == [] and collector.frames_seen == 0
