"""The active challenge on real frames: blinks in a real video, still-photo replays, bad input never passes."""

from __future__ import annotations

import dataclasses
import itertools
import random
from pathlib import Path

import numpy as np
import pytest

from faceapp.capture.images import read_image
from faceapp.capture.sources import VideoFileSource
from faceapp.core.types import Frame
from faceapp.liveness.challenge import Action, Challenge, Outcome, Step, random_steps
from faceapp.liveness.signals import STILL_FACE_LIMITS, BlinkDetector, eye_closure, face_change
from faceapp.vision.pipeline import FacePipeline

from tests.liveness.conftest import nuaa_files

FIRST_BLINK_FRAMES = 130       # mahie_test_1: the first labelled blink is frames 93-96 (30 fps)


@pytest.fixture(scope="module")
def blink_clip(blink_videos: Path, mediapipe_models: Path) -> tuple[list[float], list[list]]:
    """Timestamps and faces of the first 130 frames of mahie_test_1 (one labelled blink)."""
    times, faces = [], []
    with FacePipeline("video", model_dir=mediapipe_models, fallback=False) as pipe, \
            VideoFileSource(blink_videos / "mahie_test_1.avi") as source:
        for frame in itertools.islice(source, FIRST_BLINK_FRAMES):
            times.append(frame.timestamp_ms)
            faces.append(pipe.detect(frame.image, frame.timestamp_ms))
    return times, faces


def _play(challenge: Challenge, times, faces, brightness=None):  # noqa: ANN001, ANN202
    for t, fs in zip(times, faces):
        if challenge.update(fs, t, brightness=brightness).done:
            break
    return challenge.end_of_input()


def test_the_blink_detector_finds_the_labelled_blink_and_no_other(blink_clip, blink_videos: Path) -> None:  # noqa: ANN001
    times, faces = blink_clip
    labels = np.loadtxt(blink_videos / "mahie_test_1_ideal.csv")[:FIRST_BLINK_FRAMES]
    closed = np.flatnonzero(labels)
    detector = BlinkDetector()
    for t, fs in zip(times, faces):
        detector.update(t, eye_closure(fs[0]), fs[0])
    assert len(detector.events) == 1 and not detector.voided      # a real blink: the face stayed still
    start = int(np.searchsorted(times, detector.events[0].start_ms))
    assert closed[0] - 2 <= start <= closed[-1]


def test_the_baseline_is_the_persons_own_not_a_fixed_level(blink_clip) -> None:  # noqa: ANN001
    """A person whose resting closure is higher (shifted +0.2, as a narrow-eyed face) still blinks once;
    a fixed threshold at the first person's blink level would see them blink all the time or never."""
    times, faces = blink_clip
    detector = BlinkDetector()
    for t, fs in zip(times, faces):
        detector.update(t, min(1.0, eye_closure(fs[0]) + 0.2))
    assert len(detector.events) == 1


def test_a_live_person_passes_a_blink_challenge(blink_clip) -> None:  # noqa: ANN001
    times, faces = blink_clip
    status = _play(Challenge([Step(Action.BLINK)]), times, faces)
    assert status.outcome is Outcome.PASSED


def test_the_blink_clip_does_not_pass_a_challenge_it_never_does(blink_clip) -> None:  # noqa: ANN001
    times, faces = blink_clip
    status = _play(Challenge([Step(Action.BLINK), Step(Action.TURN_LEFT, 20.0)]), times, faces)
    assert status.outcome is Outcome.FAILED and "step 2 of 2" in status.reason


def test_time_limit_fails_the_challenge(blink_clip) -> None:  # noqa: ANN001
    times, faces = blink_clip
    status = _play(Challenge([Step(Action.BLINK)], time_limit_ms=1000.0), times, faces)
    assert status.outcome is Outcome.FAILED and "time limit" in status.reason


@pytest.mark.parametrize("kind", ["print_still", "print_bend", "print_rotate"])
def test_a_still_photo_replayed_as_video_never_passes(kind: str, nuaa: Path, mediapipe_models: Path) -> None:
    frames = [Frame(read_image(p), i * 100.0, i) for i, p in enumerate(nuaa_files(nuaa, kind, "0001", 15))]
    rng = random.Random(kind)
    for steps in ((Step(Action.BLINK),), (Step(Action.SMILE),), random_steps(rng)):
        challenge = Challenge(steps)
        with FacePipeline("video", model_dir=mediapipe_models, fallback=False) as pipe:
            for frame in frames:
                challenge.update(pipe.detect(frame.image, frame.timestamp_ms), frame.timestamp_ms)
        assert challenge.end_of_input().outcome is not Outcome.PASSED, steps


@pytest.mark.parametrize("kind,subject", [("print_bend", "0005"), ("print_bend", "0008")])
def test_a_bent_print_replay_never_passes_a_blink_challenge(kind: str, subject: str, nuaa: Path,
                                                            mediapipe_models: Path) -> None:
    """Bending the print changes the apparent eye shape (the blendshapes read a blink) but the whole face
    changes with it: the closure is voided, the blink-only challenge is not passed."""
    frames = [Frame(read_image(p), i * 100.0, i) for i, p in enumerate(sorted((nuaa / kind / subject).glob("*.jpg")))]
    challenge = Challenge([Step(Action.BLINK)])
    with FacePipeline("video", model_dir=mediapipe_models, fallback=False) as pipe:
        for frame in frames:
            challenge.update(pipe.detect(frame.image, frame.timestamp_ms), frame.timestamp_ms)
    assert challenge.end_of_input().outcome is not Outcome.PASSED
    assert challenge.result().voided_blinks >= 1          # the eye closure was seen, and refused


def _bent(face, amount: float):  # noqa: ANN001, ANN202
    """The face's landmarks bent like a print folded about its vertical midline (y shifted by |x - centre|)."""
    xy = face.landmarks.copy()
    cx = float(np.median(xy[:, 0]))
    xy[:, 1] += amount * np.abs(xy[:, 0] - cx)
    return dataclasses.replace(face, landmarks=xy)


def test_a_real_blink_is_voided_when_the_whole_face_bends_with_it(blink_clip, blink_videos: Path) -> None:  # noqa: ANN001
    """The labelled blink of mahie_test_1 with the face's landmarks bent on its closed frames (as a bent
    print would show them) is not a blink; the same frames unbent are."""
    times, faces = blink_clip
    labels = np.loadtxt(blink_videos / "mahie_test_1_ideal.csv")[:FIRST_BLINK_FRAMES]
    still, bent = BlinkDetector(), BlinkDetector()
    for i, (t, fs) in enumerate(zip(times, faces)):
        face = fs[0]
        still.update(t, eye_closure(face), face)
        bent.update(t, eye_closure(face), _bent(face, 0.15) if labels[max(0, i - 2):i + 3].any() else face)
    assert len(still.events) == 1 and not still.voided
    assert not bent.events and len(bent.voided) == 1 and "face shape" in bent.voided[0].reason
    assert bent.voided[0].change.shape > STILL_FACE_LIMITS.shape


def test_face_change_ignores_moving_the_whole_image_but_not_bending_it(blink_clip) -> None:  # noqa: ANN001
    """Shift, scale and in-plane rotation of the landmarks are a person (or a print) moving: no shape change;
    a bend is a shape change far above the limit."""
    face = blink_clip[1][0][0]
    assert face_change(face, face).shape < 1e-9 and face_change(face, face).pose_deg == 0.0
    angle = np.deg2rad(10.0)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = face.landmarks.copy()
    moved[:, :2] = 1.2 * moved[:, :2] @ rot.T + np.array([30.0, -12.0])
    assert face_change(face, dataclasses.replace(face, landmarks=moved)).shape < 1e-6
    assert face_change(face, _bent(face, 0.15)).shape > STILL_FACE_LIMITS.shape
    assert face_change(face, dataclasses.replace(face, landmarks=None)) is None


def test_several_faces_make_it_not_checked(nuaa: Path, mediapipe_models: Path) -> None:
    a, b = (read_image(nuaa_files(nuaa, "live", s, 1)[0]) for s in ("0001", "0004"))
    both = np.hstack([a, b])
    challenge = Challenge([Step(Action.BLINK)])
    with FacePipeline("video", model_dir=mediapipe_models, fallback=False) as pipe:
        for i in range(5):
            status = challenge.update(pipe.detect(both, i * 33.0), i * 33.0)
    assert status.outcome is Outcome.NOT_CHECKED and "2 faces" in status.reason


def test_no_face_for_too_long_makes_it_not_checked(blink_clip) -> None:  # noqa: ANN001
    times, faces = blink_clip
    challenge = Challenge([Step(Action.BLINK)])
    for t in times[:20]:
        status = challenge.update([], t)
    assert status.outcome is Outcome.RUNNING           # 0.6 s without a face: still waiting
    for t in times[20:60]:
        status = challenge.update([], t)
    assert status.outcome is Outcome.NOT_CHECKED and "no face" in status.reason


def test_too_dark_makes_it_not_checked(blink_clip) -> None:  # noqa: ANN001
    times, faces = blink_clip
    status = _play(Challenge([Step(Action.BLINK)]), times, faces, brightness=12.0)
    assert status.outcome is Outcome.NOT_CHECKED and "too dark" in status.reason


def test_too_short_makes_it_not_checked(blink_clip) -> None:  # noqa: ANN001
    times, faces = blink_clip
    status = _play(Challenge([Step(Action.BLINK)]), times[:3], faces[:3])
    assert status.outcome is Outcome.NOT_CHECKED and "too short" in status.reason


def test_random_steps_vary_order_side_and_angle() -> None:
    draws = [random_steps(random.Random(seed)) for seed in range(40)]
    assert len({tuple(s.action for s in d) for d in draws}) > 3
    turns = [s for d in draws for s in d if s.action in (Action.TURN_LEFT, Action.TURN_RIGHT)]
    assert {s.action for s in turns} == {Action.TURN_LEFT, Action.TURN_RIGHT}
    assert all(15.0 <= s.degrees <= 25.0 for s in turns) and len({s.degrees for s in turns}) > 10
