"""The Live page model without Qt: warnings, identities, the threshold policy (loaded and saved exactly,
re-deciding the result on screen), mode and claim, results and frame rate, answers and thumbnails, and the
restart / autostart requests, on a real SQLite gallery with the work run at once."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from faceapp.app.live import AUDIT_COLUMNS, LiveModel, describe_source, parse_source
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
                 "thresholds_saved", "mode_changed", "result_changed", "thumbs_loaded", "start_requested", "message",
                 "operating_points_changed"):
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
    assert model.panel(None).hint == "Choose the claimed identity."
    s1 = model.identities[0]
    model.set_claimed(s1.id, "s1")
    assert model.settings.claimed_identity_id == s1.id
    panel = model.panel(model.take(_result(0.7, s1.id, verify=True)).faces[0])
    assert (panel.headline, panel.role, panel.name) == ("MATCH", "verdict-match", "s1")
    assert panel.numbers == "score 0.700 · threshold 0.502 · margin +0.198"
    model.set_mode("identify")
    face = model.take(_result(0.8, s1.id)).faces[0]
    panel = model.panel(face)
    assert (panel.headline, panel.role, panel.ambiguous) == ("s1", "verdict-match", False)
    assert model.candidate_lines(face)[0] == ("1. s1", "0.800 >= 0.590", s1.id)
    assert model.thumbs[s1.id].shape == (112, 112, 3)         # thumbnails asked for and loaded
    assert any(e[0] == "thumbs_loaded" for e in model.events)


def _two(first: float, second: float, threshold: float = 0.5) -> LiveResult:
    """A frame whose face was decided without a margin (as a plain threshold would): the model re-decides it."""
    aligned = SimpleNamespace(image=np.zeros((112, 112, 3), np.uint8), face=None)
    candidates = (Candidate(1, "s1", first), Candidate(2, "s2", second))
    face = FaceResult(aligned, candidates=candidates,
                      identify=IdentifyDecision(candidates, threshold, 1 if first >= threshold else None))
    return LiveResult(frame=SimpleNamespace(image=None, source="cam"), faces=[face], times=StageTimes())


def test_top_two_within_the_margin_are_decided_ambiguous_and_audited_so(session):
    """Issue 13 point 1: two candidates 0.016 apart were shown as a confident answer (and the decision, the
    overlay and the audit row still named the best: "ambiguous" was only the panel's wording)."""
    from faceapp.services.audit import decision_entry

    model = _model(session)
    model.services_changed()
    model.set_thresholds(0.5, 0.5016)
    model.running = True
    face = model.take(_two(0.612, 0.596)).faces[0]
    decision = face.identify
    assert decision.ambiguous and decision.identity_id is None and decision.outcome == "ambiguous"
    assert face.label == "Ambiguous"
    entry = decision_entry(decision, model_id=MODEL.model_id)             # what the auditor writes for it
    assert (entry.decision, entry.identity_id, entry.identity_name) == ("ambiguous", None, None)
    panel = model.panel(face)
    assert panel.ambiguous and panel.headline == "Ambiguous" and panel.role == "verdict-ambiguous"
    assert panel.name == "s1" and panel.runner_up == "s2" and "0.612" in panel.hint
    assert not model.panel(model.take(_two(0.70, 0.596)).faces[0]).ambiguous      # 0.104 apart: a clear answer
    model.set_ambiguity_margin(0.2)                                       # re-decides the result on screen
    assert model.result.faces[0].identify.ambiguous and model.events[-1][0] == "result_changed"
    model.set_ambiguity_margin(0.01)
    face = model.take(_two(0.612, 0.596)).faces[0]
    assert not model.panel(face).ambiguous and face.identify.identity_id == 1
    with pytest.raises(ValueError):
        model.set_ambiguity_margin(-0.1)
    model.set_ambiguity_margin(0.03)
    assert not model.panel(model.take(_two(0.45, 0.44)).faces[0]).ambiguous     # unknown is never ambiguous
    unknown = model.panel(model.take(_two(0.45, 0.30)).faces[0])
    assert unknown.headline == "Unknown" and unknown.name == "" and unknown.margin == pytest.approx(-0.05)


def test_empty_and_error_states_say_what_to_do(session, tmp_path):
    """Issue 13 point 4: verify with no source said "NO FACE"; identify on an empty gallery gave no hint."""
    model = _model(session)
    model.services_changed()
    model.set_mode("verify")
    model.set_claimed(model.identities[0].id, "s1")
    idle = model.panel(None)
    assert idle.headline == "NO SOURCE" and "Start" in idle.hint                # not "NO FACE"
    model.running = True
    assert model.panel(None).headline == "NO FACE"
    model.source_failed("camera 0 not found")
    assert model.panel(None).headline == "SOURCE FAILED" and model.health() == ("✕ SOURCE FAILED", "bad")
    model.begin("video.avi")                                                   # a new source clears the failure
    assert model.source_error == "" and model.health()[0] == "■ STOPPED"
    with Store(tmp_path / "empty.db") as store:
        session.store, session.gallery = store, Gallery(store, MODEL, {}, operator="desk-1")
        empty = _model(session)
        empty.services_changed()
        empty.running = True
        panel = empty.panel(_two(0.3, 0.2))
        assert panel.headline == "GALLERY EMPTY" and "Enrol" in panel.hint
        empty.set_mode("verify")
        assert empty.panel(None).headline == "NOBODY ENROLLED"


def test_the_operating_point_comes_from_the_models_calibration(session):
    """Issue 13 point 2: the sliders showed a raw cosine only."""
    model = _model(session)
    model.services_changed()
    points = model.readouts()
    assert not points["verify"].calibrated and points["identify"].text == "uncalibrated"
    curve = {"threshold": [0.0, 0.5, 0.6, 1.0], "far": [0.5, 0.01, 0.001, 0.0], "frr": [0.0, 0.02, 0.05, 1.0],
             "impostor_pairs": 10_000, "genuine_pairs": 500}
    session.gallery.card = {"thresholds": {"verify": 0.5, "identify": 0.6, "far_curve": curve}}
    model.set_thresholds(0.6, 0.5)
    shown = [e[1] for e in model.events if e[0] == "operating_points_changed"][-1]
    assert shown["verify"].far == pytest.approx(0.01) and shown["verify"].text == "FAR 1.0 % · FRR 2.0 %"
    fpir = 1 - (1 - 0.001) ** 2                                               # two identities enrolled
    assert shown["identify"].fpir == pytest.approx(fpir) and "at N=2" in shown["identify"].text
    assert "Lower it" in shown["verify"].tooltip and "10,000 impostor" in shown["verify"].tooltip
    assert model.readouts(verify=1.0)["verify"].text.startswith("FAR < 0.01 %")   # below 1 / 10,000: a bound
    summary = model.save_summary()                                           # stored 0.5016 / 0.59 -> 0.5 / 0.6
    assert "Identify: 0.5900" in summary and "→  0.6000" in summary and "Verify: 0.5016" in summary


def test_a_withheld_identification_is_marked_in_the_recent_strip_not_shown_as_named(session):
    """Require liveness before MATCH: the audited 'liveness-required' row must not read like a named answer."""
    from faceapp.services.live import DecisionAuditor

    model = _model(session)
    model.settings.liveness_mode, model.settings.require_liveness = "passive", True
    s1 = session.store.identities.list()[0]
    auditor = DecisionAuditor(session.store, MODEL.model_id, "bob")
    model._auditor = auditor
    result = _result(0.8, s1.id)                                               # named, never checked for liveness
    result = LiveResult(frame=SimpleNamespace(image=None, source="cam"), faces=result.faces, times=result.times)
    assert auditor.observe(result, "test", model.settings)
    model.take(result)
    newest = model.recent[0]
    assert newest.decision == "liveness-required" and "LIVENESS REQUIRED" in newest.line()
    assert model.panel(result.faces[0]).headline == "LIVENESS REQUIRED"
    model.set_recent_filter("", "named")
    assert model.filtered_recent() == []
    model.set_recent_filter("", "liveness-required")
    assert [d.decision for d in model.filtered_recent()] == ["liveness-required"]


def test_recent_decisions_come_from_the_audit_log_filtered(session):
    """Issue 13 point 3: recent decisions (name or Unknown, score, time, operator) with a filter."""
    from faceapp.services.audit import decision_entry
    from faceapp.services.live import DecisionAuditor

    model = _model(session)
    s1 = session.store.identities.list()[0]
    session.store.audit.append(decision_entry(_two(0.8, 0.3).faces[0].identify, model_id=MODEL.model_id, operator="ann"))
    model.services_changed()
    assert [d.name for d in model.recent] == ["s1"] and model.recent[0].operator == "ann"
    auditor = DecisionAuditor(session.store, MODEL.model_id, "bob")
    model._auditor = auditor                                                  # as make_live sets it
    result = _result(0.3, s1.id)                                              # unknown
    result = LiveResult(frame=SimpleNamespace(image=None, source="cam"), faces=result.faces, times=result.times)
    auditor.observe(result)
    model.take(result)
    newest = model.recent[0]
    assert newest.name == "Unknown" and newest.operator == "bob" and newest.crop.shape == (112, 112, 3)
    assert "Unknown" in newest.line() and "bob" in newest.line()
    model.set_recent_filter("", "unknown")
    assert [d.name for d in model.filtered_recent()] == ["Unknown"]
    model.set_recent_filter("S1")
    assert [d.name for d in model.filtered_recent()] == ["s1"]
    loaded = []
    model.audit_loaded.connect(lambda *args: loaded.append(args))
    model.open_audit(next(d for d in model.recent if d.name == "s1"))
    title, rows = loaded[-1]
    assert "s1" in title and rows and all(r.identity_id == s1.id for r in rows)
    assert {r.values[1] for r in rows} >= {"identify", "enroll"}          # the person's whole history


def test_the_full_audit_of_an_unknown_decision_is_its_row_with_the_best_candidate_apart(session):
    """Issue 13 point 3: "Full audit" on an Unknown decision gave a bare note; its audit row is offered, the
    best candidate (a name with a score) in its own column, never in the name column."""
    from faceapp.services.live import DecisionAuditor

    model = _model(session)
    model.services_changed()
    auditor = DecisionAuditor(session.store, MODEL.model_id, "bob")
    model._auditor = auditor
    s1 = session.store.identities.list()[0]
    for result in (_result(0.8, s1.id), _result(0.3, s1.id)):           # s1, then an Unknown scoring 0.3 on s1
        result = LiveResult(frame=SimpleNamespace(image=None, source="cam"), faces=result.faces, times=result.times)
        auditor.observe(result)
        model.take(result)
    unknown = model.recent[0]
    assert unknown.name == "Unknown" and unknown.identity_id is None
    loaded = []
    model.audit_loaded.connect(lambda *args: loaded.append(args))
    model.open_audit(unknown)
    title, rows = loaded[-1]
    assert f"#{unknown.audit_id}" in title and "Unknown" in title
    (row,) = rows
    values = dict(zip(AUDIT_COLUMNS, row.values))
    assert row.audit_id == unknown.audit_id
    assert (values["operation"], values["decision"], values["name"]) == ("identify", "unknown", "Unknown")
    assert values["best candidate"] == "s1 0.300" and values["score"] == "0.300" and values["operator"] == "bob"
    assert values["time"] and values["threshold"] == "0.500"                 # the threshold it was decided at
    session.store.identities.delete(s1.id)                                # the candidate is gone: said so
    model.open_audit(unknown)
    assert loaded[-1][1][0].values[4] == f"#{s1.id} (deleted) 0.300"


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
