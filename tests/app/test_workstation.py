"""The Workstation session without Qt: lazy strict parts (CLI), tolerant load (GUI), pipeline factory,
threshold policy and activation."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceapp.app import Workstation, WorkstationOptions, open_workstation
from faceapp.app.workstation import gallery_for
from faceapp.core.errors import ModelAssetError


def _options(tmp_path: Path, **changes) -> WorkstationOptions:  # noqa: ANN003
    return WorkstationOptions(db=str(tmp_path / "ws.db"), **changes)


def test_parts_open_on_first_use_and_the_store_closes(tmp_path):
    ws = open_workstation(_options(tmp_path))
    assert not ws.has("store") and not ws.has("embedder") and not ws.has("gallery")
    gallery = ws.gallery                      # opens the store and loads the embedder
    assert ws.has("store") and ws.has("embedder") and gallery is ws.gallery
    assert ws.model_id == ws.embedder.model_id
    described = ws.describe()
    assert described["database"] == "DB: ws.db · search exact" and not described["search_building"]
    assert described["device"] == f"Device: cpu ({ws.embedder.engine})"
    ws.close()
    assert not ws.has("store") and not ws.has("gallery")


def test_the_threshold_policy_reads_the_card_and_saves_exact_values(tmp_path):
    with open_workstation(_options(tmp_path)) as ws:
        before = ws.thresholds()
        assert before.source == "model-card"
        ws.save_thresholds(0.5016, 0.59, source="test")
        after = ws.thresholds()
        assert after.verify == pytest.approx(0.5016, abs=1e-12) and after.source == "store:test"


def test_a_strict_part_raises_and_load_records_a_sentence(tmp_path):
    missing = tmp_path / "no-such-model"
    ws = Workstation(_options(tmp_path, model=missing, mediapipe_dir=tmp_path / "empty"))
    with pytest.raises(ModelAssetError):
        ws.embedder
    errors = ws.load()
    assert "model" in errors and "Loading the embedding model" in errors["model"]
    assert ws.has("store") and not ws.has("gallery")       # the rest still works
    ws.close()


def test_the_pipeline_factory_uses_the_options(tmp_path, mediapipe_models):
    ws = open_workstation(_options(tmp_path, mediapipe_dir=mediapipe_models, max_side=640))
    with ws.create_pipeline("image") as pipeline:
        assert not pipeline.fallback_active
        assert pipeline.max_side == 640 and pipeline._model_dir == mediapipe_models   # the options, not defaults
    ws.close()


def test_activate_replaces_the_model_and_its_gallery(tmp_path):
    with open_workstation(_options(tmp_path, operator="desk-3")) as ws:
        old = ws.gallery

        class Other:                           # what activate_model hands over
            model_id, name, dim, card, folder, trained = "other@1", "other", 128, {}, tmp_path, True

        ws.activate(Other())
        assert ws.embedder.model_id == "other@1" and ws.options.model == tmp_path
        assert not ws.has("gallery")
        new = ws.gallery                       # rebuilt for the new model, the session's operator kept
        assert new is not old and new.model.model_id == "other@1" and new.operator == "desk-3"
        assert gallery_for(ws.store, Other(), ws.options).operator == "desk-3"   # what the Trainer's activation uses


def test_a_search_fallback_is_reported_and_the_gallery_still_works(tmp_path, mediapipe_models):
    ws = Workstation(_options(tmp_path, index="pgvector", mediapipe_dir=mediapipe_models))
    errors = ws.load()
    assert "gallery" not in errors and ws.gallery.search.engine == "exact"
    assert "needs a PostgreSQL gallery" in errors["search"] and errors["search"].endswith("Identification works.")
    ws.close()
