"""The Thresholds study's model without Qt: scoring the enrolled gallery, the operating point as the verify
threshold and N move, the "set at target" rules, and the stored thresholds read and saved exactly with
their calibration source, on a real SQLite gallery with the work run at once."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from faceapp.app.thresholds import ThresholdsModel, fmt_rate
from faceapp.core.errors import DatasetError
from faceapp.services.gallery import Gallery
from faceapp.storage import NewIdentity, NewSample, Store
from tests.app.gallery_data import DIM, MODEL



def _clustered_gallery(store, seed: int, people: int, per_person: int, noise: float):  # noqa: ANN001, ANN202
    """A session over ``store`` with clustered faces (genuine pairs score higher the smaller ``noise``)."""
    rng = np.random.default_rng(seed)
    for person in range(people):
        centre = rng.standard_normal(DIM)
        vectors = centre + noise * rng.standard_normal((per_person, DIM))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store.templates.enroll(NewIdentity(f"p{person}"),
                               [NewSample(embedding=v.astype(np.float32)) for v in vectors], MODEL)
    embedder = SimpleNamespace(model_id=MODEL.model_id, name="tiny", dim=DIM, card={}, folder=None,
                               weights_sha256="0" * 64)
    return SimpleNamespace(store=store, embedder=embedder, gallery=Gallery(store, MODEL, {}, operator="analyst-7"))


@pytest.fixture
def session(tmp_path):  # noqa: ANN201
    with Store(tmp_path / "gallery.db") as store:
        yield _clustered_gallery(store, 0, 6, 4, 0.4)


def _model(session):  # noqa: ANN001, ANN202
    model = ThresholdsModel(session)
    model.events = []
    for name in ("scored", "point_changed", "identify_changed", "stored_changed", "thresholds_saved", "message"):
        getattr(model, name).connect(lambda *args, name=name: model.events.append((name, *args)))
    return model


def test_the_gallery_is_scored_and_the_point_follows_the_threshold(session):
    model = _model(session)
    model.compute("gallery", {})
    assert model.scores is not None and model.gallery_size == 6
    assert model.verify == pytest.approx(model.curves.eer_threshold)        # starts at the EER
    assert "EER" in model.summary_text() and not model.stale()
    low = model.point
    model.set_verify(model.verify + 0.2)
    assert model.point.far <= low.far and model.point.frr >= low.frr
    model.set_gallery_size(100)
    assert model.point.gallery_size == 100 and model.readouts()["fpir"].endswith("(N = 100)")
    assert set(model.readouts()) == {"far", "frr", "tar", "eer", "fpir", "fpir_emp"}


def test_targets_then_save_and_read_back_exactly(session):
    model = _model(session)
    model.compute("gallery", {})
    model.set_at_target_far(1e-2)
    assert model.target["verify"] == 1e-2 and model.point.far <= 1e-2
    model.set_identify_at_target(1e-2)
    assert model.events[-1][0] == "message" and "FPIR 0.01 at N = 6" in model.events[-1][2]
    assert ("identify_changed", model.identify) in model.events
    model.save()
    stored = session.store.thresholds.get(MODEL.model_id)
    assert (stored.verify, stored.identify, stored.target_far) == (model.verify, model.identify, 1e-2)
    assert stored.source.startswith("thresholds tab: ") and "verify at FAR 0.01" in stored.source
    assert session.store.audit.query(operation="thresholds")[-1].operator == "analyst-7"   # the session's operator
    assert any(e[0] == "thresholds_saved" for e in model.events)
    fresh = _model(session)
    fresh.load_stored()
    shown = fresh.events[-1][1]
    assert fresh.stored_text(shown).startswith(f"stored: verify {model.verify:.4f}")
    fresh.apply_stored(shown)
    assert (fresh.verify, fresh.identify) == (model.verify, model.identify)


def test_what_cannot_be_done_is_said(session):
    model = _model(session)
    with pytest.raises(DatasetError, match="labelled folder"):
        model.compute("folder", {})
    model.set_at_target_far(1e-3)                          # nothing scored: nothing moves
    assert model.point is None and model.target == {}
    model.session = SimpleNamespace(store=None, embedder=None, gallery=None)
    model.save()
    assert model.events[-1] == ("message", "warning", "No database or model is loaded: thresholds cannot be saved.")
    assert fmt_rate(None) == "n/a" and fmt_rate(0) == "0" and fmt_rate(0.5) == "50%" and fmt_rate(5e-5) == "5.00e-05"


def test_a_far_below_one_over_n_says_it_cannot_be_measured(session):
    """1e-3 on 240 impostor pairs: the read-out and a warning say the pairs cannot measure it, not "0 (0 of 240)"."""
    model = _model(session)
    model.compute("gallery", {})
    assert model.scores.n_impostor == 240
    model.set_at_target_far(1e-3)
    assert model.point.far == 0
    far = model.readouts()["far"]
    assert not far.startswith("0 ") and "below 1/N" in far and f"{1 / 240 * 100:.3g}%" in far
    note = model.far_note()
    assert "cannot be measured with 240 impostor pairs" in note and "1/240" in note and "1,000" in note
    assert ("message", "warning", note) in model.events
    before = len(model.events)
    model.set_at_target_far(0.1)                            # measurable: no such sentence
    assert "cannot be measured" not in model.far_note()
    assert not [e for e in model.events[before:] if e[0] == "message"]


def test_threshold_markers_stay_on_the_log_plots(session):
    """A threshold whose FAR is 0 (no place on a log axis) is drawn at the plot's edge, with a note."""
    model = _model(session)
    model.compute("gallery", {})
    model.set_verify(0.999)                                 # above every impostor: FAR 0
    markers = model.markers()
    far = model.curves.roc.far
    assert markers["roc"] is not None and markers["roc"][0] == pytest.approx(far[far > 0].min())
    assert "edge" in markers["roc_note"]
    assert markers["det"] is not None or markers["det_note"].startswith("No DET curve")


def test_an_empty_det_says_why(tmp_path):
    """Scores that separate completely leave nothing for the DET's log axes: the note says so."""
    with Store(tmp_path / "separated.db") as store:
        model = _model(_clustered_gallery(store, 1, 4, 3, 0.01))
        model.compute("gallery", {})
    markers = model.markers()
    assert model.curves.eer == 0
    assert markers["det"] is None
    assert markers["det_note"].startswith("No DET curve") and "12 genuine / 54 impostor" in markers["det_note"]
