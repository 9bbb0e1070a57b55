"""Enrolment through the real pipeline, quality gate and embedder into a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceapp.core.errors import CancelledError, NoFaceError, NotFoundError, QualityError
from faceapp.core.progress import CancelToken, run_to_completion
from faceapp.services.enrollment import EnrollmentService
from faceapp.storage import NameInUseError, NewIdentity, Store


def _service(store: Store, embedder, pipeline, **kwargs) -> EnrollmentService:
    return EnrollmentService(store, embedder, pipeline=pipeline, operator="tester", **kwargs)


def test_enrols_several_images_with_crops_templates_and_audit(store, tiny_embedder, pipeline, att) -> None:
    images = [att / "s1" / f"{i}.pgm" for i in (1, 2, 3)]
    events = []
    result = run_to_completion(_service(store, tiny_embedder, pipeline).enroll(
        NewIdentity("Alice", external_id="A-1"), images), events.append)
    assert result.record.created and len(result.accepted) == 3 and not result.rejected
    assert [e.stage for e in events][:3] == ["assess"] * 3 and events[-1].stage == "save"
    info = store.identities.get("Alice")
    assert info.crop_count == 3 and info.template_counts == {tiny_embedder.model_id: 3}
    crops = store.templates.crops("Alice")
    assert crops[0].image().shape == (112, 112, 3) and crops[0].source == str(images[0])
    templates = store.templates.for_identity("Alice")
    assert np.allclose([np.linalg.norm(t.embedding) for t in templates], 1.0, atol=1e-5)
    assert all(0.0 < t.quality <= 1.0 for t in templates)
    event = store.audit.query(operation="enroll")[-1]
    assert (event.identity_name, event.operator, event.details["templates"]) == ("Alice", "tester", 3)
    model = store.models.get(tiny_embedder.model_id)
    assert model.embedding_dim == 32 and model.name == tiny_embedder.name


def test_rejects_bad_images_with_reasons_and_keeps_the_good_ones(store, tiny_embedder, pipeline, att, att_image,
                                                                  tmp_path: Path) -> None:
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("not a picture")
    blank = np.full((200, 200, 3), 127, np.uint8)
    two_people = np.hstack([att_image(1, 1), att_image(2, 1)])
    tiny_face = att_image(1, 2)[::4, ::4].copy()
    inputs = [att / "s1" / "1.pgm", not_an_image, tmp_path / "missing.png", blank, two_people, tiny_face]
    result = run_to_completion(_service(store, tiny_embedder, pipeline).enroll(NewIdentity("Alice"), inputs))
    assert [c.source for c in result.accepted] == [str(att / "s1" / "1.pgm")]
    reasons = {c.source: " ".join(c.reasons) for c in result.rejected}
    assert "notes.jpg" in reasons[str(not_an_image)]
    assert "missing.png" in reasons[str(tmp_path / "missing.png")]
    assert reasons["image 4"] == "no face found"
    assert reasons["image 5"].startswith("2 faces found")
    assert "too small" in reasons["image 6"] or reasons["image 6"] == "no face found"
    assert store.identities.get("Alice").template_count == 1
    assert store.audit.query(operation="enroll")[-1].details["rejected"] == 5


def test_nothing_is_written_when_every_image_is_rejected(store, tiny_embedder, pipeline) -> None:
    blank = np.zeros((120, 120, 3), np.uint8)
    with pytest.raises(NoFaceError, match="no face found"):                 # as detect says of the same image
        run_to_completion(_service(store, tiny_embedder, pipeline).enroll(NewIdentity("Ghost"), [blank, blank]))
    assert store.identities.count() == 0
    assert [(e.operation, e.decision, e.identity_name, e.operator, e.details["exit_code"]) for e in store.audit.query()] \
        == [("enroll", "failed", "Ghost", "tester", "no_face")]                # the refused attempt is audited


def test_an_enrolment_stopped_by_a_locked_database_is_audited_through_the_queue(tmp_path, tiny_embedder, pipeline,
                                                                               att) -> None:
    import sqlite3

    from faceapp.core.errors import DatabaseError

    with Store(tmp_path / "locked.db", busy_timeout_s=0.2, retries=0) as store:
        service = _service(store, tiny_embedder, pipeline)
        service.gallery                                     # model registered before the other program locks
        other = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(DatabaseError, match="locked"):
                run_to_completion(service.enroll(NewIdentity("Alice"), [att / "s1" / "1.pgm"]))
            assert store.audit.pending() == 1               # the failed attempt waits in the durable queue
        finally:
            other.rollback()
            other.close()
        store.audit.flush_queue()
        event = store.audit.query()[-1]
        assert (event.operation, event.decision, event.identity_name, event.details["exit_code"]) == \
            ("enroll", "failed", "Alice", "database")
        assert store.identities.count() == 0


def test_rejections_of_different_kinds_are_a_quality_error(store, tiny_embedder, pipeline, att_image) -> None:
    blank = np.zeros((120, 120, 3), np.uint8)
    two_people = np.hstack([att_image(1, 1), att_image(2, 1)])
    with pytest.raises(QualityError, match="no face found.*2 faces found"):
        run_to_completion(_service(store, tiny_embedder, pipeline).enroll(NewIdentity("Ghost"), [blank, two_people]))
    assert store.identities.count() == 0


def test_name_taken_or_missing_fails_before_any_work(store, tiny_embedder, pipeline, att) -> None:
    service = _service(store, tiny_embedder, pipeline)
    run_to_completion(service.enroll(NewIdentity("Alice"), [att / "s1" / "1.pgm"]))
    with pytest.raises(NameInUseError, match="--add"):
        next(service.enroll(NewIdentity("Alice"), [att / "s1" / "2.pgm"]))
    with pytest.raises(NotFoundError, match="without --add"):
        next(service.enroll("Nobody", [att / "s1" / "2.pgm"]))
    added = run_to_completion(service.enroll("Alice", [att / "s1" / "2.pgm", att / "s1" / "3.pgm"]))
    assert not added.record.created and added.record.identity.template_count == 3


def test_duplicate_of_another_identity_is_warned(store, tiny_embedder, pipeline, att) -> None:
    service = _service(store, tiny_embedder, pipeline)
    images = [att / "s3" / f"{i}.pgm" for i in (1, 2)]
    first = run_to_completion(service.enroll(NewIdentity("Carol"), images))
    assert first.duplicates == ()
    again = run_to_completion(service.enroll(NewIdentity("Carol twin"), images))   # the very same photos
    assert [(d.name, d.identity_id) for d in again.duplicates] == [("Carol", first.record.identity.id)]
    assert again.duplicates[0].score == pytest.approx(1.0, abs=1e-4)
    assert again.duplicates[0].score >= again.duplicates[0].threshold
    assert store.audit.query(operation="enroll")[-1].details["possible_duplicate_of"][0][0] == first.record.identity.id
    store.identities.delete("Carol twin")
    more = run_to_completion(service.enroll("Carol", [att / "s3" / "3.pgm"]))     # adding to herself: no warning
    assert more.duplicates == ()


def test_cancel_writes_nothing(store, tiny_embedder, pipeline, att) -> None:
    cancel = CancelToken()
    job = _service(store, tiny_embedder, pipeline).enroll(NewIdentity("Dave"), [att / "s4" / f"{i}.pgm" for i in (1, 2, 3)],
                                                          cancel=cancel)
    next(job)
    cancel.cancel()
    with pytest.raises(CancelledError):
        run_to_completion(job)
    assert store.identities.find("Dave") is None


def test_live_frames_are_assessed_with_hints_then_prepared_and_committed(store, tiny_embedder, pipeline, att_image) -> None:
    service = _service(store, tiny_embedder, pipeline)
    frames = [pipeline.process(att_image(5, i))[0] for i in (1, 2)]
    checks = [service.assess_aligned(face, f"frame {i}") for i, face in enumerate(frames)]
    assert all(c.accepted and c.hints == () for c in checks)
    small = service.assess(att_image(5, 3)[::4, ::4].copy(), "far away")
    assert not small.accepted and small.hints
    plan = run_to_completion(service.prepare(NewIdentity("Eve"), frames))
    assert plan.embeddings.shape == (2, 32) and store.identities.find("Eve") is None   # nothing written yet
    result = service.commit(plan)
    assert result.record.identity.template_count == 2
