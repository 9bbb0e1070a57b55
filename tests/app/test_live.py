"""The Live page model without Qt: warnings, identities, the threshold policy (loaded and saved exactly,
re-deciding the result on screen), mode and claim, results and frame rate, answers and thumbnails, and the
restart / autostart requests, on a real SQLite gallery with the work run at once."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from faceapp.app.live import LiveModel, describe_source, parse_source
from faceapp.core.types import Candidate, IdentifyDecision, VerifyDecision
from faceapp.services.gallery import Gallery
from faceapp.services.live import FaceResult, LiveResult, StageTimes
from faceapp.storage import NewIdentity, Store
from tests.app.gallery_data import MODEL, samples

@pytest.fixture
def session(tmp_path):  # noqa: ANN201
    with Store(tmp_path / "gallery.db") as store:
        store.templates.enroll(NewIdentity("s1"), samples(2, 1), MODEL)
        store.templates.enroll(NewIdentity("s2"), samples(2, 2), MODEL)
        gallery = Gallery(store, MODEL, {}, operator="desk-1")
        gallery.save_thresholds(0.5016, 0.59, source="test")
        yield SimpleNamespace(store=store, gallery=gallery, loading=False, errors={},
                              embedder=SimpleNamespace(model_id=MODEL.model_id, trained=True))


def _model(session, **kwargs):  # noqa: ANN001, ANN003, ANN202
    model = LiveModel(session, **kwargs)
    model.events = []
    for name in ("warnings_changed", "identities_loaded", "thresholds_loaded", "threshold_source_changed",
                 "thresholds_saved", "mode_changed", "result_changed", "thumbs_loaded", "start_requested", "message"):
        getattr(model, name).connect(lambda *args, name=name: model.events.append((name, *args)))
    return model


def _result(score: float, identity_id: int = 1, verify: bool = False) -> LiveResult:
    aligned = SimpleNamespace(image=np.zeros((112, 112, 3), np.uint8), face=None)
    if verify:
        face = FaceResult(aligned, verify=VerifyDecision(identity_id, "s1", score, 0.5, score >= 0.5, "max"))
    else:
        candidates = (Candidate(identity_id, "s1", score), Candidate(identity_id + 1, "s2", score - 0.2))
        face = FaceResult(aligned, candidates=candidates,
                          identify=IdentifyDecision(candidates, 0.5, identity_id if score >= 0.5 else None))
    return LiveResult(frame=SimpleNamespace(image=None), faces=[face], times=StageTimes(total_ms=20.0), fps=25.0)


def test_services_load_identities_thresholds_and_readiness(session):
    model = _model(session)
    model.services_changed()
    assert [i.name for i in model.identities] == ["s1", "s2"]
    assert (model.settings.verify_threshold, model.settings.identify_threshold) == (0.5016, 0.59)  # exact
    assert model.settings.thresholds_source == "store:test"
    assert ("threshold_source_changed", "source: store:test") in model.events
    assert model.warnings() == [] and model.problems == []


def test_warnings_for_an_untrained_model_and_no_gallery(session):
    session.embedder.trained = False
    session.gallery = None
    model = _model(session)
    model.services_changed()
    lines = model.warnings()
    assert lines[0].startswith("Untrained model") and lines[1].startswith("No gallery")
    assert ("warnings_changed", lines) in model.events


def test_a_moved_threshold_redecides_the_result_on_screen_and_saves_exactly(session):
    model = _model(session)
    model.services_changed()
    shown = model.take(_result(0.55), ready_at=1.0, now=1.02)
    assert shown.faces[0].identify.is_unknown                 # 0.55 < identify 0.59
    assert model.display_ms == pytest.approx(20.0)
    model.set_thresholds(0.54321, 0.5016)
    assert not model.result.faces[0].identify.is_unknown and model.settings.thresholds_source == "slider"
    assert model.events[-1][0] == "result_changed" and model.events[-1][2] is False
    model.save_thresholds()
    stored = session.store.thresholds.get(MODEL.model_id)
    assert (stored.identify, stored.verify, stored.source) == (0.54321, 0.5016, "manual")
    assert model.settings.thresholds_source == "store:manual"
    assert any(e[0] == "thresholds_saved" for e in model.events)


def test_mode_claim_and_the_answers(session):
    model = _model(session)
    model.services_changed()
    with pytest.raises(ValueError):
        model.set_mode("detect")
    model.set_mode("verify")
    assert model.settings.mode == "verify" and ("mode_changed", "verify") in model.events
    assert model.verdict(None) == ("NO FACE", "verdict-idle", "Choose the claimed identity")
    s1 = model.identities[0]
    model.set_claimed(s1.id, "s1")
    assert model.settings.claimed_identity_id == s1.id
    text, role, detail = model.verdict(model.take(_result(0.7, s1.id, verify=True)).faces[0])
    assert (text, role) == ("MATCH", "verdict-match") and "0.700 >= threshold 0.502" in detail
    model.set_mode("identify")
    text, role, lines = model.answer(model.take(_result(0.8, s1.id)).faces[0])
    assert (text, role) == ("s1", "verdict-match") and lines[0] == ("1. s1   0.800 >= 0.590", s1.id)
    assert model.thumbs[s1.id].shape == (112, 112, 3)         # thumbnails asked for and loaded
    assert any(e[0] == "thumbs_loaded" for e in model.events)


def test_frame_rate_from_the_frames_shown(session):
    model = _model(session)
    for i in range(5):
        model.take(_result(0.8), ready_at=i * 0.04, now=i * 0.04 + 0.005)
    assert model.gui_fps == pytest.approx(25.0) and list(model.latency) == [20.0] * 5
    assert "display 5.0" in model.stage_text(model.result) and model.fps_text(model.result).startswith("FPS 25.0")


def test_restart_when_another_model_is_activated_and_autostart_once(session):
    model = _model(session, startup_source="camera:2")
    model.services_changed()
    assert ("start_requested", 2, False) in model.events
    spec = model.begin(["a.jpg"], loop=True)
    model.running = True
    model.events.clear()
    model.services_changed()                                   # same model: nothing
    assert not any(e[0] == "start_requested" for e in model.events)
    session.embedder = SimpleNamespace(model_id="other@1", trained=True)
    model.services_changed()
    assert ("start_requested", spec, True) in model.events


def test_sources_parse_and_describe():
    assert parse_source("camera:1") == 1 and parse_source(" 3 ") == 3 and parse_source("v.avi") == "v.avi"
    assert describe_source(0) == "Camera: camera:0" and describe_source(["a.jpg"]) == "Image: a.jpg"
    assert describe_source(["a.jpg", "b.jpg"]) == "Images: 2 file(s)" and describe_source("x/v.avi") == "Source: v.avi"
