"""The Embeddings view's model without Qt: the gallery's points, their projection and similarity matrix on a
real SQLite gallery (loaded at once), re-projection and what a finished job leaves to do, the heat map's
order and read-outs, and the geometry study's outcome (the training itself is faked)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from faceapp.app.embeddings import EmbeddingsModel, geometry_choices, projection_methods
from faceapp.core.errors import DatasetError
from faceapp.storage import NewIdentity, NewSample, Store
from tests.app.gallery_data import DIM, MODEL



@pytest.fixture
def session(tmp_path):  # noqa: ANN201
    rng = np.random.default_rng(0)
    with Store(tmp_path / "gallery.db") as store:
        for name, n in (("bob", 3), ("ada", 2), ("cy", 1)):
            vectors = rng.standard_normal((n, DIM)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            store.templates.enroll(NewIdentity(name), [NewSample(crop=rng.integers(0, 256, (112, 112, 3), np.uint8),
                                                                 embedding=v) for v in vectors], MODEL)
        yield SimpleNamespace(store=store, embedder=SimpleNamespace(model_id=MODEL.model_id, dim=DIM))


def _model(session, **starters):  # noqa: ANN001, ANN003, ANN202
    model = EmbeddingsModel(session, **starters)
    model.events = []
    for name in ("loaded", "projected", "info_changed", "load_failed", "geometry_done", "geometry_failed", "error"):
        getattr(model, name).connect(lambda *args, name=name: model.events.append((name, *args)))
    return model


def test_the_gallery_is_loaded_projected_and_compared(session):
    model = _model(session)
    assert model.needs_refresh() and "pca" in projection_methods()
    assert model.refresh("pca", "PCA")
    assert model.coords.shape == (6, 2) and not model.stale and model.coords_method == "PCA"
    assert ("loaded",) in model.events
    assert model.describe().startswith("6 templates of 3 identities, model tiny@000000000001; PCA.")
    ada, bob, cy = (session.store.identities.get(n).id for n in ("ada", "bob", "cy"))
    assert model.identity_order() == [ada, bob, cy]                      # by name
    order, shown, low, high = model.heat_map()
    assert order == [ada, bob, cy] and shown.shape == (3, 3) and low < high
    assert model.cell_text(0, 1).startswith("ada vs bob: mean cosine ")
    assert model.cell_text(2, 2) == "cy vs cy: mean cosine n/a (one template)"   # one template: no pair
    model.reproject("pca", "PCA again")
    assert model.coords_method == "PCA again" and ("projected",) in model.events


def test_what_a_finished_job_leaves_to_do(session):
    model = _model(session)
    model.refresh("pca", "PCA")
    assert model.catch_up_needed("done", "PCA") == ""
    assert model.catch_up_needed("done", "t-SNE") == "reproject"        # another method was chosen meanwhile
    assert model.catch_up_needed("failed", "t-SNE") == ""               # a failed projection is not retried
    model.gallery_changed()
    assert model.catch_up_needed("done", "PCA") == "refresh" and model.needs_refresh()


def test_without_a_gallery_nothing_is_loaded(session):
    model = _model(SimpleNamespace(store=None, embedder=None))
    assert not model.refresh("pca", "PCA") and model.events == [("info_changed", "No database or model is loaded.")]
    assert model.heat_map() is None and model.identity_order() == []
    model._load_failed(DatasetError("no templates"))                     # a user error: said, not reported as a bug
    assert model.points is None and not [e for e in model.events if e[0] == "error"]


def test_the_geometry_study(session, tmp_path):
    losses, titles, folder = geometry_choices()
    assert "arcface" in losses and titles["arcface"]
    outcome = {}

    def start_geometry(func, config, *, on_result, on_error, context):  # noqa: ANN001, ANN202
        outcome["config"] = config
        if config.dim == 3:
            on_result(SimpleNamespace(dim=3, runs={}))
        else:
            on_error(DatasetError("not enough faces"))

    model = _model(session, start_geometry=start_geometry)
    config = model.geometry_config(str(tmp_path), 4, 3, 50, ["softmax", "arcface"])
    assert (config.identities, config.dim, config.steps, config.losses) == (4, 3, 50, ("softmax", "arcface"))
    model.train_geometry(config)
    assert model.sphere and model.events[-1][0] == "geometry_done"
    model.train_geometry(model.geometry_config(str(tmp_path), 4, 2, 50, ["softmax"]))
    assert [e[0] for e in model.events[-2:]] == ["geometry_failed", "error"]
