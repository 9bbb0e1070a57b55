"""One owner of decisions: the live service decides through the matcher (at the slider's threshold, exactly),
every interface records decisions with one audit builder, thresholds are saved by one route, and the
activation preview / readiness checks say what a model switch means. Real SQLite stores, synthetic unit
embeddings (the decisions, not the network, are under test)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import faceapp.services.live as live_module
from faceapp.core.progress import run_to_completion
from faceapp.core.types import Frame
from faceapp.matching import DEFAULT_AMBIGUITY_MARGIN, Matcher, Thresholds
from faceapp.services.activation import activate_model, activation_preview, readiness_warnings
from faceapp.services.audit import decision_entry
from faceapp.services.gallery import Gallery, model_spec
from faceapp.services.live import (
    DecisionAuditor, FaceResult, GalleryMatcher, LivePipeline, LiveResult, LiveSettings, StageTimes, apply_thresholds,
)
from faceapp.services.thresholds import save_thresholds
from faceapp.storage import FieldError, ModelSpec, NewIdentity, NewSample, Store

DIM = 8
MODEL = ModelSpec("m@000000000001", "m", DIM)
CORE = ("operation", "identity_id", "identity_name", "model_id", "score", "threshold", "decision", "operator")


def _unit(seed: int, dim: int = DIM) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _enrol(store: Store, name: str, seeds: list[int], model: ModelSpec | None = MODEL, *, crops: bool = True) -> int:
    crop = np.full((112, 112, 3), 128, np.uint8) if crops else None
    samples = [NewSample(crop=crop, embedding=_unit(s, model.embedding_dim) if model else None) for s in seeds]
    return store.templates.enroll(NewIdentity(name), samples, model).identity.id


def _near(seed: int, noise_seed: int, scale: float) -> np.ndarray:
    vector = _unit(seed) + scale * np.random.default_rng(noise_seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _live_faces(gallery: Gallery, settings: LiveSettings, probes: list[np.ndarray]) -> list[FaceResult]:
    crop = SimpleNamespace(image=np.zeros((112, 112, 3), np.uint8))      # the auditor keeps the probe crop
    faces = [FaceResult(aligned=crop, embedding=p) for p in probes]       # the embedding is all _match reads
    LivePipeline(None, None, GalleryMatcher(gallery), settings)._match(faces, settings)
    return faces


def _result(faces: list[FaceResult]) -> LiveResult:
    return LiveResult(frame=Frame(np.zeros((4, 4, 3), np.uint8), 0.0, source="camera:0"), faces=faces,
                      times=StageTimes())


def test_the_live_service_has_no_decision_of_its_own() -> None:
    assert not [name for name in dir(live_module) if name.startswith("decide")]


def test_live_identify_and_verify_decisions_at_the_slider_threshold_are_the_matchers(store: Store) -> None:
    alice = _enrol(store, "Alice", [1, 2])
    _enrol(store, "Bob", [3])
    gallery = Gallery(store, MODEL, operator="desk")
    probes = [_near(1, 10, 0.3), _near(3, 11, 0.6), _unit(99)]
    for threshold in [*np.linspace(-0.2, 1.0, 13).tolist(), 0.5016]:
        matcher = Matcher(gallery.index, Thresholds(verify=threshold, identify=threshold))
        settings = LiveSettings(mode="identify", identify_threshold=threshold, top_k=2)
        faces = _live_faces(gallery, settings, probes)
        assert [f.identify for f in faces] == [matcher.identify(p, 2, ambiguity_margin=settings.ambiguity_margin)
                                               for p in probes]
        assert all(f.identify.threshold == threshold for f in faces)       # the slider's float, not rounded
        moved = apply_thresholds(_result(faces), identify_threshold=threshold + 0.05, verify_threshold=0.5)
        assert [f.identify for f in moved.faces] == [matcher.identify(p, 2, threshold=threshold + 0.05,
                                                                      ambiguity_margin=settings.ambiguity_margin)
                                                     for p in probes]

        settings = LiveSettings(mode="verify", verify_threshold=threshold, claimed_identity_id=alice)
        faces = _live_faces(gallery, settings, probes)
        assert [f.verify for f in faces] == [matcher.verify(alice, p) for p in probes]
        moved = apply_thresholds(_result(faces), identify_threshold=0.5, verify_threshold=threshold - 0.05)
        assert [f.verify for f in moved.faces] == [matcher.verify(alice, p, threshold=threshold - 0.05) for p in probes]
    assert store.audit.query(operation="identify") == []                  # live frames are audited by the auditor


@pytest.mark.parametrize("mode", ["identify", "verify"])
def test_the_cli_route_and_the_live_route_audit_a_decision_with_the_same_fields(store: Store, mode: str) -> None:
    alice = _enrol(store, "Alice", [1, 2])
    _enrol(store, "Bob", [3])
    gallery = Gallery(store, MODEL, operator="desk")
    gallery.save_thresholds(0.5, 0.5, source="calibration")
    used = gallery.thresholds()
    probe = _near(1, 10, 0.3)
    # what `faceapp identify` / `faceapp verify` do
    if mode == "identify":
        cli = gallery.identify(probe, top_k=2, ambiguity_margin=DEFAULT_AMBIGUITY_MARGIN, details={"probe": "p.jpg"})
    else:
        cli = gallery.verify("Alice", probe, details={"probe": "p.jpg"})
    # what the Live page does: decide, then audit the change of answer
    settings = LiveSettings(mode=mode, identify_threshold=used.identify, verify_threshold=used.verify, top_k=2,
                            claimed_identity_id=alice, thresholds_source=used.source)
    faces = _live_faces(gallery, settings, [probe])
    assert (faces[0].identify if mode == "identify" else faces[0].verify) == cli
    assert DecisionAuditor(store, MODEL.model_id, operator="desk").observe(_result(faces), settings.thresholds_source)

    cli_row, live_row = store.audit.query(operation=mode)
    assert {k: getattr(live_row, k) for k in CORE} == {k: getattr(cli_row, k) for k in CORE}
    assert cli_row.decision in ("identified", "match") and cli_row.identity_name == "Alice"
    shared = set(cli_row.details) & set(live_row.details)
    assert shared >= {"thresholds", "candidates" if mode == "identify" else "policy"}
    assert {k: cli_row.details[k] for k in shared} == {k: live_row.details[k] for k in shared}
    assert cli_row.details["thresholds"] == "store:calibration"
    assert cli_row.details["probe"] == "p.jpg" and live_row.details["source"] == "live"   # the interface's own
    # and both are exactly what the one builder makes of the decision
    built = decision_entry(cli, model_id=MODEL.model_id, operator="desk", thresholds_source=used.source)
    assert {k: getattr(built, k) for k in CORE} == {k: getattr(cli_row, k) for k in CORE}


def test_an_ambiguous_identify_names_nobody_on_either_route_and_is_audited_as_ambiguous(store: Store) -> None:
    _enrol(store, "Alice", [1])
    _enrol(store, "Alicia", [2])
    gallery = Gallery(store, MODEL, operator="desk")
    gallery.save_thresholds(0.5, 0.0, source="calibration")
    probe = _unit(1) + _unit(2)
    probe /= np.linalg.norm(probe)                                         # as close to both: a tie
    cli = gallery.identify(probe, top_k=1, ambiguity_margin=0.03)          # what `faceapp identify` does
    assert cli.ambiguous and cli.identity_id is None and not cli.is_unknown and cli.outcome == "ambiguous"
    assert {c.name for c in cli.candidates} == {"Alice", "Alicia"}         # the runner-up kept, top_k 1 or not
    settings = LiveSettings(mode="identify", identify_threshold=0.0, top_k=1, ambiguity_margin=0.03,
                            thresholds_source="store:calibration")
    faces = _live_faces(gallery, settings, [probe])
    assert faces[0].identify == cli and faces[0].label == "Ambiguous"
    auditor = DecisionAuditor(store, MODEL.model_id, operator="desk")
    assert auditor.observe(_result(faces), settings.thresholds_source)
    cli_row, live_row = store.audit.query(operation="identify")
    for row in (cli_row, live_row):
        assert (row.decision, row.identity_id, row.identity_name) == ("ambiguous", None, None)
        assert row.details["ambiguity_margin"] == 0.03
    # no margin: the same scores give the best a name; the change of answer is audited again
    plain = apply_thresholds(_result(faces), 0.0, 0.5, ambiguity_margin=0.0)
    assert plain.faces[0].identify.outcome == "identified" and plain.faces[0].label == cli.best.name
    assert auditor.observe(plain) and store.audit.query(operation="identify")[-1].identity_name == cli.best.name
    with pytest.raises(ValueError, match="ambiguity margin"):
        gallery.identify(probe, ambiguity_margin=-0.1)


def test_one_route_saves_thresholds_exactly_with_source_date_and_operator(store: Store, monkeypatch) -> None:
    monkeypatch.setenv("FACEAPP_OPERATOR", "desk-7")
    record = save_thresholds(store, MODEL, verify=0.5016, identify=0.5901, target_far=1e-3, source="cfp")
    assert (record.verify, record.identify, record.source) == (0.5016, 0.5901, "cfp")
    assert record.calibrated_at is not None
    event = store.audit.query(operation="thresholds")[-1]
    assert event.operator == "desk-7" and event.details["verify"] == 0.5016
    gallery = Gallery(store, MODEL)
    gallery.save_thresholds(0.123456789, 0.2)                               # the gallery's helper takes the same road
    assert store.thresholds.get(MODEL.model_id).verify == 0.123456789
    with pytest.raises(FieldError):
        save_thresholds(store, MODEL, verify=1.5, identify=0.5)


def test_readiness_warns_of_uncalibrated_thresholds_and_identities_without_templates(store: Store) -> None:
    _enrol(store, "Alice", [1])
    gallery = Gallery(store, MODEL)
    warnings = readiness_warnings(gallery)
    assert len(warnings) == 1 and "no calibrated thresholds" in warnings[0] and MODEL.model_id in warnings[0]
    assert readiness_warnings(Gallery(store, MODEL, {"thresholds": {"verify": 0.5016, "identify": 0.59}})) == []
    gallery.save_thresholds(0.5, 0.6, source="site")
    assert readiness_warnings(gallery) == []
    _enrol(store, "Carol", [5], model=None)                               # crops, no template of this model
    (warning,) = readiness_warnings(gallery)
    assert "1 identity has no template" in warning and "Carol" in warning and "Alice" not in warning


def test_activation_preview_compares_both_models_and_names_who_cannot_be_found(store: Store, tmp_path) -> None:
    from tests.services.analyst_data import save_untrained_model
    from faceapp.embedding import Embedder

    folder = save_untrained_model(tmp_path / "next", dim=16)
    current = Embedder.untrained(backbone="tiny", embedding_dim=DIM, device="cpu")
    current.card = {**current.card, "trained": True, "thresholds": {"verify": 0.5016, "identify": 0.5901},
                    "metrics": {"validation": {"protocol": "hold-out", "epoch": 7, "accuracy": 0.9321, "eer": 0.071}}}
    spec = model_spec(current)
    _enrol(store, "Alice", [1, 2], spec)
    _enrol(store, "Dora", [4], spec, crops=False)                         # a template, no crop: not re-embeddable

    preview = activation_preview(store, folder, current)
    text = preview.text()
    assert preview.new.model_id == Embedder.load(folder, device="cpu").model_id
    assert preview.current.model_id == spec.model_id
    assert preview.new.model_id in text and spec.model_id in text
    assert "validation (hold-out, epoch 7): accuracy 93.21%, EER 7.10%" in text
    assert "verify 0.5016, identify 0.5901 (model-card)" in text            # the current model's, exact
    assert "NOT calibrated" in text and "no calibrated thresholds" in text  # the new model has none
    assert (preview.identities, preview.crops_to_embed, preview.unreachable) == (2, 2, ["Dora"])
    assert "Dora" in text and "re-embeds 2 stored crop(s)" in text

    result = run_to_completion(activate_model(store, folder, device="cpu"))
    assert result.unreachable == ["Dora"] and "Dora" in result.summary()
