"""The Enroll wizard's model without Qt: step 1's checks, image files checked with reasons, removing faces,
the review plan with its duplicate warning, the save in one transaction, and camera frames through the pose
collector, on a real Workstation (SQLite gallery, the default model, MediaPipe) with the work run at once."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from faceapp.app import WorkstationOptions, open_workstation
from faceapp.app.enroll import EnrollModel
from faceapp.app.events import run_now


@pytest.fixture
def workstation(tmp_path, mediapipe_models):  # noqa: ANN001, ANN201
    ws = open_workstation(WorkstationOptions(db=str(tmp_path / "g.db"), mediapipe_dir=mediapipe_models,
                                             device="cpu", operator="desk-1"), load=True)
    yield ws
    ws.close()


@pytest.fixture(autouse=True)
def _close_models():  # noqa: ANN202
    """Close every model's enrolment service (its MediaPipe pipeline) at the end of the test."""
    yield
    while MODELS:
        MODELS.pop().close()


MODELS: list[EnrollModel] = []


def _model(session) -> EnrollModel:  # noqa: ANN001
    model = EnrollModel(session)
    MODELS.append(model)
    model.events = []
    for name in ("ready_changed", "sample_added", "samples_removed", "samples_cleared", "rejected_added",
                 "hint_changed", "busy_changed", "plan_ready", "saved", "message", "error", "gallery_changed"):
        getattr(model, name).connect(lambda *args, name=name: model.events.append((name, *args)))
    return model


def _names(model: EnrollModel, event: str) -> list:
    return [e for e in model.events if e[0] == event]


def test_without_services_enrolment_is_unavailable():
    model = _model(SimpleNamespace(store=None, embedder=None, gallery=None, loading=False))
    model.services_changed()
    assert not model.ready and ("ready_changed", False) in model.events
    assert model.availability_text().startswith("Enrolment needs the database")
    assert not model.add_files(["x.jpg"]) and _names(model, "message")[-1][1] == "warning"


def test_step_one_needs_a_name_and_consent_for_a_new_person(workstation):
    model = _model(workstation)
    model.services_changed()
    assert model.ready and model.availability_text() == ""
    assert model.person_problem("  ", True) == "Enter the person's name."
    assert model.person_problem("Ada", False).startswith("Enrolment needs the person's consent")
    assert model.person_problem("Ada  Lovelace", True) is None
    new = model.identity(" Ada  Lovelace ", " X-1 ", "", True)
    assert (new.name, new.external_id, new.notes) == ("Ada Lovelace", "X-1", None) and new.consent_at is not None
    model.start_for_existing(7, "Bob")
    assert model.person_problem("", False) is None and model.identity("ignored") == 7


def test_files_checked_then_reviewed_saved_and_flagged_as_duplicates(workstation, att, tmp_path):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    model = _model(workstation)
    model.services_changed()
    photos = [att / "s2" / f"{i}.pgm" for i in (1, 2, 3)]
    assert model.add_files([*photos, blank])
    assert len(model.samples) == 3 and [r[0] for r in model.rejected] == [str(blank)]
    assert "no face" in model.rejected[0][1] and _names(model, "message")[-1][1] == "warning"
    assert [e[1:] for e in _names(model, "busy_changed")][-1] == (False, "", 0) and not model.busy
    model.remove_samples([2])
    assert len(model.samples) == 2 and ("samples_removed", [2]) in model.events
    assert model.count_text().startswith("Accepted faces: 2") and model.can_prepare
    model.prepare(model.identity("Ada", consent=True))
    plan = model.plan
    assert len(plan.accepted) == 2 and model.duplicate_text(plan) == ""
    assert model.review_heading(plan, "Ada") == "Ada: 2 face(s) will be saved as a new identity"
    assert model.refused(plan) == model.rejected
    model.save()
    info = workstation.store.identities.get("Ada")
    assert info.template_count == 2 and model.plan is None and model.samples == []
    assert _names(model, "saved") and _names(model, "gallery_changed")
    assert model.done_text(model.last_result).startswith("Enrolled Ada: 2 template(s) saved")

    model.reset()                                             # the same person under another name
    model.add_files([att / "s2" / "4.pgm"])
    model.prepare(model.identity("Bob", consent=True))
    assert "Ada" in model.duplicate_text(model.plan)


def test_photos_of_different_people_are_refused_unless_the_operator_allows_it(workstation, celeba):
    model = _model(workstation)
    model.services_changed()
    people = sorted(p for p in celeba.iterdir() if p.is_dir())[:3]
    assert model.add_files([sorted(person.glob("*.jpg"))[0] for person in people]) and len(model.samples) == 3
    errors = []
    model.run = lambda job, *args, on_error=None, **kwargs: run_now(job, *args, on_error=errors.append, **kwargs)
    model.prepare(model.identity("Mixed", consent=True))
    assert model.plan is None and "do not look like one person" in str(errors[-1])
    model.allow_different = True
    model.prepare(model.identity("Mixed", consent=True))
    assert model.plan is not None and len(model.plan.groups) == 3


def test_camera_frames_go_through_the_pose_collector(workstation):
    model = _model(workstation)
    model.services_changed()
    rejected = SimpleNamespace(reasons=["too small"], hints=["move closer"], face=None, aligned=None)
    frame = SimpleNamespace(timestamp_ms=0.0, source="camera:0", index=1)
    model.offer(SimpleNamespace(faces=[rejected], frame=frame))
    assert model.samples == [] and model.hint_history and _names(model, "hint_changed")[-1][2] == "verdict-nomatch"
    model.camera_ended("end of the source")
    assert model.hint == "The source ended (0 face(s) kept)"


def test_prepare_without_faces_says_so(workstation):
    model = _model(workstation)
    model.services_changed()
    model.prepare(model.identity("Ada", consent=True))
    assert model.plan is None and _names(model, "message")[-1][2].startswith("No accepted face yet")


def _soft_face(att, tmp_path):  # noqa: ANN001, ANN202
    """An AT&T photo, padded and softened with a 3x3 blur: it passes the gate at quality about 0.08."""
    from faceapp.capture.images import read_image

    image = cv2.copyMakeBorder(read_image(att / "s2" / "1.pgm"), 60, 60, 60, 60, cv2.BORDER_REPLICATE)
    path = tmp_path / "soft.png"
    cv2.imwrite(str(path), cv2.GaussianBlur(image, (3, 3), 0))
    return path


def test_checking_files_can_be_cancelled_and_keeps_what_was_checked(workstation, att):
    model = _model(workstation)
    model.services_changed()
    model.progress.connect(lambda _event: model.cancel_check())       # the operator presses Cancel at once
    photos = [att / "s3" / f"{i}.pgm" for i in (1, 2, 3, 4)]
    assert model.add_files(photos)
    assert len(model.samples) == 1 and not model.checking and not model.busy
    assert _names(model, "message")[-1][2].startswith("Checking stopped: 1 of 4 image(s) checked")


def test_low_quality_faces_are_flagged_not_silently_accepted(workstation, att, tmp_path):
    model = _model(workstation)
    model.services_changed()
    assert model.add_files([_soft_face(att, tmp_path), att / "s2" / "2.pgm"])
    assert len(model.samples) == 2
    soft, sharp = model.samples
    assert model.sample_warnings(soft) and "low quality" in model.sample_warnings(soft)[0]
    assert model.sample_warnings(sharp) == ()
    model.prepare(model.identity("Ada", consent=True))
    flagged = [c for c in model.plan.accepted if c.warnings]
    assert len(flagged) == 1 and flagged[0].quality < model.service.gate.warn_quality
    assert model.low_quality_text(model.plan).startswith("1 of 2 face(s) have low quality")


def test_a_duplicate_needs_confirmation_and_removing_its_face_on_review_clears_it(workstation, att):
    model = _model(workstation)
    model.services_changed()
    model.add_files([att / "s2" / f"{i}.pgm" for i in (1, 2, 3)])
    model.prepare(model.identity("Ada", consent=True))
    assert model.save_confirmation(model.plan) is None
    model.save()
    model.reset()                                             # Ada again under another name, plus someone else
    model.add_files([att / "s2" / "4.pgm", att / "s7" / "1.pgm"])
    model.allow_different = True       # two people in one plan: the agreement check would refuse it first
    model.prepare(model.identity("Bob", consent=True))
    question = model.save_confirmation(model.plan)
    assert question is not None and "Ada" in question and "Save anyway?" in question
    assert model.duplicate_text(model.plan).startswith("Possible duplicate")
    model.remove_planned([0])                                 # the face that matched Ada
    assert len(model.plan.accepted) == 1 and len(model.samples) == 1
    assert model.plan.duplicates == [] and model.save_confirmation(model.plan) is None
    model.save()
    assert workstation.store.identities.get("Bob").template_count == 1
