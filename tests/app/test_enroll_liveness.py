"""The Enroll wizard's model when a passed liveness challenge is required: the save is refused without one
(image files alone cannot pass it), the camera loop prompts on the real blink video through MediaPipe, a
challenge not followed fails and is audited "enroll-liveness", and a passed one lets the save through."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from faceapp.app.enroll import CHALLENGE_NEEDED
from faceapp.core.types import Frame
from faceapp.liveness.challenge import Action, ChallengeResult, Outcome, Step
from faceapp.liveness.policy import LivenessMode, decide
from faceapp.services.live import FaceResult, LiveResult, StageTimes
from tests.app.test_enroll import _close_models, _model, _names, workstation  # noqa: F401 - fixtures


def _blink_frames(datasets: Path, count: int) -> list[Frame]:
    capture = cv2.VideoCapture(str(datasets / "blink_videos" / "mahie_test_1.avi"))
    frames = []
    while len(frames) < count:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(Frame(image, 33.3 * len(frames), len(frames), "camera:test"))
    capture.release()
    return frames


def test_save_needs_a_passed_challenge_when_required(workstation, att, datasets) -> None:  # noqa: ANN001, F811
    model = _model(workstation)
    changes = []
    model.liveness_changed.connect(lambda text, passed: changes.append((text, passed)))
    model.services_changed()
    model.set_require_challenge(True)
    assert changes[-1] == (CHALLENGE_NEEDED, False)
    model.add_files([att / "s2" / f"{i}.pgm" for i in (1, 2, 3)])
    model.prepare(model.identity("Ada", consent=True))
    model.save()
    assert _names(model, "message")[-1][1:] == ("warning", CHALLENGE_NEEDED)
    assert not workstation.store.identities.list() and model.plan is not None      # nothing written, nothing lost

    live = model.make_live()                      # the camera loop: detection, quality gate and the challenge
    model.liveness.time_limit_ms = 1_000.0        # a person who does not follow the prompts within 1 s
    for frame in _blink_frames(datasets, 45):
        faces, times = live.process(frame)
        model.offer(LiveResult(frame, faces, times, liveness_prompt=model.liveness.prompt))
    prompts = [text for text, _ in changes]
    assert any(p.split(" (")[0] in ("Blink", "Smile") or p.startswith("Turn your head") for p in prompts)
    assert not model.challenge_passed and changes[-1] == ("Challenge failed", False)
    audited = workstation.store.audit.query(operation="enroll-liveness")
    assert [r.decision for r in audited] == ["attack suspected"]
    model.save()
    assert not workstation.store.identities.list()

    passed = decide(LivenessMode.CHALLENGE, challenge=ChallengeResult(Outcome.PASSED, (Step(Action.BLINK),), 1,
                                                                      "all 1 steps done", 900.0, 27))
    aligned = live.pipeline.process(_blink_frames(datasets, 1)[0].image)[0]
    model.offer(LiveResult(Frame(np.zeros((4, 4, 3), np.uint8), 0.0), [FaceResult(aligned, liveness=passed)],
                           StageTimes()))
    assert model.challenge_passed and changes[-1] == ("Liveness challenge passed", True)
    model.save()
    assert workstation.store.identities.get("Ada").template_count >= 3
    assert not model.challenge_passed                                 # the next person must pass their own
